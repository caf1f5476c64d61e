"""Serving memory: 8 concurrent 48 MB predict requests against `serving/server.py`; the server's peak RSS.

Usage (from the repository root):
    python benchmarks/serving_memory.py [--clients 8] [--request-mb 48]

The server runs as its own process with its default limits (--max_request_bytes 64 MiB, --max_bytes_in_flight
256 MiB) and serves a small model taking `x` float [batch, width] and answering the mean of each row, so the
figure is the cost of taking the requests in, not of the model. Each client posts a valid JSON request of
`--request-mb` MB of floats ({"instances": [[...1000 floats...], ...]}); every answer must be a result or a
JSON error (429 when the bytes in flight are full).

Figures: the peak RSS the server reached above its RSS before the load (Linux VmHWM, reset just before),
against the bound the README states: 4 x the bytes in flight admitted at most (--max_bytes_in_flight).
Baseline, measured in the same run: the memory json.loads and a float32 conversion take for ONE such request
(in a child process), which is how the server parsed requests before.
"""

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import harness
import server_process

BUDGET_BYTES = 256 * 1024 * 1024  # the server's default --max_bytes_in_flight
MEMORY_PER_BYTE = 4  # the documented bound: peak memory of requests <= 4 x bytes in flight
ROW_WIDTH = 1000


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent requests (default 8)")
    parser.add_argument("--request-mb", type=float, default=48, help="size of each request in MB (default 48)")
    return parser.parse_args()


def _write_mean_model(path: str) -> None:
    import tensorflow as tf

    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def serve(x):
        return {"y": tf.reduce_mean(x, axis=1)}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def request_body(megabytes: float) -> bytes:
    """A valid predict request of about `megabytes` MB: rows of ROW_WIDTH floats written with 6 decimals."""
    generator = np.random.default_rng(0)
    row = "[" + ",".join(f"{value:.6f}" for value in generator.random(ROW_WIDTH)) + "]"
    rows = max(1, int(megabytes * 1e6 / (len(row) + 1)))
    return ('{"instances": [' + ",".join([row] * rows) + "]}").encode()


def _memory_line(pid: int, field: str) -> int:
    """A /proc/PID/status memory figure (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as stream:
        for line in stream:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def _reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as stream:
        stream.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _json_loads_memory(body_path: str) -> int:
    """Peak memory growth of json.loads + float32 conversion of one request, in a child process."""
    # ru_maxrss survives exec (it would be the parent's), so the child reads its own VmHWM after a reset.
    script = ("import json, sys, numpy as np\n"
              "def status(field):\n"
              "    return next(int(line.split()[1]) * 1024 for line in open('/proc/self/status')\n"
              "                if line.startswith(field + ':'))\n"
              "body = open(sys.argv[1], 'rb').read()\n"
              "open('/proc/self/clear_refs', 'w').write('5')\n"
              "before = status('VmRSS')\n"
              "array = np.asarray(json.loads(body)['instances'], dtype=np.float32)\n"
              "print(status('VmHWM') - before)\n")
    output = subprocess.run([sys.executable, "-c", script, body_path], check=True, capture_output=True, text=True)
    return int(output.stdout.split()[-1])


def main() -> None:
    arguments = _arguments()
    import requests

    with tempfile.TemporaryDirectory() as directory:
        harness.progress("writing the mean model and the request")
        _write_mean_model(os.path.join(directory, "mean", "1"))
        body = request_body(arguments.request_mb)
        body_path = os.path.join(directory, "body.json")
        with open(body_path, "wb") as stream:
            stream.write(body)
        harness.progress(f"baseline: json.loads of one {len(body) / 1e6:.1f} MB request")
        baseline_bytes = _json_loads_memory(body_path)
        harness.progress(f"baseline: {baseline_bytes / 1e6:.0f} MB")

        server = server_process.start("mean", os.path.join(directory, "mean"), [])
        server_process.wait_until_available(server, 1)
        process, url = server.process, server.model_url
        try:
            small = requests.post(f"{url}:predict", json={"instances": [[1.0, 3.0]]}, timeout=60)
            assert small.json() == {"predictions": [2.0]}, small.text
            rss_before = _memory_line(process.pid, "VmRSS")
            _reset_peak(process.pid)

            def send(_):
                started = time.perf_counter()
                response = requests.post(f"{url}:predict", data=body, timeout=600,
                                         headers={"Content-Type": "application/json"})
                document = response.json()  # every answer is JSON, result or error
                assert response.status_code == 200 or "error" in document, response.text[:300]
                return response.status_code, time.perf_counter() - started

            harness.progress(f"{arguments.clients} concurrent requests of {len(body) / 1e6:.1f} MB")
            with concurrent.futures.ThreadPoolExecutor(arguments.clients) as pool:
                answers = list(pool.map(send, range(arguments.clients)))
            peak = _memory_line(process.pid, "VmHWM")
            after = requests.post(f"{url}:predict", json={"instances": [[1.0, 3.0]]}, timeout=60)
            alive = process.poll() is None and after.status_code == 200
        finally:
            server.stop()

    codes = [code for code, _ in answers]
    growth = peak - rss_before
    bound = MEMORY_PER_BYTE * BUDGET_BYTES
    harness.report("serving_memory", {
        "figure": "server peak RSS above its idle RSS under the concurrent large requests (MB)",
        "peak_rss_growth_mb": harness.rounded(growth / 1e6, 1),
        "bound_mb": harness.rounded(bound / 1e6, 1),
        "ratio_to_bound": harness.rounded(growth / bound, 3),
        "baseline": "json.loads + float32 conversion of one request, in its own process (the earlier parser)",
        "baseline_mb_per_request": harness.rounded(baseline_bytes / 1e6, 1),
        "ratio_to_baseline_times_clients": harness.rounded(growth / (baseline_bytes * arguments.clients), 3),
        "server_idle_rss_mb": harness.rounded(rss_before / 1e6, 1),
        "request_mb": harness.rounded(len(body) / 1e6, 1),
        "answers": {str(code): codes.count(code) for code in sorted(set(codes))},
        "seconds_per_answer": [harness.rounded(seconds, 2) for _, seconds in answers],
        "server_alive_after": alive,
        "target": "every answer a result or a JSON error; server alive; peak growth <= bound",
        "target_met": alive and growth <= bound and set(codes) <= {200, 429},
    })


if __name__ == "__main__":
    main()
