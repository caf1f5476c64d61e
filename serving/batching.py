"""Server-side batching with TF Serving's semantics (--enable_batching, --batching_parameters_file).

Concurrent runs of the same version, signature, inputs and outputs are queued together; a batch thread takes
the queue when it holds `max_batch_size` rows or when its oldest task has waited `batch_timeout_micros`,
concatenates the inputs along the batch dimension (padded to the next of `allowed_batch_sizes`), makes one
call, and splits the outputs back. A task larger than `max_batch_size` is refused, and a full queue
(`max_enqueued_batches`) answers UNAVAILABLE at once, as in TF Serving. Inputs that differ beyond the batch
dimension are padded when `pad_variable_length_inputs` is set, and batched apart otherwise. Signatures with
a scalar input (TF Serving refuses to batch them) run unbatched.
"""

import collections
import dataclasses
import logging
import os
import re
import threading
import time
import typing

import numpy as np

from serving import status

logger = logging.getLogger("serving")


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's BatchingParameters (session_bundle_config.proto) that this server acts on, with its
    defaults."""
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = os.cpu_count() or 1
    max_enqueued_batches: int = 1 << 31
    allowed_batch_sizes: tuple = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self):
        if self.max_batch_size < 1 or self.num_batch_threads < 1:
            raise ValueError("batching parameters: max_batch_size and num_batch_threads must be >= 1")
        if self.allowed_batch_sizes:
            if list(self.allowed_batch_sizes) != sorted(set(self.allowed_batch_sizes)):
                raise ValueError("batching parameters: allowed_batch_sizes must increase")
            if self.allowed_batch_sizes[-1] != self.max_batch_size:
                raise ValueError("batching parameters: the last allowed_batch_sizes entry must equal "
                                 "max_batch_size")

    def padded_size(self, rows: int) -> int:
        return next((size for size in self.allowed_batch_sizes if size >= rows), rows)


_WRAPPED_FIELD = re.compile(r"(\w+)\s*\{\s*value\s*:\s*([^\s}]+)\s*\}")
_PLAIN_FIELD = re.compile(r"(\w+)\s*:\s*(\S+)")
_IGNORED_FIELDS = {"thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size",
                   "batch_padding_policy", "mixed_priority_batching_policy"}


def parse_batching_parameters(text: str, source: str = "<batching parameters>") -> BatchingParameters:
    """Reads a BatchingParameters text proto (the --batching_parameters_file format).

    Raises:
        ValueError: An unknown field, text that is not a field, or invalid values (the message names the file).
    """
    values: dict = {}
    allowed = []
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for pattern in (_WRAPPED_FIELD, _PLAIN_FIELD):
        for match in pattern.finditer(body):
            name, value = match.group(1), match.group(2).strip('"')
            if name == "allowed_batch_sizes":
                allowed.append(int(value))
            elif name == "pad_variable_length_inputs":
                values[name] = value.lower() == "true"
            elif name in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches"):
                values[name] = int(value)
            elif name not in _IGNORED_FIELDS and not name.startswith("low_priority"):
                raise ValueError(f"Invalid protobuf file: '{source}': unknown field {name}")
        body = pattern.sub(" ", body)
    if body.strip():
        raise ValueError(f"Invalid protobuf file: '{source}': cannot read {body.strip()[:60]!r}")
    return BatchingParameters(**values, allowed_batch_sizes=tuple(allowed))


def read_batching_parameters(path: str) -> BatchingParameters:
    """--batching_parameters_file ("" gives TF Serving's defaults)."""
    if not path:
        return BatchingParameters()
    with open(path, encoding="utf-8") as stream:
        return parse_batching_parameters(stream.read(), path)


class _Task:
    def __init__(self, inputs: dict, rows: int):
        self.inputs = inputs
        self.rows = rows
        self.enqueued_at = time.monotonic()
        self.done = threading.Event()
        self.outputs: typing.Optional[dict] = None
        self.error: typing.Optional[BaseException] = None


class _Queue:
    def __init__(self, run: typing.Callable, output_names: list):
        self.run = run
        self.output_names = output_names
        self.tasks: collections.deque = collections.deque()
        self.rows = 0


class BatchScheduler:
    """The batch threads and the queues they serve (one queue per servable, signature, inputs and outputs).

    Args:
        parameters: The batching parameters.
    """

    def __init__(self, parameters: BatchingParameters):
        self.parameters = parameters
        self._queues: dict = {}
        self._condition = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"batch-{index}", daemon=True)
                         for index in range(parameters.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, key: tuple, run: typing.Callable, inputs: dict, output_names: list) -> dict:
        """Queues one run and waits for its share of the batch's outputs.

        Raises:
            ServingError: INVALID_ARGUMENT for a task larger than max_batch_size, UNAVAILABLE when the queue
                is full, or the batch's own error.
        """
        rows = next(iter(inputs.values())).shape[0]
        limit = self.parameters.max_batch_size
        if rows > limit:
            raise status.invalid_argument(f"Task size {rows} is larger than maximum input batch size {limit}")
        task = _Task(inputs, rows)
        with self._condition:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(run, output_names)
            if queue.rows + rows > self.parameters.max_enqueued_batches * limit:
                raise status.ServingError("UNAVAILABLE", "The batch scheduling queue to which this task was "
                                                         "submitted is full")
            queue.tasks.append(task)
            queue.rows += rows
            self._condition.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()

    def _work(self) -> None:
        while True:
            taken = self._next_batch()
            if taken is None:
                return
            queue, tasks = taken
            _run_batch(queue, tasks, self.parameters)

    def _next_batch(self):
        """Waits for a batch that is full or whose oldest task has waited the timeout; takes its tasks."""
        timeout = self.parameters.batch_timeout_micros / 1e6
        limit = self.parameters.max_batch_size
        with self._condition:
            while not self._stopped:
                now = time.monotonic()
                waiting = [queue for queue in self._queues.values() if queue.tasks]
                ready = [queue for queue in waiting
                         if queue.rows >= limit or now - queue.tasks[0].enqueued_at >= timeout]
                if ready:
                    queue = min(ready, key=lambda item: item.tasks[0].enqueued_at)
                    tasks, rows = [], 0
                    while queue.tasks and rows + queue.tasks[0].rows <= limit:
                        task = queue.tasks.popleft()
                        tasks.append(task)
                        rows += task.rows
                    queue.rows -= rows
                    return queue, tasks
                wait = None
                if waiting:
                    wait = max(0.0, min(queue.tasks[0].enqueued_at + timeout for queue in waiting) - now)
                self._condition.wait(wait)
            return None


