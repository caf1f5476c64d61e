"""Large requests in row chunks (--large_request_chunk_rows): the same answers as whole runs, whole runs where
rows cannot be split, REST and gRPC, classify and regress, batching in front, and deadlines between chunks."""

import concurrent.futures
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf

import serving_helpers
from serving import chunking
from serving import client as client_lib
from serving import deadlines
from serving import flags
from serving import model_config
from serving import priority
from serving import servable as servable_lib
from serving import server
from serving import status


class CountingServable(servable_lib.Servable):
    """A Servable remembering the rows of every run; runs first sleep `delay_seconds` (0: no sleep)."""

    delay_seconds = 0.0

    def __init__(self, *arguments):
        super().__init__(*arguments)
        self.rows = []
        self._lock = threading.Lock()

    def run(self, signature_name, inputs, output_names):
        with self._lock:
            self.rows.append(chunking.common_rows(inputs))
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return super().run(signature_name, inputs, output_names)


def _save(path: str, function) -> str:
    module = tf.Module()
    module.serve = function
    tf.saved_model.save(module, path, signatures={"serving_default": function})
    return path


def write_split_model(path: str) -> str:
    """`text` [batch] -> `tokens` [batch, longest sentence] padded with "" and `length` [batch], as tagging."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        tokens = tf.strings.split(text)
        return {"tokens": tokens.to_tensor(""), "length": tf.cast(tokens.row_lengths(), tf.int32)}
    return _save(path, serve)


def write_sum_model(path: str) -> str:
    """`x` [batch] -> `total`, a scalar: rows cannot be split."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(x):
        return {"total": tf.reduce_sum(x)}
    return _save(path, serve)


