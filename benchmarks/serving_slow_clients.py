"""Serving under slow and big clients: slow bodies closed by the body timeout; small requests beside big ones.

Usage (from the repository root):
    python benchmarks/serving_slow_clients.py [--export exports/NAME/VERSION] [--parts a,b] [--slow-connections 400]
        [--timeout-ms 2000] [--large-clients 10] [--large-mb 2.4] [--small-requests 150] [--rounds 2]
        [--chunk-rows 0 --chunk-rows 32]

The model is the configs/sentiment_imdb.yaml architecture (BiGRU 128, vocabulary 20000), trained for a few
steps on synthetic data (harness.imdb_size_sentiment_export). Servers are `serving/server.py` in processes of
their own, default flags otherwise:

(a) Slow connections, against a server with `--rest_api_timeout_in_ms=<--timeout-ms>`: `--slow-connections`
    connections each send a predict request's headers with `Content-Length: 1000` and 6 bytes of body, then
    nothing. Figure: how many the server closed (answer then end of stream) and the latest close, counted from
    each connection's last byte sent, over the timeout. Target: all closed by the timeout plus `--grace-ms`.
(b) Small beside big, against one server per `--chunk-rows` value (`--large_request_chunk_rows`; 0 runs every
    request whole, the server before row chunks) with `--rest_api_timeout_in_ms=60000` (so the big requests
    finish): one client sends one-text requests (a 230-word review) one after the other, on an idle server
    (baseline) and while `--large-clients` clients each keep one `--large-mb` MB request in flight (230-word
    reviews, resent as soon as answered). Rounds alternate idle and loaded, and servers, so that every
    setting sees the same load from other work. Figures per setting: p50 and p99 of the one-text request,
    loaded and idle, the loaded / idle ratio, and the big requests' throughput: rows answered per second from
    the big clients' start to their last answer (the one-text client sends during the first part of that
    time), and rows per second of one big request alone on the idle server (once per round). Target: loaded
    p99 < 100 ms. The machine's load average (`os.getloadavg()`) is sampled
    every few seconds during (b) and reported.
"""
import argparse
import asyncio
import json
import os
import tempfile
import threading
import time

import numpy as np

import harness
import server_process

TARGET_P99_MS = 100.0
DECLARED_BYTES = 1000
SENT_BODY = b'{"inst'


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", help="a SavedModel version folder with a `text` string input")
    parser.add_argument("--slow-connections", type=int, default=400, help="slow connections (default 400)")
    parser.add_argument("--timeout-ms", type=int, default=2000, help="server body timeout for (a) (default 2000)")
    parser.add_argument("--grace-ms", type=int, default=500, help="allowed lateness of a close (default 500)")
    parser.add_argument("--large-clients", type=int, default=10, help="big requests in flight (default 10)")
    parser.add_argument("--large-mb", type=float, default=2.4, help="size of each big request in MB (default 2.4)")
    parser.add_argument("--small-requests", type=int, default=150, help="one-text requests per round (default 150)")
    parser.add_argument("--rounds", type=int, default=2, help="idle and loaded rounds each (default 2)")
    parser.add_argument("--server-flag", action="append", default=[],
                        help="an extra flag for the servers of (b), e.g. --server-flag=--tensorflow_intra_op_parallelism=1")
    parser.add_argument("--chunk-rows", type=int, action="append",
                        help="--large_request_chunk_rows of a server of (b); repeat to compare (default 0 and 32)")
    parser.add_argument("--parts", default="a,b", help="which parts to run: a, b or a,b (default a,b)")
    arguments = parser.parse_args()
    arguments.chunk_rows = arguments.chunk_rows or [0, 32]
    arguments.parts = {part.strip() for part in arguments.parts.split(",") if part.strip()}
    if not arguments.parts or arguments.parts - {"a", "b"}:
        parser.error("--parts takes a, b or a,b")
    return arguments


# === (a) slow connections ===


