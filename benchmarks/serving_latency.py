"""Serving latency: batch-1 calls through `serving/server.py` (REST and gRPC) vs the signature called in-process.

Usage (from the repository root):
    python benchmarks/serving_latency.py [--export exports/NAME/VERSION] [--calls 400] [--concurrent-requests 800]

Two sentiment models, both exported in this run (a couple of minutes) and served by one server:
    imdb  the configs/sentiment_imdb.yaml architecture (BiGRU, 800-token limit), trained for a few steps on
          synthetic data, called with a 230-word review (the mean IMDB review length): the model a user ships
    tiny  configs/tiny/sentiment.yaml called with a 12-word sentence: its forward pass (~1 ms) is about as long
          as a bare Python gRPC round trip, so its ratio measures the server's fixed cost, not its share
--export serves that SavedModel (which takes a `text` string) as the `imdb` model instead.
The server runs as its own process (`python serving/server.py`), as in production; the client side is this
process. Measured in one run, interleaved in rounds so that the shared machine's drift hits every variant alike:
    in_process  `tf.saved_model.load(export).signatures["serving_default"](text=...)`, outputs to NumPy
    rest        POST /v1/models/NAME:predict {"instances": [text]} over a kept-alive connection, JSON parsed
    grpc        PredictionService.Predict with the official stubs, request built and outputs converted per call
and `grpc_floor`: ModelService.GetModelStatus on the same server, the round trip with no model work.
Then throughput with 16 concurrent clients (threads, each with its own connection) for REST and gRPC on the
imdb model, and the client-side cost of encoding a batch-64 request and decoding its answer as JSON vs protobuf.
Target: gRPC p50 / in-process p50 <= 1.5 on the imdb model.
"""

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import typing

import numpy as np

import harness

TARGET_RATIO = 1.5
MODEL_NAMES = ("imdb", "tiny")
ROUND_SIZE = 25
CONCURRENCY = 16
ENCODING_BATCH = 64
TEXT = harness.SHORT_TEXT


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", help="a SavedModel version folder with a `text` string input, served as the "
                        "imdb model (default: the configs/sentiment_imdb.yaml architecture trained briefly here)")
    parser.add_argument("--calls", type=int, default=400, help="batch-1 calls per variant (default 400, >= 200)")
    parser.add_argument("--concurrent-requests", type=int, default=800,
                        help="requests per protocol in the concurrency-16 throughput run (default 800)")
    return parser.parse_args()


def _exports(directory: str, imdb_export: typing.Optional[str]) -> dict:
    """Model name -> SavedModel version folder."""
    harness.progress("exporting the imdb-size and tiny sentiment models")
    imdb = imdb_export or harness.imdb_size_sentiment_export(directory)
    tiny = harness.export_in_own_process(directory, "configs/tiny/sentiment.yaml", ["export.self_check=false"])
    return {"imdb": os.path.abspath(imdb), "tiny": tiny}


def _serving_tree(directory: str, exports: dict) -> str:
    """Links each export as version 1 of its model and writes a models.config naming them; returns its path."""
    entries = []
    for name, export_path in exports.items():
        base_path = os.path.join(directory, "served", name)
        os.makedirs(base_path)
        os.symlink(export_path, os.path.join(base_path, "1"))
        entries.append(f'  config {{ name: "{name}" base_path: "{base_path}" model_platform: "tensorflow" }}')
    path = os.path.join(directory, "models.config")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("model_config_list {\n" + "\n".join(entries) + "\n}\n")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(models_config: str) -> tuple[subprocess.Popen, int, int]:
    import requests
    rest_port, grpc_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "serving/server.py", f"--rest_api_port={rest_port}", f"--port={grpc_port}",
         f"--model_config_file={models_config}", "--file_system_poll_wait_seconds=0"],
        stdout=sys.stderr, stderr=sys.stderr, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("error: the server exited while starting (see above)")
        try:
            if all(requests.get(f"http://127.0.0.1:{rest_port}/v1/models/{name}", timeout=2).ok
                   for name in MODEL_NAMES):
                return process, rest_port, grpc_port
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    sys.exit("error: the server did not answer within 300 s")


