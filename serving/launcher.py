"""Starts `serving/server.py` in a child process on a free local port and waits until the model is served.

For notebooks, demos and tests that want the real server process beside them:

    with launcher.ServerProcess("tiny_sentiment", "exports/tiny_sentiment") as server:
        client.RestClient(server.url, "tiny_sentiment").classify(["a fine film"])

    with launcher.ServerProcess.for_export("exports/tiny_sentiment/3") as server:  # the same, from an export
        server.rest_client().classify(["a fine film"])

Needs only the standard library and `requests` (like `client.py`); the server's output goes to a log file
whose tail is shown if the server exits or does not become ready.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import typing

import requests

from serving import client

SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """`python serving/server.py --model_name=NAME --model_base_path=PATH` on a free REST port (gRPC off).

    Args:
        model_name: Name clients use in requests.
        model_base_path: Folder of integer-named SavedModel versions (an `exports/<model_name>` folder).
        ready_timeout: Seconds to wait for the model's latest version to be AVAILABLE.
        extra_flags: More `tensorflow_model_server`-style flags, e.g. `["--port=8500"]`.
    """

    def __init__(self, model_name: str, model_base_path: str, ready_timeout: float = 120.0,
                 extra_flags: typing.Sequence[str] = ()):
        if not os.path.isdir(model_base_path):
            raise FileNotFoundError(f"{model_base_path}: no such model base path; export a model first")
        self.model_name = model_name
        self.model_base_path = os.path.abspath(model_base_path)
        self.ready_timeout = ready_timeout
        self.extra_flags = list(extra_flags)
        self.port = 0
        self.url = ""
        self.process: typing.Optional[subprocess.Popen] = None
        self._log = None

    @classmethod
    def for_export(cls, export_path: str, **settings) -> "ServerProcess":
        """A server for the model an export belongs to: `<export dir>/<model_name>/<version>` serves as
        `model_name` from `<export dir>/<model_name>` (its latest version, as TF Serving does).

        Args:
            export_path: An integer-named version folder, as `export.export_run` returns it.
            **settings: `ServerProcess` keyword arguments (`ready_timeout`, `extra_flags`).

        Raises:
            ValueError: `export_path` is not an integer-named folder.
        """
        export_path = os.path.abspath(export_path)
        if not os.path.basename(export_path).isdigit():
            raise ValueError(f"{export_path}: not an export version folder (<export dir>/<model_name>/<integer>)")
        base_path = os.path.dirname(export_path)
        return cls(os.path.basename(base_path), base_path, **settings)

    def rest_client(self, **settings) -> client.RestClient:
        """A `serving/client.py` REST client for this server's model (`settings`: its keyword arguments)."""
        if not self.url:
            raise RuntimeError(f"the server for {self.model_name} has not been started")
        return client.RestClient(self.url, self.model_name, **settings)

    def start(self) -> "ServerProcess":
        """Starts the server and returns once the model answers with status AVAILABLE."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="model_server_", suffix=".log", delete=False)
        command = [sys.executable, SERVER_SCRIPT, f"--model_name={self.model_name}",
                   f"--model_base_path={self.model_base_path}", f"--rest_api_port={self.port}", "--port=0",
                   *self.extra_flags]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        status_url = f"{self.url}/v1/models/{self.model_name}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the model server exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                answer = requests.get(status_url, timeout=2).json()
                states = [version.get("state") for version in answer.get("model_version_status", [])]
                if "AVAILABLE" in states:
                    return
            except (requests.RequestException, ValueError):
                pass  # not listening yet, or still loading
            time.sleep(0.25)
        raise TimeoutError(f"{self.model_name} was not AVAILABLE at {status_url} within {self.ready_timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, characters: int = 3000) -> str:
        """The end of the server's output."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, encoding="utf-8", errors="replace") as stream:
            return stream.read()[-characters:]

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stops the server (SIGTERM, then SIGKILL after `grace_seconds`) and removes its log."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace_seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            os.unlink(self._log.name)
            self._log = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exception) -> None:
        self.stop()