async def _slow_connection(port: int, model_name: str, give_up_seconds: float) -> tuple[float | None, bytes]:
    """One connection that stalls mid-body; returns (seconds from its last byte to the server's close, answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST /v1/models/{model_name}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {DECLARED_BYTES}\r\n\r\n".encode() + SENT_BODY)
    await writer.drain()
    sent = time.perf_counter()
    answer = b""
    try:
        async with asyncio.timeout(give_up_seconds):
            while chunk := await reader.read(65536):
                answer += chunk
        closed = time.perf_counter() - sent
    except TimeoutError:
        closed = None  # still open: the server did not close it
    except ConnectionError:
        closed = time.perf_counter() - sent
    writer.close()
    return closed, answer


async def _slow_connections(port: int, model_name: str, count: int, give_up_seconds: float) -> list:
    return await asyncio.gather(*(_slow_connection(port, model_name, give_up_seconds) for _ in range(count)))


def measure_slow_connections(server: server_process.ServerProcess, count: int, timeout_seconds: float,
                             grace_seconds: float) -> dict:
    """Opens `count` stalled connections at once; how and when the server closed them."""
    results = asyncio.run(_slow_connections(server.port, server.model_name, count, 3 * timeout_seconds + 5))
    closes = [seconds for seconds, _ in results if seconds is not None]
    statuses = [answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "none" for _, answer in results]
    latest = max(closes) if closes else float("nan")
    return {
        "connections": count, "closed_by_server": len(closes),
        "closed_within_timeout_plus_grace": sum(seconds <= timeout_seconds + grace_seconds for seconds in closes),
        "answers": {status: statuses.count(status) for status in sorted(set(statuses))},
        "earliest_close_s": harness.rounded(min(closes), 3) if closes else None,
        "median_close_s": harness.rounded(harness.median(closes), 3) if closes else None,
        "latest_close_s": harness.rounded(latest, 3), "timeout_s": timeout_seconds,
        "latest_close_over_timeout": harness.rounded(latest / timeout_seconds, 3),
        "grace_s": grace_seconds,
        "target_met": len(closes) == count and latest <= timeout_seconds + grace_seconds,
    }


# === (b) small requests beside big ones ===


def large_request_body(text: str, megabytes: float) -> bytes:
    """A predict request of about `megabytes` MB: as many copies of `text` as fit."""
    item = json.dumps(text)
    count = max(1, int(megabytes * 1e6 / (len(item) + 1)))
    return ('{"instances": [' + ",".join([item] * count) + "]}").encode()


class LargeClients:
    """Threads that each keep one big request in flight until stopped."""

    def __init__(self, url: str, body: bytes, count: int):
        self._url, self._body = url, body
        self._stop = threading.Event()
        self.answers: list[int] = []
        self.seconds: list[float] = []
        self.elapsed_seconds = 0.0
        self._started = 0.0
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]

    def _run(self) -> None:
        import requests

        session = requests.Session()
        while not self._stop.is_set():
            started = time.perf_counter()
            response = session.post(self._url, data=self._body, timeout=300,
                                    headers={"Content-Type": "application/json"})
            self.answers.append(response.status_code)
            self.seconds.append(time.perf_counter() - started)

    def start(self) -> None:
        self._started = time.perf_counter()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stops sending and waits for the requests in flight to be answered."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.elapsed_seconds = time.perf_counter() - self._started


class LoadSampler:
    """A thread recording the machine's 1-minute load average every `interval_seconds`."""

    def __init__(self, interval_seconds: float = 5.0):
        self.samples: list[float] = []
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self._interval):
                return

    def start(self) -> "LoadSampler":
        self._thread.start()
        return self

    def stop(self) -> dict:
        """Stops sampling; returns the samples' minimum, median and maximum."""
        self._stop.set()
        self._thread.join()
        return {"min": harness.rounded(min(self.samples), 2), "median": harness.rounded(harness.median(self.samples), 2),
                "max": harness.rounded(max(self.samples), 2), "samples": len(self.samples),
                "interval_s": self._interval}


def small_latencies(url: str, text: str, count: int) -> list[float]:
    """`count` one-text requests one after the other, in seconds."""
    import requests

    session = requests.Session()
    body = json.dumps({"instances": [text]})
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(url, data=body, timeout=120)
        response.raise_for_status()
        latencies.append(time.perf_counter() - started)
    return latencies


class _Setting:
    """One server of (b) and what was measured on it."""

    def __init__(self, chunk_rows: int, server: server_process.ServerProcess):
        self.chunk_rows = chunk_rows
        self.server = server
        self.latencies: dict[str, list[float]] = {"idle": [], "loaded": []}
        self.large_answers: list[int] = []
        self.large_seconds: list[float] = []
        self.large_rows = 0
        self.loaded_seconds = 0.0
        self.alone_seconds: list[float] = []


def measure_small_beside_large(settings: list[_Setting], text: str, arguments) -> dict:
    """Interleaved idle and loaded rounds of one-text requests on each server; figures per setting."""
    body = large_request_body(text, arguments.large_mb)
    texts_per_body = body.count(b'", "') + body.count(b'","') + 1
    for setting in settings:
        small_latencies(f"{setting.server.model_url}:predict", text, 10)  # warm the connection and the model
    for round_index in range(arguments.rounds):
        for setting in settings:
            url = f"{setting.server.model_url}:predict"
            setting.latencies["idle"] += small_latencies(url, text, arguments.small_requests)
            setting.alone_seconds.append(_large_alone_seconds(url, body))
            clients = LargeClients(url, body, arguments.large_clients)
            clients.start()
            time.sleep(2.0)  # the big bodies are sent and the first is running
            setting.latencies["loaded"] += small_latencies(url, text, arguments.small_requests)
            harness.progress(f"round {round_index + 1}, chunk rows {setting.chunk_rows}: stopping the big clients; "
                             "waiting for their answers")
            clients.stop()
            setting.large_answers += clients.answers
            setting.large_seconds += clients.seconds
            setting.large_rows += clients.answers.count(200) * texts_per_body
            setting.loaded_seconds += clients.elapsed_seconds
    return {f"chunk_rows_{setting.chunk_rows}": _figures(setting, texts_per_body) for setting in settings} | {
        "large_request_mb": harness.rounded(len(body) / 1e6, 2), "large_request_texts": texts_per_body}


