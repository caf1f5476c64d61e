"""SavedModel export in TF Serving layout, written atomically and checked in a fresh process.

`exports/<model_name>/<version>/` only ever holds complete exports: the SavedModel is written to a hidden
temporary folder beside it (TF Serving ignores non-numeric folder names), loaded in a fresh Python process
with `tf.saved_model.load` alone, compared with the in-memory model, and only then renamed into place.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import typing
import uuid

import keras
import numpy as np
import tensorflow as tf

from pipeline import tasks as tasks_lib
from pipeline import run_files
from pipeline import warmup
from pipeline.tasks import compiled

logger = logging.getLogger(__name__)

# Runs in a fresh interpreter: TensorFlow only, no `pipeline` import, exactly what a server has.
_SELF_CHECK_SCRIPT = """
import base64, json, sys
import numpy as np
import tensorflow as tf
path, signatures, input_name = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
inputs = [base64.b64decode(item["b64"]) if isinstance(item, dict) else item for item in json.loads(sys.stdin.read())]
loaded = tf.saved_model.load(path)
def plain(array):
    if array.dtype.kind in "SO":
        return np.vectorize(lambda item: item.decode("utf-8"), otypes=[object])(array).tolist()
    return array.tolist()
results = {}
for signature in signatures:
    outputs = loaded.signatures[signature](**{input_name: tf.constant(inputs, dtype=tf.string)})
    results[signature] = {key: plain(value.numpy()) for key, value in outputs.items()}
print("SELF_CHECK " + json.dumps(results))
"""


class ExportError(RuntimeError):
    """The export could not be written or did not reproduce the in-memory model."""


def next_version(base_path: str) -> int:
    """One more than the highest integer version folder under `base_path` (1 when there is none)."""
    if not os.path.isdir(base_path):
        return 1
    versions = [int(name) for name in os.listdir(base_path) if name.isdigit()]
    return max(versions, default=0) + 1


def export_run(run_dir: str, version: typing.Optional[int] = None,
               model: typing.Optional[keras.Model] = None) -> str:
    """Exports a trained run as `<export.dir>/<model_name>/<version>/` and returns that path.

    Args:
        run_dir: A trained run directory.
        version: Integer version; the next free one by default. An existing version is never replaced.
        model: The trained model if already in memory; loaded from the run directory otherwise.

    Raises:
        ExportError: The version exists, or the self-check failed (nothing is left behind then).
    """
    config = run_files.load_run_config(run_dir)
    task = tasks_lib.create_task(config)
    task.load_preprocessing(run_dir)
    model = model or run_files.load_trained_model(run_dir)
    base_path = os.path.join(config.export.dir, config.model_name)
    version = next_version(base_path) if version is None else version
    if version < 1:
        raise ExportError(f"version must be a positive integer (got {version})")
    final_path = os.path.join(base_path, str(version))
    if os.path.exists(final_path):
        raise ExportError(f"{final_path} already exists; versions are never overwritten")
    temporary_path = os.path.join(base_path, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    try:
        functions = task.serving_functions(model)
        checks = {"serving_default": "serving_default"}
        if config.export.jit_compile:
            compiled_functions = compiled_serving_functions(task, model)
            functions.update(compiled_functions)
            checks.update({name: name for name in compiled_functions})
        write_saved_model(temporary_path, model, functions, task.trackables())
        write_extra_assets(temporary_path, run_dir)
        samples = [run_files.decode_sample_input(item) for item in run_files.load_sample_inputs(run_dir)[:3]]
        warmup.write_warmup_requests(temporary_path, {name: [{task.serving_input: [sample]} for sample in samples]
                                                      for name in functions})
        if config.export.self_check:
            self_check(temporary_path, functions, run_files.load_sample_inputs(run_dir), task.serving_input,
                       signatures=checks)
        os.rename(temporary_path, final_path)
    finally:
        shutil.rmtree(temporary_path, ignore_errors=True)
    logger.info("exported %s", final_path)
    return final_path


def compiled_serving_functions(task, model: keras.Model) -> dict:
    """The task's XLA-compiled signatures (`export.jit_compile`), named `<plain signature>_xla`.

    Raises:
        ExportError: The task has no compiled serving path.
    """
    if not hasattr(task, "compiled_serving_functions"):
        raise ExportError(f"export.jit_compile: the {task.config.task} task has no XLA-compiled signatures; "
                          "set export.jit_compile: false")
    return task.compiled_serving_functions(model)


def write_saved_model(path: str, model: keras.Model, functions: dict, trackables: list) -> None:
    """Writes a SavedModel whose signatures are the task's serving functions (each a traced tf.function)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for trackable in trackables:
        archive.track(trackable)
    for name, function in functions.items():
        function.get_concrete_function()  # traces it with its input_signature
        archive.add_endpoint(name, function)
    archive.write_out(path, verbose=False)


