"""Load: 16 concurrent clients (REST and gRPC), no failed request while a new version is picked up, whether it
appears at once (renamed into place) or file by file (copied slowly)."""

import logging
import os
import threading
import time

import pytest
import requests

import serving_helpers
from serving import client as client_lib
from serving import model_config
from serving import model_manager

CLIENTS = 16
REQUESTS_BEFORE_NEW_VERSION = 8  # per client
REQUESTS_AFTER_PICK_UP = 8  # per client, all started after version 2 was reported AVAILABLE
DEADLINE_SECONDS = 120


@pytest.fixture()
def scale_server(tmp_path):
    base_path = tmp_path / "scale"
    base_path.mkdir()
    serving_helpers.write_atomically(serving_helpers.write_scale_model, str(base_path), 1, 1.0)
    policy = model_manager.LoadPolicy(load_retry_interval_seconds=0.2)
    running = serving_helpers.start_server([model_config.ModelConfig("scale", str(base_path))], policy=policy,
                                           num_threads=8)
    running.server.manager.start_polling(0.1)
    yield running, base_path
    running.server.stop_thread()
    running.server.manager.stop()


def _client(running, index: int):
    if index % 2:
        return client_lib.GrpcClient(running.grpc_target, "scale", timeout=60)
    return client_lib.RestClient(running.url, "scale", timeout=60)


def _load_while(running, base_path, write_version_2) -> tuple[list, list, list]:
    """16 clients call the model while `write_version_2()` runs; returns (results, errors, picked_up_at)."""
    picked_up_at = []
    results, errors = [], []
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE_SECONDS

    def work(index: int) -> None:
        client = _client(running, index)
        before = after = 0
        while after < REQUESTS_AFTER_PICK_UP and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                factor = client.run_signature({"x": [float(index + 1)]})["y"][0] / (index + 1)
            except Exception as error:  # noqa: BLE001 - every failure is collected and reported
                with lock:
                    errors.append(repr(error))
                continue
            with lock:
                results.append((started, factor))
                if picked_up_at and started > picked_up_at[0]:
                    after += 1
            before += 1
            if not picked_up_at and before >= REQUESTS_BEFORE_NEW_VERSION:
                time.sleep(0.005)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while len(results) < CLIENTS * REQUESTS_BEFORE_NEW_VERSION and time.monotonic() < deadline:
        time.sleep(0.01)
    write_version_2()
    status_url = f"{running.url}/v1/models/scale/versions/2"
    while time.monotonic() < deadline:
        response = requests.get(status_url, timeout=10)
        if response.status_code == 200 and response.json()["model_version_status"][0]["state"] == "AVAILABLE":
            picked_up_at.append(time.monotonic())
            break
        time.sleep(0.02)
    for thread in threads:
        thread.join()
    return results, errors, picked_up_at


def _check(running, base_path, results, errors, picked_up_at) -> None:
    assert not errors, errors[:5]
    assert picked_up_at, "version 2 was never reported AVAILABLE"
    assert len(results) >= CLIENTS * (REQUESTS_BEFORE_NEW_VERSION + REQUESTS_AFTER_PICK_UP)
    assert {factor for _, factor in results} <= {1.0, 2.0}
    assert any(factor == 1.0 for _, factor in results)
    after = [factor for started, factor in results if started > picked_up_at[0]]
    assert len(after) >= CLIENTS * REQUESTS_AFTER_PICK_UP and set(after) == {2.0}
    states = requests.get(f"{running.url}/v1/models/scale", timeout=10).json()["model_version_status"]
    assert [(item["version"], item["state"]) for item in states] == [("2", "AVAILABLE"), ("1", "END")]
    assert sorted(os.listdir(base_path)) == ["1", "2"]


def test_concurrent_clients_see_no_error_while_a_new_version_is_picked_up(scale_server):
    running, base_path = scale_server

    outcome = _load_while(running, base_path, lambda: serving_helpers.write_atomically(
        serving_helpers.write_scale_model, str(base_path), 2, 2.0))

    _check(running, base_path, *outcome)


def test_a_version_copied_file_by_file_keeps_the_old_one_serving_then_serves(scale_server, tmp_path, caplog):
    """saved_model.pb arrives first: the load fails, version 1 keeps serving, a retry loads version 2."""
    running, base_path = scale_server
    staged = serving_helpers.write_scale_model(str(tmp_path / "staged"), 2.0)

    with caplog.at_level(logging.ERROR, logger="serving"):
        outcome = _load_while(running, base_path, lambda: serving_helpers.copy_file_by_file(
            staged, str(base_path / "2"), pause_seconds=1.0))

    _check(running, base_path, *outcome)
    assert any("{name: scale version: 2} failed" in record.getMessage() for record in caplog.records)