def _large_alone_seconds(url: str, body: bytes) -> float:
    """Seconds one big request takes on the otherwise idle server."""
    import requests

    started = time.perf_counter()
    requests.post(url, data=body, timeout=300, headers={"Content-Type": "application/json"}).raise_for_status()
    return time.perf_counter() - started


def _figures(setting: _Setting, texts_per_body: int) -> dict:
    figures = {name: {"p50_ms": harness.rounded(1000 * float(np.percentile(values, 50)), 1),
                      "p99_ms": harness.rounded(1000 * float(np.percentile(values, 99)), 1),
                      "max_ms": harness.rounded(1000 * max(values), 1), "requests": len(values)}
               for name, values in setting.latencies.items()}
    answers = setting.large_answers
    return {
        "loaded": figures["loaded"], "idle": figures["idle"],
        "p50_ratio": harness.rounded(figures["loaded"]["p50_ms"] / figures["idle"]["p50_ms"], 2),
        "p99_ratio": harness.rounded(figures["loaded"]["p99_ms"] / figures["idle"]["p99_ms"], 2),
        "large_answers": {str(code): answers.count(code) for code in sorted(set(answers))},
        "large_answer_seconds_median": harness.rounded(harness.median(setting.large_seconds), 1)
        if setting.large_seconds else None,
        "large_rows_per_second": harness.rounded(setting.large_rows / setting.loaded_seconds, 1),
        "large_rows_per_second_alone": harness.rounded(texts_per_body / harness.median(setting.alone_seconds), 1),
        "target_met": figures["loaded"]["p99_ms"] < TARGET_P99_MS,
    }


def main() -> None:
    arguments = _arguments()
    text = harness.review_text()
    result = {}
    with tempfile.TemporaryDirectory() as directory:
        export = os.path.abspath(arguments.export or harness.imdb_size_sentiment_export(directory))
        base_path = os.path.join(directory, "served")
        os.makedirs(base_path)
        os.symlink(export, os.path.join(base_path, "1"))
        if "a" in arguments.parts:
            result.update(_part_a(base_path, arguments))
        if "b" in arguments.parts:
            result.update(_part_b(base_path, text, arguments))
    harness.report("serving_slow_clients", {
        **result, "model": f"configs/sentiment_imdb.yaml architecture, {harness.REVIEW_WORDS}-word review, REST"})


def _part_a(base_path: str, arguments) -> dict:
    slow_server = server_process.start("imdb", base_path, [f"--rest_api_timeout_in_ms={arguments.timeout_ms}"])
    try:
        harness.progress(f"(a) {arguments.slow_connections} slow connections")
        slow = measure_slow_connections(slow_server, arguments.slow_connections, arguments.timeout_ms / 1000,
                                        arguments.grace_ms / 1000)
        harness.progress(f"(a) {slow}")
    finally:
        slow_server.stop()
    return {"slow_connections": slow,
            "slow_connections_target": f"all {arguments.slow_connections} closed within the body timeout "
                                       f"({arguments.timeout_ms} ms) + {arguments.grace_ms} ms"}


def _part_b(base_path: str, text: str, arguments) -> dict:
    flags = ["--rest_api_timeout_in_ms=60000", *arguments.server_flag]
    settings = []
    try:
        for chunk_rows in arguments.chunk_rows:
            server = server_process.start("imdb", base_path, [*flags, f"--large_request_chunk_rows={chunk_rows}"])
            settings.append(_Setting(chunk_rows, server))
        harness.progress(f"(b) one-text requests beside {arguments.large_clients} big ones, chunk rows "
                         f"{arguments.chunk_rows}")
        sampler = LoadSampler().start()
        beside = measure_small_beside_large(settings, text, arguments)
        beside["load_average_1min"] = sampler.stop()
    finally:
        for setting in settings:
            setting.server.stop()
    figures = beside[f"chunk_rows_{arguments.chunk_rows[-1]}"]
    baseline = beside[f"chunk_rows_{arguments.chunk_rows[0]}"]
    return {
        "figure": f"one-text request p99 (ms) while {arguments.large_clients} requests of {arguments.large_mb} MB "
                  f"are in flight, --large_request_chunk_rows={arguments.chunk_rows[-1]}",
        "value": figures["loaded"]["p99_ms"], "baseline": baseline["loaded"]["p99_ms"],
        "baseline_is": f"the same with --large_request_chunk_rows={arguments.chunk_rows[0]}, same run, "
                      "interleaved rounds",
        "ratio": harness.rounded(figures["loaded"]["p99_ms"] / baseline["loaded"]["p99_ms"], 3),
        "target": f"p99 < {TARGET_P99_MS:g} ms", "target_met": figures["target_met"],
        "large_rows_per_second_ratio": harness.rounded(
            figures["large_rows_per_second"] / baseline["large_rows_per_second"], 3)
        if baseline["large_rows_per_second"] else None,
        "large_rows_per_second_alone_ratio": harness.rounded(
            figures["large_rows_per_second_alone"] / baseline["large_rows_per_second_alone"], 3),
        "small_beside_large": beside, "server_flags_b": flags,
    }


if __name__ == "__main__":
    main()
