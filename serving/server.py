"""A TensorFlow-Serving-compatible model server: REST (aiohttp) and gRPC (grpcio), TensorFlow only.

    python serving/server.py --rest_api_port=8501 --port=8500 --model_name=sentiment --model_base_path=exports/sentiment
    python serving/server.py --model_config_file=serving/models.config --file_system_poll_wait_seconds=5

Every flag of tensorflow_model_server parses (see flags.py), so command lines move between the two
unchanged; `--host`, `--max_request_bytes`, `--max_request_elements`, `--max_bytes_in_flight` and the
large-request flags (pool, row chunks) are this server's own. It binds 127.0.0.1 unless told otherwise.
"""

import argparse
import asyncio
import concurrent.futures
import dataclasses
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

from serving import admission  # noqa: E402
from serving import batching  # noqa: E402
from serving import chunking  # noqa: E402
from serving import flags as flags_lib  # noqa: E402
from serving import grpc_api  # noqa: E402
from serving import model_config  # noqa: E402
from serving import model_manager  # noqa: E402
from serving import priority  # noqa: E402
from serving import rest_api  # noqa: E402
from serving import rest_server  # noqa: E402
from serving import servable as servable_lib  # noqa: E402
from serving import status  # noqa: E402
from serving import warmup_replay  # noqa: E402

logger = logging.getLogger("serving")

DEFAULT_MAX_REQUEST_BYTES = flags_lib.DEFAULT_MAX_REQUEST_BYTES


def parse_flags(argv: typing.Optional[list[str]], prog: str = "serving/server.py") -> argparse.Namespace:
    return flags_lib.parse(argv, prog)


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


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """How the server takes requests.

    Attributes:
        num_threads: Threads running small REST requests.
        grpc_threads: Threads running gRPC calls.
        timeout_seconds: Time for a whole REST request (gRPC calls are bounded by the client's deadline).
        max_request_bytes: Largest REST body or gRPC message.
        max_request_elements: Most tensor elements (or JSON values) in one request.
        max_bytes_in_flight: Request bytes handled at once (admission control; 0: no limit).
        large_request_bytes: REST bodies above this run in the large-request pool.
        large_request_threads: Threads of that pool.
        enable_cors: CORS headers on REST answers.
        grpc_options: Extra gRPC server arguments.
        grpc_socket_path: Also serve gRPC on this UNIX socket ("": no).
        enable_health_service: Serve grpc.health.v1.Health.
    """
    num_threads: int = 8
    grpc_threads: int = 8
    timeout_seconds: float = 30.0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_request_elements: int = 1 << 25
    max_bytes_in_flight: int = 4 * DEFAULT_MAX_REQUEST_BYTES
    large_request_bytes: int = 1 << 20
    large_request_threads: int = 1
    enable_cors: bool = False
    grpc_options: tuple = ()
    grpc_socket_path: str = ""
    enable_health_service: bool = False


