"""A TensorFlow-Serving-compatible model server: REST (aiohttp) and gRPC (grpcio), TensorFlow only.

    python serving/server.py --rest_api_port=8501 --port=8500 --model_name=sentiment --model_base_path=exports/sentiment
    python serving/server.py --model_config_file=serving/models.config --file_system_poll_wait_seconds=5

The flags are tensorflow_model_server's, so scripts move between the two unchanged; `--host` and
`--max_request_bytes` are this server's own. It binds 127.0.0.1 unless told otherwise.
"""

import argparse
import asyncio
import concurrent.futures
import logging
import os
import signal
import socket
import sys
import threading
import typing

if __package__ in (None, ""):  # run as `python serving/server.py`: make the `serving` package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grpc  # noqa: E402
from aiohttp import web  # noqa: E402

from serving import grpc_api  # noqa: E402
from serving import model_config  # noqa: E402
from serving import model_manager  # noqa: E402
from serving import rest_api  # noqa: E402

logger = logging.getLogger("serving")

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024

# tensorflow_model_server flags this server accepts so command lines carry over, but does not act on.
IGNORED_FLAGS = ("enable_batching", "batching_parameters_file", "enable_model_warmup", "monitoring_config_file",
                 "allow_version_labels_for_unavailable_models", "tensorflow_session_parallelism",
                 "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism", "grpc_channel_arguments",
                 "per_process_gpu_memory_fraction", "saved_model_tags", "platform_config_file",
                 "enable_signature_method_name_check", "xla_cpu_compilation_enabled")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serving/server.py", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--port", type=int, default=8500, help="gRPC port (default 8500; 0 turns gRPC off)")
    add("--rest_api_port", type=int, default=8501, help="REST port (default 8501; 0 turns REST off)")
    add("--model_name", default="default", help="name of the model in requests (default: default)")
    add("--model_base_path", default="", help="folder of integer-named SavedModel versions")
    add("--model_config_file", default="", help="models.config (model_config_list text proto); replaces "
        "--model_name/--model_base_path")
    add("--model_config_file_poll_wait_seconds", type=float, default=0,
        help="re-read --model_config_file this often (0: never)")
    add("--file_system_poll_wait_seconds", type=float, default=1,
        help="look for new or removed versions this often (default 1; 0: only at start; < 0: never)")
    add("--rest_api_timeout_in_ms", type=int, default=30000,
        help="per-request time limit for REST (gRPC calls are bounded by the client's deadline)")
    add("--rest_api_num_threads", type=int, default=4 * (os.cpu_count() or 1),
        help="threads running requests (default 4 per core)")
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for every interface)")
    add("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
        help=f"largest accepted request body or gRPC message (default {DEFAULT_MAX_REQUEST_BYTES})")
    for flag in IGNORED_FLAGS:
        add(f"--{flag}", help=argparse.SUPPRESS)
    return parser


def parse_flags(argv: typing.Optional[list[str]]) -> argparse.Namespace:
    flags = _parser().parse_args(argv)
    for flag in IGNORED_FLAGS:
        if getattr(flags, flag) is not None:
            logger.warning("--%s is a tensorflow_model_server flag this server ignores", flag)
    return flags


def model_configs(flags: argparse.Namespace) -> list[model_config.ModelConfig]:
    """The models to serve, with every base path checked before anything loads.

    Raises:
        ValueError: Bad flags or config file, or a base path that does not exist.
    """
    if flags.model_config_file:
        configs = model_config.read_config_file(flags.model_config_file)
    else:
        configs = model_config.from_flags(flags.model_name, flags.model_base_path)
    for config in configs:
        if not os.path.isdir(config.base_path):
            raise ValueError(f"model {config.name}: base path {config.base_path} does not exist")
    return configs


