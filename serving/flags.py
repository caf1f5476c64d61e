"""tensorflow_model_server's command line, flag for flag, plus this server's own flags.

Every flag of tensorflow_model_server (model_servers/main.cc) parses, with its type and default, as
`--flag=value` or `--flag value`; booleans also bare (`--enable_batching`) or as `=true/false/1/0`, as
TensorFlow's flag parser takes them. Flags this server does not act on are named once in the log as
accepted and ignored. Unknown flags are errors; `--version` prints the versions and exits.
"""

import argparse
import logging
import os
import typing

logger = logging.getLogger("serving")

_CPUS = os.cpu_count() or 1

# (name, type, default, acted on by this server, help). Types: int, float, str, bool.
TF_SERVING_FLAGS = (
    ("port", int, 8500, True, "gRPC port (0 turns gRPC off)"),
    ("grpc_socket_path", str, "", True, "also serve gRPC on this UNIX socket"),
    ("rest_api_port", int, 8501, True, "REST port (0 turns REST off; this server's default is 8501, "
                                       "tensorflow_model_server's is 0)"),
    ("rest_api_num_threads", int, 4 * _CPUS, True, "threads running REST requests"),
    ("rest_api_timeout_in_ms", int, 30000, True, "time for a whole REST request, body included"),
    ("rest_api_enable_cors_support", bool, False, True, "CORS headers and OPTIONS preflights"),
    ("enable_batching", bool, False, True, "merge concurrent requests into batches"),
    ("allow_version_labels_for_unavailable_models", bool, False, True,
     "let a new label point at a version that is not AVAILABLE yet"),
    ("batching_parameters_file", str, "", True, "BatchingParameters text proto"),
    ("enable_per_model_batching_parameters", bool, False, False, ""),
    ("model_config_file", str, "", True, "models.config (ModelServerConfig text proto)"),
    ("model_config_file_poll_wait_seconds", int, 0, True, "re-read --model_config_file this often (0: never)"),
    ("model_name", str, "default", True, "model name in requests"),
    ("model_base_path", str, "", True, "folder of integer-named SavedModel versions"),
    ("num_load_threads", int, 0, False, ""),
    ("num_unload_threads", int, 0, False, ""),
    ("max_num_load_retries", int, 5, True, "retries of a failed version load"),
    ("load_retry_interval_micros", int, 60 * 1000 * 1000, True, "time between load retries"),
    ("file_system_poll_wait_seconds", int, 1, True, "look for new versions this often (0: at start only; "
                                                    "< 0: never)"),
    ("flush_filesystem_caches", bool, True, False, ""),
    ("tensorflow_session_parallelism", int, 0, True, "threads per op and ops at once (0: automatic)"),
    ("tensorflow_session_config_file", str, "", False, ""),
    ("tensorflow_intra_op_parallelism", int, 0, True, "threads per op (0: automatic)"),
    ("tensorflow_inter_op_parallelism", int, 0, True, "ops run at once (0: automatic)"),
    ("use_alts_credentials", bool, False, False, ""),
    ("ssl_config_file", str, "", False, ""),
    ("platform_config_file", str, "", False, ""),
    ("per_process_gpu_memory_fraction", float, 0.0, False, ""),
    ("saved_model_tags", str, "serve", False, ""),
    ("grpc_channel_arguments", str, "", True, "gRPC server arguments: key=value,key=value"),
    ("grpc_max_threads", int, 4 * _CPUS, True, "threads running gRPC calls"),
    ("enable_model_warmup", bool, True, True, "replay assets.extra/tf_serving_warmup_requests before a "
                                              "version becomes AVAILABLE"),
    ("num_request_iterations_for_warmup", int, 0, True, "times each warm-up request runs (0: once)"),
    ("version", bool, False, True, "print the versions and exit"),
    ("monitoring_config_file", str, "", False, ""),
    ("remove_unused_fields_from_bundle_metagraph", bool, True, False, ""),
    ("prefer_tflite_model", bool, False, False, ""),
    ("num_tflite_pools", int, _CPUS, False, ""),
    ("num_tflite_interpreters_per_pool", int, 1, False, ""),
    ("enable_signature_method_name_check", bool, False, False, ""),
    ("xla_cpu_compilation_enabled", bool, False, False, ""),
    ("xla_gpu_compilation_enabled", bool, False, False, ""),
    ("enable_profiler", bool, True, False, ""),
    ("thread_pool_factory_config_file", str, "", False, ""),
    ("mixed_precision", str, "", False, ""),
    ("skip_initialize_tpu", bool, False, False, ""),
    ("enable_grpc_healthcheck_service", bool, False, True, "serve grpc.health.v1.Health"),
    ("enable_serialization_as_tensor_content", bool, False, False, ""),
)

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024

