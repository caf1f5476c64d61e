"""Limits that keep the server up under big, slow or many requests: 413 before the body, body timeout,
admission control (429 at once), timed-out work held against the budget, gzip bodies, element limits and a
pool of its own for large requests."""

import gzip
import json
import socket
import threading
import time

import pytest
import requests

import serving_helpers
from serving import model_config

TIMEOUT_SECONDS = 1.0
BUDGET_BYTES = 30000
LARGE_REQUEST_BYTES = 8000


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory):
    """The mean model twice: "mean" (fast) and "slow" (every run first sleeps), with small limits."""
    directory = tmp_path_factory.mktemp("limits")
    serving_helpers.write_mean_model(str(directory / "mean" / "1"))
    serving_helpers.write_mean_model(str(directory / "slow" / "1"))

    def loader(name, version, path):
        kind = serving_helpers.SlowServable if name == "slow" else serving_helpers.servable_lib.Servable
        return kind(name, version, path)

    configs = [model_config.ModelConfig(name, str(directory / name)) for name in ("mean", "slow")]
    running = serving_helpers.start_server(
        configs, loader, grpc_port=None, num_threads=4, timeout_seconds=TIMEOUT_SECONDS,
        max_request_bytes=serving_helpers.MAX_REQUEST_BYTES, max_request_elements=5000,
        max_bytes_in_flight=BUDGET_BYTES, large_request_bytes=LARGE_REQUEST_BYTES, large_request_threads=1)
    yield running
    running.server.stop_thread()
    running.server.manager.stop()


def _body(size: int, rows: int = 2) -> str:
    """A predict body for the mean model padded with spaces to `size` bytes."""
    text = json.dumps({"instances": [[0.5, 1.5]] * rows})
    return text + " " * (size - len(text))


def _raw_exchange(server, head: bytes, body_part: bytes, wait_seconds: float) -> tuple[bytes, bool]:
    """Sends a request head and part of a body; returns what came back and whether the server closed."""
    with socket.create_connection(("127.0.0.1", server.server.rest_port), timeout=wait_seconds) as connection:
        connection.sendall(head + body_part)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
            return received, True
        except socket.timeout:
            return received, False


def _head(path: str, content_length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\n\r\n").encode()


def test_content_length_over_the_limit_is_refused_with_413_before_the_body_is_read(limited_server):
    started = time.monotonic()
    received, closed = _raw_exchange(limited_server, _head("/v1/models/mean:predict", 1 << 30), b'{"inst', 10)

    assert received.startswith(b"HTTP/1.1 413"), received[:200]
    assert b'"error":"Request body of 1073741824 bytes is larger than the limit' in received
    assert closed and time.monotonic() - started < 5


def test_a_body_that_stops_arriving_is_cut_at_the_timeout_and_its_connection_closed(limited_server):
    received, closed = _raw_exchange(limited_server, _head("/v1/models/mean:predict", 1000), b'{"ins', 10)

    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"rest_api_timeout_in_ms" in received and closed
    assert limited_server.server.budget.used == 0


def test_requests_beyond_the_bytes_in_flight_get_429_at_once_and_timed_out_work_holds_its_bytes(limited_server):
    serving_helpers.SlowServable.delay_seconds = 2.5
    first = {}
    thread = threading.Thread(target=lambda: first.update(response=limited_server.request(
        "POST", "/v1/models/slow:predict", _body(20000))))
    thread.start()
    deadline = time.monotonic() + 10
    while limited_server.server.budget.used == 0 and time.monotonic() < deadline:
        time.sleep(0.01)

    refused = limited_server.request("POST", "/v1/models/mean:predict", _body(20000))
    thread.join()

    assert refused.status_code == 429 and "max_bytes_in_flight" in refused.json()["error"]
    assert first["response"].status_code == 504 and "timed out" in first["response"].json()["error"]
    assert limited_server.server.budget.used > 0  # its work goes on: its bytes stay counted
    while limited_server.server.budget.used and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = limited_server.request("POST", "/v1/models/mean:predict", _body(20000))
    assert answer.status_code == 200 and answer.json() == {"predictions": [1.0, 1.0]}


def test_small_requests_do_not_wait_behind_large_ones(limited_server):
    serving_helpers.SlowServable.delay_seconds = 0.4
    finished = []

    def send(name: str, size: int) -> None:
        response = limited_server.request("POST", "/v1/models/slow:predict", _body(size))
        finished.append((name, response.status_code))

    large = [threading.Thread(target=send, args=(f"large{index}", LARGE_REQUEST_BYTES + 100)) for index in range(2)]
    for thread in large:
        thread.start()
    time.sleep(0.1)
    send("small", 200)
    for thread in large:
        thread.join()

    # The large requests share one thread, so one of them is still queued when the small one is answered.
    assert [name for name, _ in finished][:2] in (["large0", "small"], ["large1", "small"]), finished
    assert {code for _, code in finished} <= {200, 504}


def test_gzip_bodies_are_inflated_and_broken_ones_read_as_an_empty_document(limited_server):
    url = f"{limited_server.url}/v1/models/mean:predict"
    body = json.dumps({"instances": [[1.0, 3.0]]}).encode()

    good = requests.post(url, data=gzip.compress(body), headers={"Content-Encoding": "gzip"}, timeout=10)
    broken = requests.post(url, data=b"not gzip", headers={"Content-Encoding": "gzip"}, timeout=10)
    bomb = requests.post(url, data=gzip.compress(b" " * (serving_helpers.MAX_REQUEST_BYTES + 10)),
                         headers={"Content-Encoding": "gzip"}, timeout=10)

    assert (good.status_code, good.json()) == (200, {"predictions": [2.0]})
    assert (broken.status_code, broken.json()) == (400, {"error": "JSON Parse error: The document is empty"})
    assert bomb.status_code == 413 and "Inflated request body" in bomb.json()["error"]


def test_a_long_numeric_request_is_answered_exactly(limited_server):
    rows = [[float(row), float(row) + 1.0, float(row) + 2.0] for row in range(500)]

    response = limited_server.request("POST", "/v1/models/mean:predict", {"inputs": rows})

    assert response.status_code == 200
    assert response.json() == {"outputs": [row + 1.0 for row in range(500)]}


def test_a_request_over_the_element_limit_is_refused_with_413(limited_server):
    response = limited_server.request("POST", "/v1/models/mean:predict", {"instances": [[0] * 100] * 60})

    assert response.status_code == 413 and "max_request_elements" in response.json()["error"]