class ModelServer:
    """REST (aiohttp, requests run in thread pools) and gRPC (grpcio's threaded server) over one ModelManager.

    Args:
        manager: The served models.
        host: Address to bind.
        rest_port: REST port; 0 picks a free one; None turns REST off.
        grpc_port: gRPC port; 0 picks a free one; None turns gRPC off.
        settings: How requests are taken.
        **overrides: ServerSettings fields to change (e.g. `num_threads=4`).
    """

    def __init__(self, manager: model_manager.ModelManager, host: str = "127.0.0.1",
                 rest_port: typing.Optional[int] = 0, grpc_port: typing.Optional[int] = 0,
                 settings: typing.Optional[ServerSettings] = None, **overrides):
        self.manager = manager
        self.host = host
        self.rest_port = rest_port
        self.grpc_port = grpc_port
        self.settings = dataclasses.replace(settings or ServerSettings(), **overrides)
        self.budget = admission.ByteBudget(self.settings.max_bytes_in_flight)
        self._pools = None
        self._rest_runner = None
        self._grpc_server = None
        self._loop = None
        self._thread = None

    async def start(self) -> None:
        """Binds and starts both front ends; `rest_port` and `grpc_port` then hold the bound ports."""
        settings = self.settings
        if self.grpc_port is not None or settings.grpc_socket_path:
            self._start_grpc()
        if self.rest_port is not None:
            rest_settings = rest_server.RestSettings(settings.timeout_seconds, settings.max_request_bytes,
                                                     settings.large_request_bytes, settings.enable_cors)
            self._pools = rest_server.RequestPools(settings.num_threads, settings.large_request_threads,
                                                   settings.large_request_bytes)
            api = rest_api.RestApi(self.manager, settings.max_request_elements)
            app = rest_server.create_app(api, self._pools, self.budget, rest_settings)
            self._rest_runner = web.AppRunner(app, **rest_server.runner_options(rest_settings))
            await self._rest_runner.setup()
            listener = socket.create_server((self.host, self.rest_port), reuse_port=False)
            self.rest_port = listener.getsockname()[1]
            await web.SockSite(self._rest_runner, listener).start()
            logger.info("Exporting HTTP/REST API at:%s:%d ...", self.host, self.rest_port)

    def _start_grpc(self) -> None:
        settings = self.settings
        options = [("grpc.max_receive_message_length", settings.max_request_bytes),
                   ("grpc.max_send_message_length", -1), *settings.grpc_options]
        self._grpc_server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(settings.grpc_threads, thread_name_prefix="grpc"),
            options=options)
        grpc_api.add_services(self._grpc_server, self.manager, self.budget, settings.max_request_elements)
        if settings.enable_health_service:
            grpc_api.add_health_service(self._grpc_server)
        if self.grpc_port is not None:
            self.grpc_port = self._grpc_server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        if settings.grpc_socket_path:
            self._grpc_server.add_insecure_port(f"unix:{settings.grpc_socket_path}")
        self._grpc_server.start()
        logger.info("Running gRPC ModelServer at %s:%s ...", self.host, self.grpc_port)

    async def stop(self, grace_seconds: float = 2.0) -> None:
        if self._grpc_server is not None:
            await asyncio.get_running_loop().run_in_executor(None, lambda: self._grpc_server.stop(grace_seconds).wait())
        if self._rest_runner is not None:
            await self._rest_runner.cleanup()
        if self._pools is not None:
            self._pools.shutdown()

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


def settings_from_flags(flags: argparse.Namespace) -> ServerSettings:
    """ServerSettings from parsed flags.

    Raises:
        ValueError: A malformed --grpc_channel_arguments.
    """
    return ServerSettings(
        num_threads=flags.rest_api_num_threads, grpc_threads=flags.grpc_max_threads,
        timeout_seconds=flags.rest_api_timeout_in_ms / 1000, max_request_bytes=flags.max_request_bytes,
        max_request_elements=flags.max_request_elements, max_bytes_in_flight=flags.max_bytes_in_flight,
        large_request_bytes=flags.large_request_bytes, large_request_threads=flags.large_request_threads,
        enable_cors=flags.rest_api_enable_cors_support,
        grpc_options=tuple(flags_lib.grpc_channel_arguments(flags.grpc_channel_arguments)),
        grpc_socket_path=flags.grpc_socket_path, enable_health_service=flags.enable_grpc_healthcheck_service)


async def _reload_config_forever(manager: model_manager.ModelManager, path: str, interval_seconds: float) -> None:
    """Re-reads the config file every interval and applies it when its text changed."""
    with open(path, encoding="utf-8") as stream:
        previous = stream.read()
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
            if text != previous:
                previous = text
                await loop.run_in_executor(None, manager.update_config, model_config.parse_config_text(text, path))
                logger.info("applied the changed model config %s", path)
        except (OSError, ValueError) as error:
            logger.error("keeping the current models: %s", error)
        except status.ServingError as error:
            logger.error("applied the changed model config %s, but not its labels: %s", path, error.message)


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


