"""Server-side batching: concurrent runs merged into one call and split back, with TF Serving's parameters."""

import concurrent.futures
import threading
import time

import numpy as np
import pytest

import helpers
import serving_helpers
from serving import batching
from serving import client as client_lib
from serving import flags
from serving import model_config
from serving import server
from serving import status


class RecordingModel:
    """A stand-in signature: y = 2 * x, remembering the batch size of every call."""

    def __init__(self):
        self.batch_sizes = []
        self._lock = threading.Lock()

    def run(self, inputs, output_names):
        with self._lock:
            self.batch_sizes.append(inputs["x"].shape[0])
        return {"y": inputs["x"] * 2}


def _submit_concurrently(scheduler, model, inputs_list):
    with concurrent.futures.ThreadPoolExecutor(len(inputs_list)) as pool:
        futures = [pool.submit(scheduler.submit, ("key",), model.run, inputs, ["y"]) for inputs in inputs_list]
        return [future.result(timeout=30) for future in futures]


def test_concurrent_runs_are_merged_into_one_call_and_split_back():
    scheduler = batching.BatchScheduler(batching.BatchingParameters(
        max_batch_size=8, batch_timeout_micros=500_000, num_batch_threads=1))
    model = RecordingModel()
    inputs_list = [{"x": np.array([[float(index)]], np.float32)} for index in range(8)]

    outputs = _submit_concurrently(scheduler, model, inputs_list)

    assert model.batch_sizes == [8]
    assert [output["y"].tolist() for output in outputs] == [[[2.0 * index]] for index in range(8)]
    scheduler.stop()


def test_batches_are_padded_to_the_next_allowed_size_with_copies_of_the_first_row():
    scheduler = batching.BatchScheduler(batching.BatchingParameters(
        max_batch_size=4, batch_timeout_micros=300_000, num_batch_threads=1, allowed_batch_sizes=(2, 4)))
    model = RecordingModel()

    outputs = _submit_concurrently(scheduler, model, [{"x": np.array([1.0, 2.0, 3.0], np.float32)}])

    assert model.batch_sizes == [4] and outputs[0]["y"].tolist() == [2.0, 4.0, 6.0]
    scheduler.stop()


def test_variable_length_inputs_are_padded_when_asked_and_batched_apart_otherwise():
    for pad, expected_calls in ((True, [2]), (False, [1, 1])):
        scheduler = batching.BatchScheduler(batching.BatchingParameters(
            max_batch_size=2, batch_timeout_micros=300_000, num_batch_threads=1, pad_variable_length_inputs=pad))
        model = RecordingModel()

        outputs = _submit_concurrently(scheduler, model, [{"x": np.ones((1, 3), np.float32)},
                                                          {"x": np.ones((1, 5), np.float32)}])

        assert sorted(model.batch_sizes) == expected_calls
        assert {output["y"].shape[1] for output in outputs} == ({5} if pad else {3, 5})
        scheduler.stop()


class BlockingModel(RecordingModel):
    """A RecordingModel whose calls wait until `release` is set, so a test decides when the worker is free."""

    def __init__(self):
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def run(self, inputs, output_names):
        self.started.set()
        assert self.release.wait(timeout=30), "the test never released the model"
        return super().run(inputs, output_names)


def _wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_a_task_over_max_batch_size_and_a_full_queue_are_refused():
    scheduler = batching.BatchScheduler(batching.BatchingParameters(
        max_batch_size=2, batch_timeout_micros=2_000_000, num_batch_threads=1, max_enqueued_batches=1))
    model = BlockingModel()

    with pytest.raises(status.ServingError, match="Task size 3 is larger than maximum input batch size 2"):
        scheduler.submit(("key",), model.run, {"x": np.ones(3, np.float32)}, ["y"])
    submitters = [threading.Thread(target=scheduler.submit, args=(("key",), model.run, {"x": np.ones(2, np.float32)},
                                                                  ["y"])) for _ in range(2)]
    submitters[0].start()
    assert model.started.wait(timeout=30)  # the only worker is busy with the first full batch
    submitters[1].start()
    _wait_until(lambda: scheduler._queues[("key",)].rows == 2, "the second batch to be queued")
    try:
        with pytest.raises(status.ServingError, match="queue to which this task was submitted is full") as raised:
            scheduler.submit(("key",), model.run, {"x": np.ones(1, np.float32)}, ["y"])
        assert raised.value.code == "UNAVAILABLE"
    finally:
        model.release.set()
        for submitter in submitters:
            submitter.join(timeout=30)
        scheduler.stop()
    assert model.batch_sizes == [2, 2]


def test_batching_parameters_file_reads_tf_servings_text_format():
    parameters = batching.read_batching_parameters(str(helpers.REPOSITORY / "serving" / "batching_parameters.txt"))

    assert (parameters.max_batch_size, parameters.num_batch_threads) == (32, 4)
    assert parameters.allowed_batch_sizes == (1, 2, 4, 8, 16, 32) and parameters.pad_variable_length_inputs
    with pytest.raises(ValueError, match="unknown field max_batchsize"):
        batching.parse_batching_parameters("max_batchsize { value: 3 }")
    with pytest.raises(ValueError, match="last allowed_batch_sizes"):
        batching.parse_batching_parameters("max_batch_size { value: 8 } allowed_batch_sizes: 4")


def test_the_server_batches_concurrent_rest_and_grpc_requests(tmp_path):
    base_path = tmp_path / "scale"
    serving_helpers.write_scale_model(str(base_path / "1"), 3.0)
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 200000 }\n"
                          "num_batch_threads { value: 1 }\n")
    loader = server.loader_for_flags(flags.parse(["--enable_batching", f"--batching_parameters_file={parameters}"]))
    calls = []
    running = serving_helpers.start_server([model_config.ModelConfig("scale", str(base_path))], loader)
    batched = running.server.manager.servable("scale")
    original_run = batched._servable.run
    batched._servable.run = lambda name, inputs, outputs: calls.append(inputs["x"].shape[0]) or original_run(
        name, inputs, outputs)
    try:
        clients = [client_lib.RestClient(running.url, "scale") if index % 2 else
                   client_lib.GrpcClient(running.grpc_target, "scale") for index in range(12)]
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda pair: pair[1].run_signature({"x": [float(pair[0])]})["y"],
                                    enumerate(clients)))
    finally:
        running.server.stop_thread()
        running.server.manager.stop()

    assert answers == [[3.0 * index] for index in range(12)]
    assert sum(calls) == 12 and len(calls) < 12