def _callers(model_name: str, export_path: str, text: str, rest_port: int, grpc_port: int,
             signature=None) -> dict:
    """One function per variant, each making a batch-1 call and returning the NumPy-converted outputs."""
    import grpc
    import requests
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    if signature is None:
        signature = tf.saved_model.load(export_path).signatures["serving_default"]
    session = requests.Session()
    url = f"http://127.0.0.1:{rest_port}/v1/models/{model_name}:predict"
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))

    def in_process():
        return {key: value.numpy() for key, value in signature(text=tf.constant([text])).items()}

    def rest():
        response = session.post(url, data=json.dumps({"instances": [text]}), timeout=60)
        response.raise_for_status()
        return response.json()["predictions"]

    def grpc_call():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.inputs["text"].CopyFrom(tf.make_tensor_proto([text]))
        response = stub.Predict(request, timeout=60)
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    return {"in_process": in_process, "rest": rest, "grpc": grpc_call}


def _grpc_floor_caller(grpc_port: int):
    """GetModelStatus on the served server: a gRPC round trip through the same stack with no model work."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2
    from tensorflow_serving.apis import model_service_pb2_grpc
    stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL_NAMES[0]
    return lambda: stub.GetModelStatus(request, timeout=60)


def _latencies(callers: dict, calls: int) -> dict:
    """Seconds per call for each variant, in interleaved rounds of ROUND_SIZE calls (after a warm-up)."""
    for caller in callers.values():
        for _ in range(10):
            caller()
    timings = {name: [] for name in callers}
    names = list(callers)
    for round_index in range(-(-calls // ROUND_SIZE)):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            for _ in range(ROUND_SIZE):
                start = time.perf_counter()
                callers[name]()
                timings[name].append(time.perf_counter() - start)
        harness.progress(f"latency round {round_index + 1}: {sum(len(values) for values in timings.values())} calls")
    return timings


def _throughput(make_caller, requests_total: int) -> float:
    """Requests per second with CONCURRENCY threads, each with its own connection."""
    per_thread = requests_total // CONCURRENCY
    callers = [make_caller() for _ in range(CONCURRENCY)]

    def work(caller) -> None:
        for _ in range(per_thread):
            caller()

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(work, callers))
    return per_thread * CONCURRENCY / (time.perf_counter() - start)


def _encoding_costs(batch_size: int, repetitions: int = 200) -> dict:
    """Client-side seconds to encode a batch request and decode a batch answer (JSON vs protobuf), and sizes."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    texts = [f"{TEXT} {index}" for index in range(batch_size)]
    probabilities = np.random.default_rng(0).random((batch_size, 2)).astype(np.float32)
    answer = predict_pb2.PredictResponse()
    answer.outputs["label"].CopyFrom(tf.make_tensor_proto(["positive"] * batch_size))
    answer.outputs["probabilities"].CopyFrom(tf.make_tensor_proto(probabilities))
    answer.outputs["score"].CopyFrom(tf.make_tensor_proto(probabilities.max(axis=1)))
    answer_bytes = answer.SerializeToString()
    answer_json = json.dumps({"predictions": [
        {"label": "positive", "probabilities": [float(value) for value in row], "score": float(row.max())}
        for row in probabilities]})

    def json_round():
        body = json.dumps({"instances": texts}).encode()
        rows = json.loads(answer_json)["predictions"]
        return body, rows

    def protobuf_round():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAMES[0]
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
        body = request.SerializeToString()
        parsed = predict_pb2.PredictResponse.FromString(answer_bytes)
        return body, {key: tf.make_ndarray(value) for key, value in parsed.outputs.items()}

    costs = {}
    for name, function in (("json", json_round), ("protobuf", protobuf_round)):
        function()
        samples = []
        for _ in range(repetitions):
            start = time.perf_counter()
            function()
            samples.append(time.perf_counter() - start)
        costs[name] = harness.median(samples)
    json_body, protobuf_body = json_round()[0], protobuf_round()[0]
    return {"json_us": harness.rounded(costs["json"] * 1e6, 1), "protobuf_us": harness.rounded(costs["protobuf"] * 1e6, 1),
            "protobuf_over_json": harness.rounded(costs["protobuf"] / costs["json"], 3),
            "request_bytes": {"json": len(json_body), "protobuf": len(protobuf_body)},
            "answer_bytes": {"json": len(answer_json), "protobuf": len(answer_bytes)}}


