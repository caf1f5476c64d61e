"""`serving/server.py` as a process of its own, for the serving benchmarks: start it, wait for a model's state."""

import dataclasses
import os
import socket
import subprocess
import sys
import time

START_SECONDS = 300


@dataclasses.dataclass
class ServerProcess:
    """A running server.

    Attributes:
        process: The server's process.
        port: Its REST port on 127.0.0.1.
        model_name: The model it serves.
    """
    process: subprocess.Popen
    port: int
    model_name: str

    @property
    def model_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/models/{self.model_name}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(model_name: str, base_path: str, flags: list[str]) -> ServerProcess:
    """Starts `serving/server.py` on one model and returns once its REST port answers (any version state).

    Exits the benchmark when the server exits or does not answer within START_SECONDS.
    """
    import requests

    port = free_port()
    process = subprocess.Popen([sys.executable, "serving/server.py", f"--model_name={model_name}",
                                f"--model_base_path={base_path}", f"--rest_api_port={port}", "--port=0", *flags],
                               stdout=sys.stderr, stderr=sys.stderr, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    server = ServerProcess(process, port, model_name)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("error: a server exited while starting (see above)")
        try:
            requests.get(server.model_url, timeout=2)
            return server
        except requests.ConnectionError:
            time.sleep(0.1)
    server.stop()
    sys.exit(f"error: a server did not answer within {START_SECONDS} s")


def version_state(server: ServerProcess, version: int) -> str:
    """The version's state in the model status (START, LOADING, AVAILABLE, ...; "" when not listed)."""
    import requests

    document = requests.get(server.model_url, timeout=5).json()
    for entry in document.get("model_version_status", []):
        if entry.get("version") == str(version):
            return entry.get("state", "")
    return ""


def wait_until_available(server: ServerProcess, version: int, poll_seconds: float = 0.01) -> float:
    """Polls the model status until `version` is AVAILABLE; returns time.perf_counter() at that moment."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            sys.exit("error: the server exited while loading (see above)")
        if version_state(server, version) == "AVAILABLE":
            return time.perf_counter()
        time.sleep(poll_seconds)
    sys.exit(f"error: version {version} was not AVAILABLE within {START_SECONDS} s")
