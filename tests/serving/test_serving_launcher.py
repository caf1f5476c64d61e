"""serving/launcher.py: the real server process on a free port, ready when it returns, gone after `stop`."""

import pytest
import requests

import serving_helpers
from serving import client
from serving import launcher


def test_server_process_serves_the_model_until_stopped(tmp_path):
    serving_helpers.write_echo_model(str(tmp_path / "echo" / "1"))

    with launcher.ServerProcess("echo", str(tmp_path / "echo")) as server:
        rest = client.RestClient(server.url, "echo")
        answer = rest.run_signature({"text": ["hi"], "count": [3]})
        status = server.rest_client().status()
        url = server.url

    assert answer == {"echo_bytes": [b"hi"], "doubled": [6]}
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    assert server.process.returncode is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/models/echo", timeout=2)


def test_server_process_reports_a_server_that_cannot_load(tmp_path):
    (tmp_path / "broken" / "1").mkdir(parents=True)  # a version folder without a SavedModel

    with pytest.raises((RuntimeError, TimeoutError), match="broken"):
        launcher.ServerProcess("broken", str(tmp_path / "broken"), ready_timeout=8).start()


def test_server_process_needs_an_existing_base_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="export a model first"):
        launcher.ServerProcess("missing", str(tmp_path / "missing"))


def test_server_for_an_export_serves_its_model_folder_under_the_folder_name(tmp_path):
    (tmp_path / "exports" / "tiny_lm" / "7").mkdir(parents=True)

    server = launcher.ServerProcess.for_export(str(tmp_path / "exports" / "tiny_lm" / "7"), ready_timeout=5)

    assert (server.model_name, server.model_base_path) == ("tiny_lm", str(tmp_path / "exports" / "tiny_lm"))
    with pytest.raises(RuntimeError, match="tiny_lm has not been started"):
        server.rest_client()


def test_server_for_an_export_wants_a_version_folder(tmp_path):
    with pytest.raises(ValueError, match="not an export version folder"):
        launcher.ServerProcess.for_export(str(tmp_path / "exports" / "tiny_lm"))
