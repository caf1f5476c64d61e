"""Large requests run as row chunks, with small requests served between chunks (--large_request_chunk_rows).

A run with more rows than `chunk_rows` is split along the batch dimension into near-equal chunks of at most
`chunk_rows` rows; each chunk waits for its turn at the server's `priority.PriorityGate` (small runs first,
one chunk at a time), and the chunks' outputs are concatenated back along the batch dimension. Runs of at
most `chunk_rows` rows are small: they run at once, and chunks wait for them.

Splitting is valid only when rows are independent, the assumption server-side batching already makes when
it merges rows. What can be checked is checked: every input and output of the signature must have a
leading batch dimension (known rank >= 1, first size unknown; a classify or regress signature's serialized
tf.Examples count as batched), all of the request's inputs must have the same number of rows, and every
chunk's outputs must have the chunk's rows. A large run that fails these checks runs whole, in one turn of
the gate. Outputs whose later dimensions follow the batch (strings
padded to the batch's longest row, as the tagging export's `tokens` and `tags`) are padded to the widest
chunk's with empty strings or zeros, which is what such outputs are padded with.

Between chunks a run checks its request's deadline (`serving/deadlines.py`) and stops with
DEADLINE_EXCEEDED once it has passed, so a timed-out request ends early and its front end releases its
admission reservation.
"""

import contextlib
import logging
import typing

import numpy as np

from serving import batching
from serving import deadlines
from serving import inference
from serving import priority
from serving import status

logger = logging.getLogger("serving")


def has_batch_dimension(tensor_info) -> bool:
    """Whether a SignatureDef tensor has a known rank >= 1 and an unknown (batch) first dimension."""
    shape = tensor_info.tensor_shape
    return not shape.unknown_rank and len(shape.dim) >= 1 and shape.dim[0].size == -1


def splittable(signature_def) -> bool:
    """Whether every input and output of the signature has a leading batch dimension.

    The input of a classify or regress signature counts as batched even when its rank is not recorded (as
    in TF1 exports): the API makes it a vector of serialized tf.Examples with one result per example.
    """
    examples_input = signature_def.method_name in (inference.CLASSIFY_METHOD, inference.REGRESS_METHOD)
    inputs = [has_batch_dimension(info) or (examples_input and info.tensor_shape.unknown_rank)
              for info in signature_def.inputs.values()]
    outputs = [has_batch_dimension(info) for info in signature_def.outputs.values()]
    return bool(inputs) and all(inputs) and all(outputs)


def common_rows(inputs: dict[str, np.ndarray]) -> typing.Optional[int]:
    """The inputs' shared first dimension; None when an input is a scalar or they differ."""
    rows = {np.shape(value)[0] if np.ndim(value) else None for value in inputs.values()}
    if len(rows) != 1:
        return None
    return rows.pop()


def chunk_spans(rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    """(start, stop) of near-equal chunks of at most `chunk_rows` rows covering `rows` rows."""
    count = -(-rows // chunk_rows)
    base, extra = divmod(rows, count)
    spans, start = [], 0
    for index in range(count):
        stop = start + base + (1 if index < extra else 0)
        spans.append((start, stop))
        start = stop
    return spans


class ChunkingServable:
    """A servable whose large runs go in row chunks through a PriorityGate (the rest is the wrapped one's).

    Args:
        servable: The loaded version (anything with `run` and `signature_defs`).
        gate: The server's gate, shared by every servable.
        chunk_rows: Most rows per chunk; runs with more rows are large (>= 1).
    """

    def __init__(self, servable, gate: priority.PriorityGate, chunk_rows: int):
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self._servable = servable
        self._gate = gate
        self.chunk_rows = chunk_rows
        self._whole_signatures: set[str] = set()  # chunks' outputs did not keep the rows: never split again

    def __getattr__(self, name: str):
        return getattr(self._servable, name)

    def run(self, signature_name: str, inputs: dict, output_names: list) -> dict:
        """Runs a signature (see `servable.Servable.run`); large runs go in chunks when they can.

        Raises:
            ServingError: The wrapped servable's errors, or DEADLINE_EXCEEDED when the request's deadline
                passes between chunks.
        """
        rows = common_rows(inputs)
        if rows is None or rows <= self.chunk_rows:
            with self._gate.small():
                return self._servable.run(signature_name, inputs, output_names)
        deadline = deadlines.current()
        signature_def = self._servable.signature_defs.get(signature_name)
        if signature_name in self._whole_signatures or signature_def is None or not splittable(signature_def):
            return self._run_turn(deadline, signature_name, inputs, output_names)
        chunks = []
        for start, stop in chunk_spans(rows, self.chunk_rows):
            if deadlines.passed(deadline):
                raise _deadline_exceeded(start, rows)
            outputs = self._run_turn(deadline, signature_name,
                                     {name: value[start:stop] for name, value in inputs.items()}, output_names)
            if any(np.ndim(value) == 0 or np.shape(value)[0] != stop - start for value in outputs.values()):
                logger.warning("model %s version %s, signature %s: outputs do not keep the rows of their inputs; "
                               "its requests run whole from now on", self._servable.name, self._servable.version,
                               signature_name)
                self._whole_signatures.add(signature_name)
                return self._run_turn(deadline, signature_name, inputs, output_names)
            chunks.append(outputs)
        return {name: batching.concatenate_rows([outputs[name] for outputs in chunks]) for name in chunks[0]}

    def _run_turn(self, deadline: typing.Optional[float], signature_name: str, inputs: dict,
                  output_names: list) -> dict:
        """One run in one turn of the gate."""
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self._gate.chunk(deadline))
            except TimeoutError:
                raise _deadline_exceeded(None, common_rows(inputs)) from None
            return self._servable.run(signature_name, inputs, output_names)


def _deadline_exceeded(done: typing.Optional[int], rows: typing.Optional[int]) -> status.ServingError:
    progress = f" after {done} of {rows} rows" if done is not None else ""
    return status.ServingError("DEADLINE_EXCEEDED", f"Deadline exceeded{progress} while running a large request "
                                                    "in row chunks (--large_request_chunk_rows)")
