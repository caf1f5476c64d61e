"""Serving warm-up: the first request of an XLA signature after its version loads, with and without warm-up.

Usage (from the repository root):
    python benchmarks/serving_warmup.py [--export exports/NAME/VERSION] [--rounds 3] [--steady-requests 100]

The model is the configs/sentiment_imdb.yaml architecture (BiGRU 128) trained for a few steps on synthetic
data and exported with `export.jit_compile: true` (harness.imdb_size_sentiment_export), so it has
`serving_default_xla`, whose model call XLA compiles once per input shape (token axis padded to a multiple
of 16). Its `assets.extra/tf_serving_warmup_requests` is checked first: how many requests it holds per
signature.

Each round starts two servers in turn (`serving/server.py`, own process, REST), one with
`--enable_model_warmup=true` (the default) and one with `--enable_model_warmup=false` (the baseline), on an
empty base path; once a server answers, the export is linked in as version 1, the model status is polled
every 10 ms until the version is AVAILABLE, the client's connection is opened (a model status request), and
at once one request goes to `serving_default_xla` with a 230-word review (a length none of the warm-up
requests has). Then the steady state: 10 requests unmeasured,
`--steady-requests` measured (p50). Figure: first-request latency / steady p50, median over rounds.
Target: <= 2 with warm-up on. Also reported: seconds from the version's appearance to AVAILABLE.
"""

import argparse
import collections
import json
import os
import tempfile
import time

import numpy as np

import harness
import server_process

TARGET_RATIO = 2.0
SIGNATURE = "serving_default_xla"
MODES = {"warmup_on": "--enable_model_warmup=true", "warmup_off": "--enable_model_warmup=false"}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", help="a SavedModel version folder with serving_default_xla taking `text` "
                        "(default: the configs/sentiment_imdb.yaml architecture, exported here with XLA signatures)")
    parser.add_argument("--rounds", type=int, default=3, help="servers started per mode (default 3)")
    parser.add_argument("--steady-requests", type=int, default=100, help="measured steady requests (default 100)")
    return parser.parse_args()


def warmup_records(export_path: str) -> dict[str, int]:
    """Signature name -> number of predict requests in the export's warm-up file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_path, "assets.extra", "tf_serving_warmup_requests")
    counts = collections.Counter()
    if os.path.exists(path):
        for record in tf.data.TFRecordDataset(path):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            counts[log.predict_log.request.model_spec.signature_name] += 1
    return dict(counts)


def measure_once(export_path: str, directory: str, flag: str, text: str, steady_requests: int) -> dict:
    """One server: link the export in, wait for AVAILABLE, time the first request and the steady ones."""
    import requests

    base_path = tempfile.mkdtemp(dir=directory)
    server = server_process.start("imdb", base_path, [flag, "--file_system_poll_wait_seconds=1"])
    try:
        appeared = time.perf_counter()
        os.symlink(export_path, os.path.join(base_path, "1"))
        available = server_process.wait_until_available(server, 1)
        session = requests.Session()
        # The connection is opened by a status request, so that the first prediction times the model's first
        # call, not a new TCP connection and its server thread (the steady requests reuse the connection too).
        session.get(server.model_url, timeout=60).raise_for_status()
        body = json.dumps({"signature_name": SIGNATURE, "instances": [text]})

        def call() -> float:
            started = time.perf_counter()
            response = session.post(f"{server.model_url}:predict", data=body, timeout=120)
            response.raise_for_status()
            return time.perf_counter() - started

        first = call()
        for _ in range(10):
            call()
        steady = [call() for _ in range(steady_requests)]
    finally:
        server.stop()
    return {"first_ms": 1000 * first, "steady_p50_ms": 1000 * float(np.percentile(steady, 50)),
            "steady_p99_ms": 1000 * float(np.percentile(steady, 99)), "load_seconds": available - appeared}


def main() -> None:
    arguments = _arguments()
    text = harness.review_text()
    with tempfile.TemporaryDirectory() as directory:
        export = os.path.abspath(arguments.export or
                                 harness.imdb_size_sentiment_export(directory, ["export.jit_compile=true"]))
        records = warmup_records(export)
        harness.progress(f"warm-up file: {records}")
        rounds = {mode: [] for mode in MODES}
        for round_index in range(arguments.rounds):
            order = list(MODES) if round_index % 2 == 0 else list(MODES)[::-1]
            for mode in order:
                result = measure_once(export, directory, MODES[mode], text, arguments.steady_requests)
                result["ratio"] = result["first_ms"] / result["steady_p50_ms"]
                rounds[mode].append(result)
                harness.progress(f"round {round_index + 1} {mode}: first {result['first_ms']:.1f} ms, steady p50 "
                                 f"{result['steady_p50_ms']:.1f} ms, load {result['load_seconds']:.1f} s")

    figures = {}
    for mode, results in rounds.items():
        figures[mode] = {
            "first_request_ms": harness.rounded(harness.median([result["first_ms"] for result in results]), 1),
            "steady_p50_ms": harness.rounded(harness.median([result["steady_p50_ms"] for result in results]), 2),
            "steady_p99_ms": harness.rounded(harness.median([result["steady_p99_ms"] for result in results]), 2),
            "first_over_steady_p50": harness.rounded(harness.median([result["ratio"] for result in results]), 2),
            "load_seconds": harness.rounded(harness.median([result["load_seconds"] for result in results]), 1),
            "rounds": [{key: harness.rounded(value, 2) for key, value in result.items()} for result in results],
        }
    ratio = figures["warmup_on"]["first_over_steady_p50"]
    harness.report("serving_warmup", {
        "figure": f"first {SIGNATURE} request after the version is AVAILABLE / steady p50, warm-up on "
                  "(median over rounds)",
        "value": ratio, "warmup_on": figures["warmup_on"],
        "baseline": figures["warmup_off"]["first_over_steady_p50"], "baseline_warmup_off": figures["warmup_off"],
        "ratio": harness.rounded(figures["warmup_on"]["first_request_ms"] / figures["warmup_off"]["first_request_ms"], 3),
        "ratio_is": "first request ms, warm-up on / off",
        "target": f"first / steady p50 <= {TARGET_RATIO} with warm-up on", "target_met": ratio <= TARGET_RATIO,
        "warmup_records": records,
        "model": f"configs/sentiment_imdb.yaml architecture, export.jit_compile: true, {harness.REVIEW_WORDS}-word "
                 "review, REST",
        "rounds": arguments.rounds, "steady_requests": arguments.steady_requests,
    })


if __name__ == "__main__":
    main()