class ModelServer:
    """REST (aiohttp, requests run in a thread pool) and gRPC (grpcio's threaded server) over one ModelManager.

    Args:
        manager: The served models.
        host: Address to bind.
        rest_port: REST port; 0 picks a free one; None turns REST off.
        grpc_port: gRPC port; 0 picks a free one; None turns gRPC off.
        num_threads: Threads running requests.
        timeout_seconds: Per-request time limit.
        max_request_bytes: Largest accepted request.
    """

    def __init__(self, manager: model_manager.ModelManager, host: str = "127.0.0.1",
                 rest_port: typing.Optional[int] = 0, grpc_port: typing.Optional[int] = 0, num_threads: int = 8,
                 timeout_seconds: float = 30.0, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
        self.manager = manager
        self.host = host
        self.rest_port = rest_port
        self.grpc_port = grpc_port
        self._num_threads = num_threads
        self._timeout_seconds = timeout_seconds
        self._max_request_bytes = max_request_bytes
        self._executor = None
        self._rest_runner = None
        self._grpc_server = None
        self._loop = None
        self._thread = None

    async def start(self) -> None:
        """Binds and starts both front ends; `rest_port` and `grpc_port` then hold the bound ports."""
        self._executor = concurrent.futures.ThreadPoolExecutor(self._num_threads, thread_name_prefix="request")
        if self.grpc_port is not None:
            self._grpc_server = grpc.server(
                concurrent.futures.ThreadPoolExecutor(self._num_threads, thread_name_prefix="grpc"),
                options=[("grpc.max_receive_message_length", self._max_request_bytes),
                         ("grpc.max_send_message_length", -1)])
            grpc_api.add_services(self._grpc_server, self.manager)
            self.grpc_port = self._grpc_server.add_insecure_port(f"{self.host}:{self.grpc_port}")
            self._grpc_server.start()
            logger.info("Running gRPC ModelServer at %s:%d ...", self.host, self.grpc_port)
        if self.rest_port is not None:
            app = rest_api.create_app(rest_api.RestApi(self.manager), self._executor, self._timeout_seconds,
                                      self._max_request_bytes)
            self._rest_runner = web.AppRunner(app, access_log=None)
            await self._rest_runner.setup()
            listener = socket.create_server((self.host, self.rest_port), reuse_port=False)
            self.rest_port = listener.getsockname()[1]
            await web.SockSite(self._rest_runner, listener).start()
            logger.info("Exporting HTTP/REST API at:%s:%d ...", self.host, self.rest_port)

    async def stop(self, grace_seconds: float = 2.0) -> None:
        if self._grpc_server is not None:
            await asyncio.get_running_loop().run_in_executor(None, lambda: self._grpc_server.stop(grace_seconds).wait())
        if self._rest_runner is not None:
            await self._rest_runner.cleanup()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def start_in_thread(self) -> "ModelServer":
        """Runs the server on an event loop in a background thread (for tests, benchmarks, notebooks)."""
        started = threading.Event()
        failure = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.start())
            except Exception as error:  # noqa: BLE001 - reported to the starting thread
                failure.append(error)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="model-server", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        """Stops a server started with `start_in_thread`."""
        asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


async def _reload_config_forever(manager: model_manager.ModelManager, path: str, interval_seconds: float) -> None:
    """Re-reads the config file every interval and applies it when its text changed."""
    with open(path, encoding="utf-8") as stream:
        previous = stream.read()
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
            if text != previous:
                manager.update_config(model_config.parse_config_text(text, path))
                previous = text
                logger.info("applied the changed model config %s", path)
        except (OSError, ValueError) as error:
            logger.error("keeping the current models: %s", error)


async def _serve_until_signalled(server: ModelServer, flags: argparse.Namespace) -> None:
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    reloader = None
    if flags.model_config_file and flags.model_config_file_poll_wait_seconds > 0:
        reloader = asyncio.create_task(_reload_config_forever(
            server.manager, flags.model_config_file, flags.model_config_file_poll_wait_seconds))
    await stop.wait()
    logger.info("shutting down")
    if reloader is not None:
        reloader.cancel()
    await server.stop()


def main(argv: typing.Optional[list[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # this server logs loads itself
    flags = parse_flags(argv)
    if not flags.port and not flags.rest_api_port:
        print("error: --port and --rest_api_port are both 0: nothing to serve on", file=sys.stderr)
        return 2
    try:
        configs = model_configs(flags)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    manager = model_manager.ModelManager(configs)
    manager.poll()
    for name in manager.model_names():
        try:
            manager.servable(name)
        except Exception:  # noqa: BLE001 - no version loaded is a warning, the server still starts
            logger.warning("model %s: no version loaded yet; waiting for one to appear", name)
    if flags.file_system_poll_wait_seconds > 0:
        manager.start_polling(flags.file_system_poll_wait_seconds)
    server = ModelServer(manager, flags.host, flags.rest_api_port or None, flags.port or None,
                         flags.rest_api_num_threads, flags.rest_api_timeout_in_ms / 1000, flags.max_request_bytes)
    try:
        asyncio.run(_serve_until_signalled(server, flags))
    except OSError as error:  # e.g. the port is taken
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        manager.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