def version_text() -> str:
    """What `--version` prints: the API this server speaks and the TensorFlow library it runs."""
    from importlib import metadata
    import tensorflow as tf
    try:
        api = metadata.version("tensorflow-serving-api")
    except metadata.PackageNotFoundError:
        api = "unknown"
    return (f"TensorFlow ModelServer: serving/server.py, compatible with TF Serving {api}\n"
            f"TensorFlow Library: {tf.__version__}")


def load_policy(flags: argparse.Namespace) -> model_manager.LoadPolicy:
    return model_manager.LoadPolicy(
        max_num_load_retries=max(0, flags.max_num_load_retries),
        load_retry_interval_seconds=max(0.0, flags.load_retry_interval_micros / 1e6),
        allow_version_labels_for_unavailable_models=flags.allow_version_labels_for_unavailable_models)


def _set_tensorflow_threads(flags: argparse.Namespace) -> None:
    import tensorflow as tf
    intra = flags.tensorflow_intra_op_parallelism or flags.tensorflow_session_parallelism
    inter = flags.tensorflow_inter_op_parallelism or flags.tensorflow_session_parallelism
    if intra > 0:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter > 0:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def main(argv: typing.Optional[list[str]] = None, prog: str = "serving/server.py") -> int:
    """Runs the server until SIGINT or SIGTERM; `prog` names the command in usage lines."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # this server logs loads itself
    flags = parse_flags(argv, prog)
    if flags.version:
        print(version_text())
        return 0
    if not flags.port and not flags.rest_api_port and not flags.grpc_socket_path:
        print("error: --port and --rest_api_port are both 0: nothing to serve on", file=sys.stderr)
        return 2
    try:
        configs = model_configs(flags)
        settings = settings_from_flags(flags)
        loader = loader_for_flags(flags)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _set_tensorflow_threads(flags)
    manager = model_manager.ModelManager(configs, loader, load_policy(flags))
    manager.poll()
    try:
        manager.apply_labels()
    except status.ServingError as error:
        print(f"Failed to start server. Error: {error.code}: {error.message}", file=sys.stderr)
        return 2
    for name in manager.model_names():
        try:
            manager.servable(name)
        except status.ServingError:
            logger.warning("model %s: no version loaded yet; waiting for one to appear", name)
    if flags.file_system_poll_wait_seconds > 0:
        manager.start_polling(flags.file_system_poll_wait_seconds)
    server = ModelServer(manager, flags.host, flags.rest_api_port or None, flags.port or None, settings)
    try:
        asyncio.run(_serve_until_signalled(server, flags))
    except OSError as error:  # e.g. the port is taken
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        manager.stop()
    return 0


def loader_for_flags(flags: argparse.Namespace) -> typing.Callable:
    """How versions are loaded: a Servable, warmed up (--enable_model_warmup), its large runs chunked
    (--large_request_chunk_rows) and its requests batched (--enable_batching).

    Batching wraps chunking: requests are merged first (a request above max_batch_size is refused, as in TF
    Serving), and each call the batch threads make is then small or chunked by its rows, like a request.
    One PriorityGate serves every model: they all share TensorFlow's thread pools.

    Raises:
        ValueError: An unreadable --batching_parameters_file, or --large_request_max_small_passes below 1.
    """
    scheduler = None
    if flags.enable_batching:
        scheduler = batching.BatchScheduler(batching.read_batching_parameters(flags.batching_parameters_file))
        logger.info("batching: %s", scheduler.parameters)
    gate = None
    if flags.large_request_chunk_rows > 0:
        gate = priority.PriorityGate(flags.large_request_max_small_passes)

    def load(name: str, version: int, path: str):
        servable = servable_lib.Servable(name, version, path)
        if flags.enable_model_warmup:
            warmup_replay.replay(servable, max(1, flags.num_request_iterations_for_warmup))
        if gate is not None:
            servable = chunking.ChunkingServable(servable, gate, flags.large_request_chunk_rows)
        return batching.BatchingServable(servable, scheduler) if scheduler else servable
    return load


if __name__ == "__main__":
    sys.exit(main())
