"""Command line: readable one-line errors for bad input, --help, and finding the export to load."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

import helpers
from pipeline import predict
from pipeline import config as config_lib

# Native TensorFlow start-up logging (absl), printed before Python code can silence it.
_NATIVE_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} )")


def run_pipeline(*arguments: str) -> subprocess.CompletedProcess:
    return helpers.run_cli(*arguments, input_text="", timeout=120)  # the timeout only guards against a hang


def assert_one_line_error(process: subprocess.CompletedProcess, *fragments: str) -> str:
    """Checks a failed run: non-zero exit, no traceback, one `error:` line; returns that line."""
    assert process.returncode != 0, process.stderr
    assert "Traceback" not in process.stderr, process.stderr
    lines = [line for line in process.stderr.splitlines()
             if line.strip() and not _NATIVE_LOG_LINE.match(line)]
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("error: "), process.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def write_config(path: pathlib.Path, tree: dict) -> str:
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return str(path)


def test_train_with_unknown_key_in_yaml_fails_with_one_line(tmp_path):
    path = write_config(tmp_path / "bad.yaml", {
        "name": "bad", "task": "sentiment", "data": {"source": "synthetic:sentiment"}, "model": {"unit": 3}})

    process = run_pipeline("train", path)

    assert_one_line_error(process, "model.unit", "Did you mean 'units'?")
    assert not (tmp_path / "runs").exists()


def test_train_with_bad_set_key_fails_with_one_line(tmp_path):
    process = run_pipeline("train", "configs/tiny/sentiment.yaml", "--set", "train.epoch=3",
                                    "--set", f"runtime.run_dir={tmp_path / 'run'}")

    assert_one_line_error(process, "train.epoch", "Did you mean 'epochs'?")
    assert not (tmp_path / "run").exists()


def test_train_with_bad_set_value_type_fails_with_one_line():
    process = run_pipeline("train", "configs/tiny/sentiment.yaml", "--set", "train.epochs=three")

    assert_one_line_error(process, "train.epochs", "expected int", "'three'")


def test_train_with_set_missing_equals_fails_with_one_line():
    process = run_pipeline("train", "configs/tiny/sentiment.yaml", "--set", "train.epochs")

    assert_one_line_error(process, "KEY=VALUE")


def test_train_with_missing_config_file_fails_with_one_line(tmp_path):
    path = str(tmp_path / "does_not_exist.yaml")

    process = run_pipeline("train", path)

    assert_one_line_error(process, path, "not found")


@pytest.mark.parametrize("arguments", [
    ("{config}",),
    ("configs/tiny/sentiment.yaml", "--set", "train.epochs=[1"),
], ids=["malformed_file", "malformed_set_value"])
def test_train_with_malformed_yaml_fails_with_one_line(tmp_path, arguments):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ntask: sentiment\n  data: [\n", encoding="utf-8")

    process = run_pipeline("train", *(argument.format(config=path) for argument in arguments))

    assert_one_line_error(process)


def test_train_with_wrong_task_type_fails_with_one_line():
    process = run_pipeline("train", "configs/tiny/sentiment.yaml", "--set", "task=[sentiment]")

    assert_one_line_error(process, "task")


def _imports_tensorflow(process: subprocess.CompletedProcess) -> bool:
    """Whether a run under `python -X importtime` imported TensorFlow (importtime lines go to stderr)."""
    return any(re.search(r"\|\s*tensorflow$", line) for line in process.stderr.splitlines())


def _run_with_importtime(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", *arguments], cwd=helpers.REPOSITORY,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("key, tree", [
    ("data.train", {"task": "sentiment", "data": {"train": "{missing}"}}),
    ("data.test", {"task": "sentiment", "data": {"train": "{present}", "test": "{missing}"}}),
    ("data.validation", {"task": "translation", "data": {"train": "{present}", "validation": "{missing}"}}),
    ("data.image_directory", {"task": "captioning", "data": {"train": "{present}", "image_directory": "{missing}"}}),
    ("data.train", {"task": "language_model", "data": {"train": ["{present}", "{missing_glob}"]}}),
])
def test_missing_input_file_fails_before_tensorflow_loads_and_nothing_is_written(tmp_path, key, tree):
    present = tmp_path / "present.txt"
    present.write_text("a\tb\n", encoding="utf-8")
    paths = {"missing": str(tmp_path / "missing.csv"), "present": str(present),
             "missing_glob": str(tmp_path / "books" / "*.txt")}
    tree = {"name": "check", **tree, "runtime": {"run_dir": str(tmp_path / "run")}}
    tree["data"] = {name: ([item.format(**paths) for item in value] if isinstance(value, list) else value.format(**paths))
                    for name, value in tree["data"].items()}
    config = write_config(tmp_path / "config.yaml", tree)

    process = _run_with_importtime("train", config)

    lines = [line for line in process.stderr.splitlines() if not line.startswith("import time:")]
    assert process.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {key}: "), process.stderr
    assert not _imports_tensorflow(process)
    assert not (tmp_path / "run").exists()


def test_serve_help_names_the_pipeline_command_without_importing_tensorflow():
    process = _run_with_importtime("serve", "--help")

    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("usage: python -m pipeline serve")
    assert "--model_base_path" in process.stdout
    assert not _imports_tensorflow(process)


def test_predict_without_export_fails_with_one_line(tmp_path):
    empty = tmp_path / "nothing_here"
    empty.mkdir()

    process = run_pipeline("predict", str(empty), "some text")

    assert_one_line_error(process, str(empty))
    assert process.stdout == ""


def test_evaluate_on_a_non_run_directory_fails_with_one_line(tmp_path):
    process = run_pipeline("evaluate", str(tmp_path))

    assert_one_line_error(process, str(tmp_path), "config.yaml")


@pytest.mark.parametrize("arguments", [("--help",), ("train", "--help"), ("evaluate", "--help"),
                                       ("export", "--help"), ("predict", "--help")],
                         ids=lambda arguments: " ".join(arguments))
def test_help_exits_zero(arguments):
    process = run_pipeline(*arguments)

    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("usage: python -m pipeline")


def test_top_level_help_lists_the_verbs():
    process = run_pipeline("--help")

    for verb in ("train", "evaluate", "export", "predict"):
        assert verb in process.stdout


def test_train_help_documents_set():
    process = run_pipeline("train", "--help")

    assert "--set" in process.stdout
    assert "CONFIG" in process.stdout


def test_no_verb_is_a_usage_error():
    process = run_pipeline()

    assert process.returncode != 0
    assert "Traceback" not in process.stderr
    assert "usage:" in process.stderr


# === resolve_export ===


def make_export(directory: pathlib.Path) -> pathlib.Path:
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_bytes(b"")
    return directory


def test_resolve_export_returns_an_export_directory_itself(tmp_path):
    export = make_export(tmp_path / "exports" / "model" / "3")

    assert predict.resolve_export(str(export)) == str(export)


def test_resolve_export_picks_the_highest_version_numerically(tmp_path):
    base = tmp_path / "exports" / "model"
    for version in ("1", "2", "10"):
        make_export(base / version)

    assert predict.resolve_export(str(base)) == os.path.join(str(base), "10")


def test_resolve_export_ignores_non_numeric_entries(tmp_path):
    base = tmp_path / "exports" / "model"
    make_export(base / "2")
    make_export(base / ".tmp-3-abc")
    make_export(base / "7-partial")
    (base / "notes.txt").write_text("not a version", encoding="utf-8")

    assert predict.resolve_export(str(base)) == os.path.join(str(base), "2")


def test_resolve_export_follows_a_run_directory_to_its_latest_export(tmp_path):
    exports = tmp_path / "exports"
    config = config_lib.from_tree({
        "name": "resolved", "task": "sentiment", "data": {"source": "synthetic:sentiment"},
        "export": {"dir": str(exports), "model_name": "served"},
        "runtime": {"run_dir": str(tmp_path / "run")}})
    config_lib.save_config(config, str(tmp_path / "run" / "config.yaml"))
    make_export(exports / "served" / "4")
    make_export(exports / "served" / "5")

    assert predict.resolve_export(str(tmp_path / "run")) == os.path.join(str(exports / "served"), "5")


@pytest.mark.parametrize("layout", ["empty", "only_temporary", "missing"])
def test_resolve_export_without_versions_raises_file_not_found(tmp_path, layout):
    path = tmp_path / "exports" / "model"
    if layout != "missing":
        path.mkdir(parents=True)
    if layout == "only_temporary":
        make_export(path / ".tmp-1-abc")

    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        predict.resolve_export(str(path))