# This server's own flags.
OWN_FLAGS = (
    ("host", str, "127.0.0.1", "address to bind (0.0.0.0 for every interface)"),
    ("max_request_bytes", int, DEFAULT_MAX_REQUEST_BYTES, "largest request body or gRPC message"),
    ("max_request_elements", int, 1 << 25, "most tensor elements (or JSON values) in one request"),
    ("max_bytes_in_flight", int, 4 * DEFAULT_MAX_REQUEST_BYTES,
     "request bytes being handled at once; beyond it requests are refused at once with 429 / "
     "RESOURCE_EXHAUSTED (requests take at most about 4 times their bytes in memory; 0: no limit)"),
    ("large_request_bytes", int, 1 << 20, "REST bodies above this run in a pool of their own"),
    ("large_request_threads", int, 1, "threads for large REST requests"),
    ("large_request_chunk_rows", int, 32,
     "requests (REST and gRPC: predict, classify, regress) with more rows than this run as chunks of at most "
     "this many rows, one chunk at a time, each first waiting while smaller requests run; the outputs are "
     "joined back. Assumes rows are independent, as batching does: a signature whose inputs and outputs do "
     "not all have a leading batch dimension, or a request whose inputs differ in rows, runs whole in one "
     "turn (0: every request runs whole, at once)"),
    ("large_request_max_small_passes", int, 8,
     "smaller requests that may start ahead of a waiting chunk before it runs beside them (bounds how long "
     "a large request waits)"),
)


def parse_bool(text: str) -> bool:
    """TensorFlow's flag parser takes true/false/1/0."""
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true, false, 1 or 0, got {text!r}")


def build_parser(prog: str = "serving/server.py") -> argparse.ArgumentParser:
    """The flag parser; `prog` is how the usage line names the command (`python -m pipeline serve`)."""
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False,
                                     description="A TensorFlow-Serving-compatible model server (REST and gRPC).")
    tf_group = parser.add_argument_group("tensorflow_model_server flags")
    for name, kind, default, acted_on, text in TF_SERVING_FLAGS:
        help_text = f"{text} (default {default!r})" if acted_on else "accepted and ignored"
        if kind is bool:
            tf_group.add_argument(f"--{name}", nargs="?", const=True, default=None, type=parse_bool,
                                  metavar="BOOL", help=help_text)
        else:
            tf_group.add_argument(f"--{name}", type=kind, default=None, help=help_text)
    own_group = parser.add_argument_group("this server's own flags")
    for name, kind, default, text in OWN_FLAGS:
        own_group.add_argument(f"--{name}", type=kind, default=default, help=f"{text} (default {default!r})")
    return parser


def parse(argv: typing.Optional[typing.Sequence[str]], prog: str = "serving/server.py") -> argparse.Namespace:
    """Parses a command line; every flag gets its value or default, and `given` lists the flags set.

    Flags accepted but ignored are logged once, in one line.
    """
    flags = build_parser(prog).parse_args(argv)
    flags.given = sorted(name for name, *_ in TF_SERVING_FLAGS if getattr(flags, name) is not None)
    for name, _, default, _, _ in TF_SERVING_FLAGS:
        if getattr(flags, name) is None:
            setattr(flags, name, default)
    ignored = ignored_flags(flags.given)
    if ignored:
        logger.warning("accepted and ignored (tensorflow_model_server flags this server does not act on): %s",
                       " ".join(f"--{name}" for name in ignored))
    return flags


def ignored_flags(names: typing.Iterable[str]) -> list[str]:
    acted_on = {name for name, _, _, used, _ in TF_SERVING_FLAGS if used}
    return [name for name in names if name not in acted_on]


def grpc_channel_arguments(text: str) -> list[tuple[str, typing.Union[int, str]]]:
    """`--grpc_channel_arguments=a=1,b=text` as gRPC options (integers where they parse, as TF Serving).

    Raises:
        ValueError: An entry without '='.
    """
    options = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        key, separator, value = entry.partition("=")
        if not separator:
            raise ValueError(f"--grpc_channel_arguments: {entry!r} is not key=value")
        try:
            options.append((key, int(value)))
        except ValueError:
            options.append((key, value))
    return options
