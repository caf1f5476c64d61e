"""SavedModel export in TF Serving layout, written atomically and checked in a fresh process.

`exports/<model_name>/<version>/` only ever holds complete exports: the SavedModel is written to a hidden
temporary folder beside it (TF Serving ignores non-numeric folder names), loaded in a fresh Python process
with `tf.saved_model.load` alone, compared with the in-memory model, and only then renamed into place.
"""

import logging
import os
import pickle
import re
import shutil
import socket
import tempfile
import typing
import uuid

import keras
import numpy as np
import tensorflow as tf

from pipeline import fresh_process
from pipeline import graph_ops
from pipeline import tasks as tasks_lib
from pipeline import run_files
from pipeline import warmup
from pipeline.tasks import compiled

logger = logging.getLogger(__name__)

# Runs in a fresh interpreter: TensorFlow (and TF Text when the export uses its ops) only, no `pipeline`
# import, exactly what a server has. Inputs and outputs travel as pickled NumPy arrays, so the parent
# compares them exactly as TensorFlow made them.
_SELF_CHECK_SCRIPT = """
import pickle, sys
import tensorflow as tf
path, signatures, input_name, inputs_file, outputs_file, text_ops = sys.argv[1:7]
if text_ops == "1":
    import tensorflow_text  # registers the TF Text ops (SentencePiece) the export runs
with open(inputs_file, "rb") as stream:
    inputs = pickle.load(stream)
loaded = tf.saved_model.load(path)
results = {}
for signature in signatures.split(","):
    outputs = loaded.signatures[signature](**{input_name: tf.constant(inputs, dtype=tf.string)})
    results[signature] = {key: value.numpy() for key, value in outputs.items()}
with open(outputs_file, "wb") as stream:
    pickle.dump(results, stream)
"""


class ExportError(RuntimeError):
    """The export could not be written or did not reproduce the in-memory model."""


def next_version(base_path: str) -> int:
    """One more than the highest integer version folder under `base_path` (1 when there is none)."""
    if not os.path.isdir(base_path):
        return 1
    versions = [int(name) for name in os.listdir(base_path) if name.isdigit()]
    return max(versions, default=0) + 1


def export_run(run_dir: str, version: typing.Optional[int] = None, model: typing.Optional[keras.Model] = None,
               task: typing.Optional[tasks_lib.Task] = None) -> str:
    """Exports a trained run as `<export.dir>/<model_name>/<version>/` and returns that path.

    Args:
        run_dir: A trained run directory.
        version: Integer version; the next free one by default. An existing version is never replaced.
        model: The trained model if already in memory; loaded from the run directory otherwise.
        task: The run's task object; by default the package's task named in the run's config.

    Raises:
        ExportError: The version exists, or the self-check failed (nothing is left behind then).
    """
    task = task or tasks_lib.create_task(run_files.load_run_config(run_dir))
    config = task.config
    preprocessing = task.load_preprocessing(run_dir)
    model = model or run_files.load_trained_model(run_dir)
    base_path = os.path.join(config.export.dir, config.model_name)
    version = next_version(base_path) if version is None else version
    if version < 1:
        raise ExportError(f"version must be a positive integer (got {version})")
    final_path = os.path.join(base_path, str(version))
    if os.path.exists(final_path):
        raise ExportError(f"{final_path} already exists; versions are never overwritten")
    remove_abandoned_temporary_folders(base_path)
    temporary_path = os.path.join(base_path, _temporary_name(version))
    try:
        functions = task.serving_functions(model, preprocessing)
        checks = {"serving_default": "serving_default"}
        if config.export.jit_compile:
            compiled_functions = compiled_serving_functions(task, model, preprocessing)
            functions.update(compiled_functions)
            checks.update({name: name for name in compiled_functions})
        write_saved_model(temporary_path, model, functions, preprocessing.trackables())
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


def _temporary_name(version: int) -> str:
    """`.tmp-<version>-<random>-pid<pid>@<host>`: hidden from TF Serving, and it names its owner."""
    return f"{_TEMPORARY_PREFIX}{version}-{uuid.uuid4().hex[:8]}-pid{os.getpid()}@{_host_name()}"


def _host_name() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


_TEMPORARY_PREFIX = ".tmp-"
_TEMPORARY_OWNER = re.compile(r"^\.tmp-\d+-[0-9a-f]+-pid(\d+)@(.+)$")


