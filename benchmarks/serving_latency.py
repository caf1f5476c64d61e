"""Serving latency: batch-1 calls through `serving/server.py` (REST and gRPC) vs the signature called in-process.

Usage (from the repository root):
    python benchmarks/serving_latency.py [--export exports/NAME/VERSION] [--calls 400] [--concurrent-requests 800]

Without --export it trains configs/tiny/sentiment.yaml into a temporary folder (under a minute) and serves that.
The server runs as its own process (`python serving/server.py`), as in production; the client side is this
process. Measured in one run, interleaved in rounds so that the shared machine's drift hits every variant alike:
    in_process  `tf.saved_model.load(export).signatures["serving_default"](text=...)`, outputs to NumPy
    rest        POST /v1/models/NAME:predict {"instances": [text]} over a kept-alive connection, JSON parsed
    grpc        PredictionService.Predict with the official stubs, request built and outputs converted per call
Then throughput with 16 concurrent clients (threads, each with its own connection) for REST and gRPC, and the
client-side cost of encoding a batch-64 request and decoding its answer as JSON vs protobuf.
Target: gRPC p50 / in-process p50 <= 1.5.
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

import numpy as np

import harness

TARGET_RATIO = 1.5
MODEL_NAME = "bench"
ROUND_SIZE = 25
CONCURRENCY = 16
ENCODING_BATCH = 64
TEXT = "the acting was not very good but the music was extremely good"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", help="a SavedModel version folder with a `text` string input (default: train "
                        "configs/tiny/sentiment.yaml)")
    parser.add_argument("--calls", type=int, default=400, help="batch-1 calls per variant (default 400, >= 200)")
    parser.add_argument("--concurrent-requests", type=int, default=800,
                        help="requests per protocol in the concurrency-16 throughput run (default 800)")
    return parser.parse_args()


def _tiny_sentiment_export(directory: str) -> str:
    from pipeline import config as config_lib
    from pipeline import export
    from pipeline import training
    config = config_lib.load_config(["configs/tiny/sentiment.yaml"], [
        f"runtime.run_dir={directory}/run", f"export.dir={directory}/exports", "export.on_train_end=false",
        "export.self_check=false"])
    with harness.stdout_to_stderr():
        return export.export_run(training.train(config))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(base_path: str) -> tuple[subprocess.Popen, int, int]:
    import requests
    rest_port, grpc_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "serving/server.py", f"--rest_api_port={rest_port}", f"--port={grpc_port}",
         f"--model_name={MODEL_NAME}", f"--model_base_path={base_path}", "--file_system_poll_wait_seconds=0"],
        stdout=sys.stderr, stderr=sys.stderr, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("error: the server exited while starting (see above)")
        try:
            if requests.get(f"http://127.0.0.1:{rest_port}/v1/models/{MODEL_NAME}", timeout=2).ok:
                return process, rest_port, grpc_port
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    sys.exit("error: the server did not answer within 300 s")


def _callers(export_path: str, rest_port: int, grpc_port: int) -> dict:
    """One function per variant, each making a batch-1 call and returning the NumPy-converted outputs."""
    import grpc
    import requests
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    signature = tf.saved_model.load(export_path).signatures["serving_default"]
    session = requests.Session()
    url = f"http://127.0.0.1:{rest_port}/v1/models/{MODEL_NAME}:predict"
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))

    def in_process():
        return {key: value.numpy() for key, value in signature(text=tf.constant([TEXT])).items()}

    def rest():
        response = session.post(url, data=json.dumps({"instances": [TEXT]}), timeout=60)
        response.raise_for_status()
        return response.json()["predictions"]

    def grpc_call():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs["text"].CopyFrom(tf.make_tensor_proto([TEXT]))
        response = stub.Predict(request, timeout=60)
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    return {"in_process": in_process, "rest": rest, "grpc": grpc_call}


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
        request.model_spec.name = MODEL_NAME
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


def main() -> None:
    arguments = _arguments()
    if arguments.calls < 200:
        sys.exit("error: --calls must be at least 200")
    harness.configure_logging()
    with tempfile.TemporaryDirectory() as directory:
        export_path = os.path.abspath(arguments.export) if arguments.export else _tiny_sentiment_export(directory)
        base_path = os.path.join(directory, "served")
        os.makedirs(base_path)
        os.symlink(export_path, os.path.join(base_path, "1"))
        server, rest_port, grpc_port = _start_server(base_path)
        try:
            callers = _callers(export_path, rest_port, grpc_port)
            timings = _latencies(callers, arguments.calls)
            harness.progress("throughput at concurrency 16")
            throughput = {name: harness.rounded(_throughput(
                lambda name=name: _callers(export_path, rest_port, grpc_port)[name], arguments.concurrent_requests), 1)
                for name in ("rest", "grpc")}
        finally:
            server.terminate()
            server.wait(timeout=60)
    latency = {name: _summary(values) for name, values in timings.items()}
    ratio = latency["grpc"]["p50_ms"] / latency["in_process"]["p50_ms"]
    harness.report("serving_latency", {
        "figure": "gRPC batch-1 p50 latency relative to calling the signature in-process (same model, same run)",
        "grpc_over_in_process_p50": harness.rounded(ratio, 3),
        "rest_over_in_process_p50": harness.rounded(latency["rest"]["p50_ms"] / latency["in_process"]["p50_ms"], 3),
        "target": f"grpc_over_in_process_p50 <= {TARGET_RATIO}", "target_met": ratio <= TARGET_RATIO,
        "latency": latency,
        "throughput_requests_per_second_at_concurrency_16": throughput,
        f"encoding_cost_batch_{ENCODING_BATCH}": _encoding_costs(ENCODING_BATCH),
        "model": export_path if arguments.export else "configs/tiny/sentiment.yaml (trained in this run)",
        "method": f"batch-1 calls, {ROUND_SIZE}-call rounds interleaved across variants after 10 warm-up calls each; "
                  "server in its own process on 127.0.0.1; client-side encoding cost = request serialization plus "
                  "answer parsing to Python/NumPy values (medians of 200)",
    })


if __name__ == "__main__":
    main()