def _summary(values: list[float]) -> dict:
    return {"p50_ms": harness.rounded(float(np.percentile(values, 50)) * 1e3, 3),
            "p99_ms": harness.rounded(float(np.percentile(values, 99)) * 1e3, 3), "calls": len(values)}


def _ratios(latency: dict, model_name: str) -> dict:
    in_process = latency[f"{model_name}/in_process"]["p50_ms"]
    return {"grpc_over_in_process_p50": harness.rounded(latency[f"{model_name}/grpc"]["p50_ms"] / in_process, 3),
            "rest_over_in_process_p50": harness.rounded(latency[f"{model_name}/rest"]["p50_ms"] / in_process, 3),
            "grpc_overhead_p50_ms": harness.rounded(latency[f"{model_name}/grpc"]["p50_ms"] - in_process, 3)}


def main() -> None:
    arguments = _arguments()
    if arguments.calls < 200:
        sys.exit("error: --calls must be at least 200")
    harness.configure_logging()
    texts = {"imdb": harness.review_text(), "tiny": TEXT}
    with tempfile.TemporaryDirectory() as directory:
        exports = _exports(directory, arguments.export)
        server, rest_port, grpc_port = _start_server(_serving_tree(directory, exports))
        try:
            callers = {"grpc_floor": _grpc_floor_caller(grpc_port)}
            signatures = {}
            for name in MODEL_NAMES:
                model_callers = _callers(name, exports[name], texts[name], rest_port, grpc_port)
                callers.update({f"{name}/{variant}": caller for variant, caller in model_callers.items()})
            timings = _latencies(callers, arguments.calls)
            harness.progress("throughput at concurrency 16 (imdb model)")
            import tensorflow as tf
            signatures["imdb"] = tf.saved_model.load(exports["imdb"]).signatures["serving_default"]
            throughput = {protocol: harness.rounded(_throughput(
                lambda protocol=protocol: _callers("imdb", exports["imdb"], texts["imdb"], rest_port, grpc_port,
                                                   signatures["imdb"])[protocol], arguments.concurrent_requests), 1)
                for protocol in ("rest", "grpc")}
        finally:
            server.terminate()
            server.wait(timeout=60)
    latency = {name: _summary(values) for name, values in timings.items()}
    headline = _ratios(latency, "imdb")
    harness.report("serving_latency", {
        "figure": "gRPC batch-1 p50 latency relative to calling the signature in-process (imdb-size model, same run)",
        **headline,
        "target": f"grpc_over_in_process_p50 <= {TARGET_RATIO}",
        "target_met": headline["grpc_over_in_process_p50"] <= TARGET_RATIO,
        "tiny_model": _ratios(latency, "tiny"),
        "latency": latency,
        "throughput_requests_per_second_at_concurrency_16": throughput,
        f"encoding_cost_batch_{ENCODING_BATCH}": _encoding_costs(ENCODING_BATCH),
        "models": {"imdb": (arguments.export or "configs/sentiment_imdb.yaml architecture, 4 steps on synthetic "
                            "data") + f", {harness.REVIEW_WORDS}-word review",
                   "tiny": f"configs/tiny/sentiment.yaml, {len(TEXT.split())}-word sentence"},
        "method": f"batch-1 calls, {ROUND_SIZE}-call rounds interleaved across variants after 10 warm-up calls each; "
                  "server in its own process on 127.0.0.1; grpc_floor = GetModelStatus round trip; client-side "
                  "encoding cost = request serialization plus answer parsing to Python/NumPy values (medians of 200)",
    })


if __name__ == "__main__":
    main()