def write_unique_model(path: str) -> str:
    """`x` [batch] -> `values` [None], the distinct values: declared batched, but its rows are not the input's."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(x):
        return {"values": tf.unique(x).y}
    return _save(path, serve)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """Version folders of the models these tests chunk."""
    directory = tmp_path_factory.mktemp("chunking")
    writers = {"scale": lambda path: serving_helpers.write_scale_model(path, 3.0), "split": write_split_model,
               "sum": write_sum_model, "unique": write_unique_model, "echo": serving_helpers.write_echo_model}
    return {name: writer(str(directory / name / "1")) for name, writer in writers.items()}


def _chunked(path: str, chunk_rows: int) -> tuple[chunking.ChunkingServable, CountingServable]:
    counting = CountingServable("model", 1, path)
    return chunking.ChunkingServable(counting, priority.PriorityGate(), chunk_rows), counting


def test_chunk_spans_are_near_equal_and_cover_every_row():
    assert chunking.chunk_spans(10, 4) == [(0, 4), (4, 7), (7, 10)]
    assert chunking.chunk_spans(8, 4) == [(0, 4), (4, 8)]
    assert chunking.chunk_spans(1, 4) == [(0, 1)]


def test_chunked_results_equal_the_whole_runs(models):
    chunked, counting = _chunked(models["scale"], 3)
    whole = servable_lib.Servable("model", 1, models["scale"])
    x = np.arange(10, dtype=np.float32)

    assert chunked.run("serving_default", {"x": x}, ["y"])["y"].tolist() == whole.run(
        "serving_default", {"x": x}, ["y"])["y"].tolist()
    assert counting.rows == [3, 3, 2, 2]
    chunked.run("serving_default", {"x": x[:3]}, ["y"])  # not more rows than a chunk: one run
    assert counting.rows[4:] == [3]


def test_outputs_padded_to_the_batch_are_padded_to_the_widest_chunk(models):
    chunked, counting = _chunked(models["split"], 2)
    whole = servable_lib.Servable("model", 1, models["split"])
    text = np.array([b"a", b"b c d e", b"f g", b"h", b"i j k"], dtype=object)

    outputs = chunked.run("serving_default", {"text": text}, ["length", "tokens"])
    expected = whole.run("serving_default", {"text": text}, ["length", "tokens"])

    assert counting.rows == [2, 2, 1]
    assert outputs["tokens"].shape == expected["tokens"].shape == (5, 4)
    assert outputs["tokens"].tolist() == expected["tokens"].tolist()
    assert outputs["length"].tolist() == expected["length"].tolist() == [1, 4, 2, 1, 3]


def test_signatures_without_a_batch_dimension_and_requests_with_unequal_rows_run_whole(models):
    summed, summed_counting = _chunked(models["sum"], 2)
    echoed, echoed_counting = _chunked(models["echo"], 2)

    total = summed.run("serving_default", {"x": np.ones(7, np.float32)}, ["total"])["total"]
    echo = echoed.run("serving_default", {"text": np.array([b"a"] * 5, dtype=object),
                                          "count": np.arange(3, dtype=np.int32)}, ["doubled", "echo_bytes"])

    assert float(total) == 7.0 and summed_counting.rows == [7]
    assert echo["doubled"].tolist() == [0, 2, 4] and len(echo["echo_bytes"]) == 5 and echoed_counting.rows == [None]


def test_outputs_that_do_not_keep_the_rows_make_the_signature_run_whole(models):
    chunked, counting = _chunked(models["unique"], 2)
    x = np.array([1, 1, 2, 3, 3], np.float32)

    first = chunked.run("serving_default", {"x": x}, ["values"])["values"]
    second = chunked.run("serving_default", {"x": x}, ["values"])["values"]

    assert first.tolist() == second.tolist() == [1.0, 2.0, 3.0]
    assert counting.rows == [2, 5, 5]  # the first chunk gave one value for two rows: whole from then on


def test_a_chunked_run_past_its_deadline_stops_between_chunks(models):
    chunked, counting = _chunked(models["scale"], 2)
    deadline = time.monotonic() + 0.05
    original_run = counting.run

    def run_until_the_deadline(*arguments):
        while not deadlines.passed(deadline):
            time.sleep(0.01)
        return original_run(*arguments)

    counting.run = run_until_the_deadline
    with deadlines.scope(deadline), pytest.raises(status.ServingError, match="after 2 of 10 rows") as raised:
        chunked.run("serving_default", {"x": np.ones(10, np.float32)}, ["y"])

    assert raised.value.code == "DEADLINE_EXCEEDED" and raised.value.http_status == 504
    assert counting.rows == [2]


def _loader(*argv: str):
    return server.loader_for_flags(flags.parse(list(argv)))


def test_the_flags_choose_whole_or_chunked_runs(models):
    path = models["scale"]

    assert isinstance(_loader()("scale", 1, path), chunking.ChunkingServable)
    assert _loader()("scale", 1, path).chunk_rows == 32
    assert type(_loader("--large_request_chunk_rows=0")("scale", 1, path)) is servable_lib.Servable
    with pytest.raises(ValueError, match="max_small_passes"):
        _loader("--large_request_max_small_passes=0")


def _start(configs: list, loader, **options) -> serving_helpers.RunningServer:
    return serving_helpers.start_server(configs, loader, max_request_bytes=serving_helpers.MAX_REQUEST_BYTES,
                                        **options)


def _stop(running: serving_helpers.RunningServer) -> None:
    running.server.stop_thread()
    running.server.manager.stop()


def _counting_loader(chunk_rows: int):
    gate = priority.PriorityGate()

    def load(name, version, path):
        return chunking.ChunkingServable(CountingServable(name, version, path), gate, chunk_rows)
    return load


def test_rest_and_grpc_predict_run_large_requests_in_chunks(models):
    running = _start([model_config.ModelConfig("scale", models["scale"].rsplit("/", 1)[0])], _counting_loader(4))
    counting = running.server.manager.servable("scale")._servable
    x = [float(value) for value in range(10)]
    try:
        rest = client_lib.RestClient(running.url, "scale").run_signature({"x": x})["y"]
        rows_after_rest = list(counting.rows)
        over_grpc = client_lib.GrpcClient(running.grpc_target, "scale").run_signature({"x": x})["y"]
    finally:
        _stop(running)

    assert rest == over_grpc == [3.0 * value for value in x]
    assert rows_after_rest == [4, 3, 3] and counting.rows == [4, 3, 3] * 2


def test_classify_and_regress_run_in_chunks():
    if not serving_helpers.TESTDATA.is_dir():
        pytest.skip(f"{serving_helpers.TESTDATA} is absent")
    base_path = str(serving_helpers.TESTDATA / "saved_model_half_plus_two_cpu")
    running = _start([model_config.ModelConfig("half_plus_two", base_path)], _counting_loader(2))
    counting = running.server.manager.servable("half_plus_two")._servable
    examples = [{"x": float(value)} for value in range(5)]
    try:
        classified = running.request("POST", "/v1/models/half_plus_two:classify",
                                     {"signature_name": "classify_x_to_y", "examples": examples})
        regressed = running.request("POST", "/v1/models/half_plus_two:regress",
                                    {"signature_name": "regress_x_to_y", "examples": examples})
    finally:
        _stop(running)

    assert classified.json() == {"results": [[["", 0.5 * value + 2.0]] for value in range(5)]}
    assert regressed.json() == {"results": [0.5 * value + 2.0 for value in range(5)]}
    assert counting.rows == [2, 2, 1] * 2


def test_batching_merges_requests_and_then_chunks_the_batch(models, tmp_path):
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 300000 }\n"
                          "num_batch_threads { value: 1 }\n")
    loader = _loader("--enable_batching", f"--batching_parameters_file={parameters}", "--large_request_chunk_rows=4")
    running = _start([model_config.ModelConfig("scale", models["scale"].rsplit("/", 1)[0])], loader, grpc_port=None)
    chunked = running.server.manager.servable("scale")._servable
    assert isinstance(chunked, chunking.ChunkingServable)
    calls = []
    original_run = chunked._servable.run
    chunked._servable.run = lambda name, inputs, outputs: calls.append(len(inputs["x"])) or original_run(
        name, inputs, outputs)
    try:
        client = client_lib.RestClient(running.url, "scale")
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda x: client.run_signature({"x": x})["y"], [[1.0] * 5, [2.0] * 5]))
    finally:
        _stop(running)

    assert sorted(answers) == [[3.0] * 5, [6.0] * 5]
    assert sum(calls) == 10 and max(calls) <= 4  # one batch of 10 rows (or two of 5), run in chunks


def test_a_timed_out_chunked_request_stops_and_releases_its_bytes(models):
    """REST answers 504 at --rest_api_timeout_in_ms and gRPC at the client's deadline; the run stops at the next
    chunk (20 chunks would take 8 s) and the request's bytes go back to the budget."""
    CountingServable.delay_seconds = 0.4
    running = _start([model_config.ModelConfig("scale", models["scale"].rsplit("/", 1)[0])], _counting_loader(2),
                     timeout_seconds=1.0)
    counting = running.server.manager.servable("scale")._servable
    x = [1.0] * 40
    try:
        rest = requests.post(f"{running.url}/v1/models/scale:predict", json={"instances": x}, timeout=30)
        _wait_until_released(running)
        chunks_over_rest = len(counting.rows)
        with pytest.raises(client_lib.ServingError) as raised:
            client_lib.GrpcClient(running.grpc_target, "scale", timeout=1.0).run_signature({"x": x})
        _wait_until_released(running)
        chunks_over_grpc = len(counting.rows) - chunks_over_rest
    finally:
        CountingServable.delay_seconds = 0.0
        _stop(running)

    assert rest.status_code == 504 and "timed out" in rest.json()["error"]
    assert raised.value.status == grpc.StatusCode.DEADLINE_EXCEEDED.name
    assert 1 <= chunks_over_rest < 20 and 1 <= chunks_over_grpc < 20


def _wait_until_released(running: serving_helpers.RunningServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while running.server.budget.used:
        assert time.monotonic() < deadline, "the timed-out request kept its bytes"
        time.sleep(0.05)
