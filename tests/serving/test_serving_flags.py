"""Every tensorflow_model_server flag parses, in each of the forms TensorFlow's flag parser takes."""

import logging

import pytest

from serving import flags
from serving import server

SAMPLE_VALUES = {int: "7", float: "0.5", str: "some_value", bool: "false"}


@pytest.mark.parametrize("name, kind", [(name, kind) for name, kind, *_ in flags.TF_SERVING_FLAGS])
def test_every_tensorflow_model_server_flag_parses_with_and_without_equals(name, kind):
    value = SAMPLE_VALUES[kind]

    joined = flags.parse([f"--{name}={value}"])
    separate = flags.parse([f"--{name}", value])

    expected = flags.parse_bool(value) if kind is bool else kind(value)
    assert getattr(joined, name) == getattr(separate, name) == expected
    assert joined.given == [name]


@pytest.mark.parametrize("name", [name for name, kind, *_ in flags.TF_SERVING_FLAGS if kind is bool])
def test_boolean_flags_parse_bare_and_as_true_false_1_0(name):
    assert getattr(flags.parse([f"--{name}"]), name) is True
    for text, value in (("true", True), ("1", True), ("false", False), ("0", False), ("True", True)):
        assert getattr(flags.parse([f"--{name}={text}"]), name) is value


def test_defaults_are_tensorflow_model_servers():
    parsed = flags.parse([])

    assert (parsed.max_num_load_retries, parsed.load_retry_interval_micros) == (5, 60_000_000)
    assert (parsed.file_system_poll_wait_seconds, parsed.rest_api_timeout_in_ms) == (1, 30000)
    assert parsed.enable_model_warmup is True and parsed.enable_batching is False
    assert parsed.model_name == "default" and parsed.given == []


def test_unknown_flags_and_bad_values_still_fail(capsys):
    for argv in (["--no_such_flag=1"], ["--enable_batching=maybe"], ["--port=eighty"], ["--model"]):
        with pytest.raises(SystemExit) as raised:
            flags.parse(argv)
        assert raised.value.code == 2
    assert "unrecognized arguments: --no_such_flag=1" in capsys.readouterr().err


def test_flags_this_server_ignores_are_named_once_in_the_log(caplog):
    with caplog.at_level(logging.WARNING, logger="serving"):
        flags.parse(["--flush_filesystem_caches=false", "--num_load_threads=4", "--port=9000", "--enable_batching"])

    messages = [record.getMessage() for record in caplog.records if "ignored" in record.getMessage()]
    assert len(messages) == 1
    assert "--flush_filesystem_caches --num_load_threads" in messages[0] and "--port" not in messages[0]


def test_version_prints_the_versions_and_exits(capsys):
    assert server.main(["--version"]) == 0

    output = capsys.readouterr().out
    assert output.startswith("TensorFlow ModelServer: ") and "TensorFlow Library: 2." in output


def test_grpc_channel_arguments_become_grpc_options():
    assert flags.grpc_channel_arguments("grpc.max_connection_age_ms=2000,grpc.primary_user_agent=me") == [
        ("grpc.max_connection_age_ms", 2000), ("grpc.primary_user_agent", "me")]
    with pytest.raises(ValueError, match="not key=value"):
        flags.grpc_channel_arguments("broken")