def remove_abandoned_temporary_folders(base_path: str) -> list[str]:
    """Removes the temporary folders of exports whose process has died (killed part-way); returns them.

    Only folders written by a process of this machine that no longer runs are removed; a concurrent
    export's folder, one from another machine sharing the folder, or one that does not name its owner is
    left alone.
    """
    if not os.path.isdir(base_path):
        return []
    host = _host_name()
    removed = []
    for name in sorted(os.listdir(base_path)):
        owner = _TEMPORARY_OWNER.match(name)
        if owner and owner.group(2) == host and not _process_alive(int(owner.group(1))):
            shutil.rmtree(os.path.join(base_path, name), ignore_errors=True)
            removed.append(name)
    if removed:
        logger.info("removed %d temporary folders of interrupted exports in %s: %s", len(removed), base_path,
                    ", ".join(removed))
    return removed


def _process_alive(pid: int) -> bool:
    """Whether a process of this machine runs with this id (assumed so where that cannot be told)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill(pid, 0) would not merely probe there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def compiled_serving_functions(task: tasks_lib.Task, model: keras.Model,
                               preprocessing: tasks_lib.Preprocessing) -> dict:
    """The task's XLA-compiled signatures (`export.jit_compile`), named `<plain signature>_xla`.

    Raises:
        ExportError: The task has no compiled serving path.
    """
    if not task.compiles_serving:
        raise ExportError(f"export.jit_compile: the {task.config.task} task has no XLA-compiled signatures; "
                          "set export.jit_compile: false")
    return task.compiled_serving_functions(model, preprocessing)


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
    check_serving_ops(path)
    raw_inputs = [run_files.decode_sample_input(item) for item in inputs]
    loaded = _run_in_fresh_process(path, list(signatures), input_name, raw_inputs)
    raw_tensor = tf.constant(raw_inputs, dtype=tf.string)
    for exported_name, function_name in signatures.items():
        expected = _numpy_outputs(functions[function_name](raw_tensor))
        _compare(expected, loaded[exported_name], exported_name)
        twin = exported_name[:-len(compiled.SUFFIX)] if exported_name.endswith(compiled.SUFFIX) else None
        if twin in functions:
            _compare(expected, _numpy_outputs(functions[twin](raw_tensor)), f"{exported_name} vs {twin}",
                     rtol=1e-3, atol=1e-4)
    logger.info("self-check passed: %s reloaded in a fresh process matches the in-memory model (%s)", path,
                ", ".join(signatures))


def check_serving_ops(path: str) -> None:
    """Fails unless every op of the export at `path` is one TF Serving links in (core TensorFlow, TF Text).

    Raises:
        ExportError: Naming each other op.
    """
    problems = graph_ops.serving_op_problems(path)
    if problems:
        raise ExportError(f"the export at {path} uses ops that TF Serving does not run: {', '.join(problems)}")


def _run_in_fresh_process(path: str, signatures: list[str], input_name: str, inputs: list) -> dict:
    """Calls each signature of the export in a new Python process that imports TensorFlow (and TF Text when
    the export uses its ops) alone.

    The process ends with this one (`fresh_process`), so a killed export leaves no self-check running.
    """
    with tempfile.TemporaryDirectory(prefix="self-check-") as directory:
        inputs_file, outputs_file = os.path.join(directory, "inputs.pkl"), os.path.join(directory, "outputs.pkl")
        log_file = os.path.join(directory, "log.txt")
        with open(inputs_file, "wb") as stream:
            pickle.dump(inputs, stream)
        environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        text_ops = "1" if graph_ops.uses_text_ops(path) else "0"
        with open(log_file, "wb") as log:
            process = fresh_process.start(_SELF_CHECK_SCRIPT, [path, ",".join(signatures), input_name, inputs_file,
                                                               outputs_file, text_ops], output=log,
                                          environment=environment)
            returncode = fresh_process.finish(process, timeout=600)
        if returncode != 0 or not os.path.exists(outputs_file):
            with open(log_file, encoding="utf-8", errors="replace") as log:
                raise ExportError(f"self-check: the export at {path} failed to load in a fresh process:\n"
                                  f"{log.read()[-3000:]}")
        with open(outputs_file, "rb") as stream:
            return pickle.load(stream)


def _numpy_outputs(outputs: dict) -> dict:
    return {key: value.numpy() for key, value in outputs.items()}


def _compare(expected: dict, loaded: dict, signature: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    for key, value in expected.items():
        if key not in loaded:
            raise ExportError(f"self-check: output {key!r} is missing from the exported signature {signature}")
        if value.dtype.kind in "SO":
            matches = value.shape == loaded[key].shape and bool(np.all(value == loaded[key]))
        else:
            matches = np.allclose(value, loaded[key], rtol=rtol, atol=atol)
        if not matches:
            raise ExportError(f"self-check: output {key!r} of the export differs from the in-memory model "
                              f"on the sample inputs ({signature})")
