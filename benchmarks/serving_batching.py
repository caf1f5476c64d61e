"""Serving batching: 16 concurrent one-text clients against `serving/server.py` with and without --enable_batching.

Usage (from the repository root):
    python benchmarks/serving_batching.py [--export exports/NAME/VERSION] [--requests 480] [--rounds 3]

The model is the configs/sentiment_imdb.yaml architecture (BiGRU 128, vocabulary 20000), trained for a few
steps on synthetic data (harness.imdb_size_sentiment_export), called with a 230-word review. Two servers run
side by side as their own processes: the baseline (no batching) and one with --enable_batching and the
parameters below. Rounds alternate between them so the shared machine's drift hits both alike. Each round:
16 client threads (one keep-alive REST connection each) send `--requests` requests in all, one text each.
Figure: requests per second (batched / unbatched), with p50 and p99 latency of each. Target: ratio >= 2.
"""

import argparse
import concurrent.futures
import json
import os
import tempfile
import time

import numpy as np

import harness
import server_process

CLIENTS = 16
TARGET_RATIO = 2.0
BATCHING_PARAMETERS = ("max_batch_size { value: 16 }\nbatch_timeout_micros { value: 5000 }\n"
                       "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 64 }\n")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", help="a SavedModel version folder with a `text` string input")
    parser.add_argument("--requests", type=int, default=480, help="requests per round and server (default 480)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    return parser.parse_args()


def _start_server(base_path: str, extra_flags: list) -> server_process.ServerProcess:
    """A server on the `imdb` model whose version 1 is AVAILABLE."""
    server = server_process.start("imdb", base_path, ["--file_system_poll_wait_seconds=0", *extra_flags])
    server_process.wait_until_available(server, 1)
    return server


def _round(url: str, text: str, count: int) -> tuple[float, list]:
    """`count` requests from CLIENTS threads; returns (seconds, latencies)."""
    import requests
    body = json.dumps({"instances": [text]})
    sessions = [requests.Session() for _ in range(CLIENTS)]

    def client(index: int) -> list:
        latencies = []
        for _ in range(index, count, CLIENTS):
            started = time.perf_counter()
            response = sessions[index].post(url, data=body, timeout=120)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
        return latencies

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        latencies = [value for part in pool.map(client, range(CLIENTS)) for value in part]
    return time.perf_counter() - started, latencies


def main() -> None:
    arguments = _arguments()
    text = harness.review_text()
    with tempfile.TemporaryDirectory() as directory:
        export = os.path.abspath(arguments.export or harness.imdb_size_sentiment_export(directory))
        base_path = os.path.join(directory, "served")
        os.makedirs(base_path)
        os.symlink(export, os.path.join(base_path, "1"))
        parameters = os.path.join(directory, "batching_parameters.txt")
        with open(parameters, "w", encoding="utf-8") as stream:
            stream.write(BATCHING_PARAMETERS)
        servers = {"unbatched": _start_server(base_path, []),
                   "batched": _start_server(base_path, ["--enable_batching",
                                                        f"--batching_parameters_file={parameters}"])}
        results = {name: {"seconds": 0.0, "latencies": []} for name in servers}
        try:
            for server in servers.values():
                _round(f"{server.model_url}:predict", text, CLIENTS * 2)  # warm the connections and the model
            for round_index in range(arguments.rounds):
                for name, server in servers.items():
                    seconds, latencies = _round(f"{server.model_url}:predict", text, arguments.requests)
                    results[name]["seconds"] += seconds
                    results[name]["latencies"] += latencies
                    harness.progress(f"round {round_index + 1} {name}: {arguments.requests / seconds:.1f} requests/s")
        finally:
            for server in servers.values():
                server.stop()

    figures = {}
    for name, result in results.items():
        latencies = np.array(result["latencies"]) * 1000
        figures[name] = {"requests_per_second": harness.rounded(len(latencies) / result["seconds"], 2),
                         "p50_ms": harness.rounded(float(np.percentile(latencies, 50)), 1),
                         "p99_ms": harness.rounded(float(np.percentile(latencies, 99)), 1)}
    ratio = figures["batched"]["requests_per_second"] / figures["unbatched"]["requests_per_second"]
    harness.report("serving_batching", {
        "figure": "throughput of 16 concurrent one-text REST clients, batched / unbatched server",
        "batched": figures["batched"], "baseline_unbatched": figures["unbatched"],
        "ratio": harness.rounded(ratio, 3), "target": f"ratio >= {TARGET_RATIO}", "target_met": ratio >= TARGET_RATIO,
        "batching_parameters": BATCHING_PARAMETERS.replace("\n", " ").strip(),
        "model": "configs/sentiment_imdb.yaml architecture, 230-word review", "clients": CLIENTS,
        "requests": arguments.requests * arguments.rounds,
    })


if __name__ == "__main__":
    main()