def write_extra_assets(path: str, run_dir: str) -> None:
    """Copies the resolved config into `assets.extra/` (TF Serving's place for files it does not read)."""
    extra = os.path.join(path, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    shutil.copy(os.path.join(run_dir, run_files.CONFIG_FILE), os.path.join(extra, run_files.CONFIG_FILE))


def self_check(path: str, functions: dict, inputs: list, input_name: str, signature: str = "serving_default",
               signatures: typing.Optional[dict] = None) -> None:
    """Loads the export in a fresh process and compares its outputs with the in-memory functions.

    `inputs` are JSON values: strings, or `{"b64": ...}` for bytes (e.g. encoded images).

    Args:
        signatures: Exported signature name -> name of the in-memory function it must reproduce; by default
            `signature` against itself. An XLA signature is checked against itself, and its string outputs
            also against the plain twin's (`serving_default_xla` against `serving_default`).

    Raises:
        ExportError: The export failed to load or run, or an output differs.
    """
    signatures = signatures or {signature: signature}
    raw_inputs = tf.constant([run_files.decode_sample_input(item) for item in inputs], dtype=tf.string)
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.run(
        [sys.executable, "-c", _SELF_CHECK_SCRIPT, path, ",".join(signatures), input_name],
        input=json.dumps(inputs), capture_output=True, text=True, env=environment, timeout=600)
    lines = [line for line in process.stdout.splitlines() if line.startswith("SELF_CHECK ")]
    if process.returncode != 0 or not lines:
        raise ExportError(f"self-check: the export at {path} failed to load in a fresh process:\n"
                          f"{process.stderr[-3000:]}")
    loaded = json.loads(lines[-1][len("SELF_CHECK "):])
    for exported_name, function_name in signatures.items():
        expected = {key: value.numpy() for key, value in functions[function_name](raw_inputs).items()}
        _compare(expected, loaded[exported_name], exported_name)
        twin = exported_name[:-len(compiled.SUFFIX)] if exported_name.endswith(compiled.SUFFIX) else None
        if twin in functions:
            _compare(expected, _plain_outputs(functions[twin](raw_inputs)), f"{exported_name} vs {twin}",
                     rtol=1e-3, atol=1e-4)
    logger.info("self-check passed: %s reloaded in a fresh process matches the in-memory model (%s)", path,
                ", ".join(signatures))


def _plain_outputs(outputs: dict) -> dict:
    return {key: _plain(value.numpy()) for key, value in outputs.items()}


def _plain(array: np.ndarray):
    if array.dtype.kind in "SO":
        return np.vectorize(lambda item: item.decode("utf-8"), otypes=[object])(array).tolist()
    return array.tolist()


def _compare(expected: dict, loaded: dict, signature: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    for key, value in expected.items():
        if key not in loaded:
            raise ExportError(f"self-check: output {key!r} is missing from the exported signature {signature}")
        if value.dtype.kind in "SO":
            matches = _plain(value) == loaded[key]
        else:
            matches = np.allclose(value, np.asarray(loaded[key]), rtol=rtol, atol=atol)
        if not matches:
            raise ExportError(f"self-check: output {key!r} of the export differs from the in-memory model "
                              f"on the sample inputs ({signature})")