def _run_batch(queue: _Queue, tasks: list, parameters: BatchingParameters) -> None:
    """Runs the tasks as few calls as their shapes allow and hands each its rows of the outputs."""
    groups = [tasks] if parameters.pad_variable_length_inputs else _same_shapes(tasks)
    for group in groups:
        try:
            inputs = _merge([task.inputs for task in group], parameters)
            outputs = queue.run(inputs, queue.output_names)
            start = 0
            for task in group:
                task.outputs = {name: _rows(name, value, start, task.rows, inputs) for name, value in outputs.items()}
                start += task.rows
        except BaseException as error:  # noqa: BLE001 - handed to every waiting request
            for task in group:
                task.error = error
        for task in group:
            task.done.set()


def _same_shapes(tasks: list) -> list:
    groups: dict = {}
    for task in tasks:
        groups.setdefault(tuple((name, array.shape[1:]) for name, array in sorted(task.inputs.items())), []).append(task)
    return list(groups.values())


def _merge(inputs_list: list, parameters: BatchingParameters) -> dict:
    """Concatenates each input along the batch dimension, padding other dimensions and the batch size."""
    merged = {}
    for name in inputs_list[0]:
        batch = concatenate_rows([inputs[name] for inputs in inputs_list])
        padded_rows = parameters.padded_size(batch.shape[0])
        if padded_rows > batch.shape[0]:
            # As TF Serving, the batch is filled up with copies of its first row.
            batch = np.concatenate([batch, np.repeat(batch[:1], padded_rows - batch.shape[0], axis=0)], axis=0)
        merged[name] = batch
    return merged


def concatenate_rows(arrays: list[np.ndarray]) -> np.ndarray:
    """Arrays joined along the batch dimension, their later dimensions padded to the widest array's with
    empty strings or zeros (what variable-length inputs and outputs are padded with)."""
    if len({array.shape[1:] for array in arrays}) > 1:
        widest = tuple(np.max([array.shape[1:] for array in arrays], axis=0))
        arrays = [_pad(array, widest) for array in arrays]
    return np.concatenate(arrays, axis=0)


def _pad(array: np.ndarray, trailing: tuple) -> np.ndarray:
    if array.shape[1:] == trailing:
        return array
    filler = b"" if array.dtype.kind in "OS" else "" if array.dtype.kind == "U" else 0
    widths = [(0, 0)] + [(0, wanted - size) for size, wanted in zip(array.shape[1:], trailing)]
    return np.pad(array, widths, constant_values=filler)


def _rows(name: str, value: np.ndarray, start: int, count: int, inputs: dict) -> np.ndarray:
    batch = next(iter(inputs.values())).shape[0]
    if np.ndim(value) == 0 or value.shape[0] != batch:
        raise status.ServingError("INTERNAL", f"Batched output {name} does not have the batch's first dimension "
                                              f"({np.shape(value)} for a batch of {batch})")
    return value[start:start + count]


class BatchingServable:
    """A servable whose runs go through a BatchScheduler (the rest is the wrapped servable's).

    Args:
        servable: The loaded version.
        scheduler: The shared batch scheduler.
    """

    def __init__(self, servable, scheduler: BatchScheduler):
        self._servable = servable
        self._scheduler = scheduler

    def __getattr__(self, name: str):
        return getattr(self._servable, name)

    def run(self, signature_name: str, inputs: dict, output_names: list) -> dict:
        if not inputs or any(np.ndim(value) == 0 for value in inputs.values()):
            return self._servable.run(signature_name, inputs, output_names)
        rows = {np.shape(value)[0] for value in inputs.values()}
        if len(rows) != 1:
            return self._servable.run(signature_name, inputs, output_names)  # the model reports the mismatch
        key = (id(self._servable), signature_name, tuple(sorted(inputs)), tuple(output_names))
        return self._scheduler.submit(key, lambda merged, names: self._servable.run(signature_name, merged, names),
                                      inputs, list(output_names))
