"""Import direction (DESIGN.md section 1), checked on the source with `ast`, without importing anything.

config <- data, layers, decoding, metrics, losses <- models (and run_files) <- tasks <- training, export, diagnostics <- cli;
predict (SavedModels only) and cudnn need config alone.
`compat` (the private TensorFlow/Keras APIs) imports nothing from the package and anyone may import it.
`data` and `models` never import each other; `training` and `export` never import each other.
Nothing in `serving/` imports `pipeline`; `serving/client.py` stands alone.
"""

import ast
import pathlib
import re
import sys

import helpers

REPOSITORY = helpers.REPOSITORY
PACKAGE = REPOSITORY / "pipeline"

# The layer of each top-level part of the package (first component after `pipeline.`).
LAYER_OF_PART = {
    "compat": "compat",
    "config": "config",
    "data": "data",
    "layers": "layers",
    "decoding": "decoding",
    "metrics": "metrics",
    "losses": "losses",
    "models": "models",
    "run_files": "run_files",
    "run_state": "run_files",  # the run's progress record: plain JSON, no TensorFlow
    "tasks": "tasks",
    "training": "training",
    "checkpoints": "training",  # the checkpoint callback training uses
    "fine_tuning": "training",  # layer groups, discriminative learning rates, gradual unfreezing
    "layerwise_optimizers": "training",  # the optimizers training builds for per-variable learning rates
    "schedules": "training",  # learning-rate schedules of train.learning_rate_schedule
    "warm_start": "training",  # a fresh run's initial weights from another run or word vectors
    "export": "export",
    "predict": "predict",
    "cudnn": "cudnn",
    "diagnostics": "diagnostics",
    "cli": "cli",
    "__main__": "cli",
    "figures": "figures",
    "plots": "plots",
    "distribution": "distribution",
    "warmup": "warmup",
    "progress": "progress",
    "reports": "reports",
    "evaluation": "evaluation",
    "native_logs": "native_logs",
    "fresh_process": "fresh_process",
    "graph_ops": "graph_ops",
    "validation_scoring": "validation_scoring",
    "__init__": "root",
}

_FOUNDATION = {"config", "compat"}
_BASICS = _FOUNDATION | {"data", "layers", "decoding", "metrics", "losses"}
_MODEL_TIER = {"config", "layers", "metrics", "decoding", "losses"}
_TASK_TIER = _BASICS | {"models"}
_TRAINING_TIER = _TASK_TIER | {"tasks", "run_files"}

# Layers each layer may import (its own layer is always allowed; `root` is `pipeline/__init__.py`).
ALLOWED = {
    "root": set(),
    "compat": set(),
    "config": set(),
    "data": _FOUNDATION,
    "layers": _FOUNDATION,
    "decoding": _FOUNDATION,
    "metrics": _FOUNDATION,
    "losses": set(),  # Keras losses and metrics of the sequence tasks
    "models": _MODEL_TIER,
    "run_files": _MODEL_TIER | {"models"},
    "tasks": _TASK_TIER | {"plots", "figures", "progress"},  # a task draws its own figures
    "training": _TRAINING_TIER,
    "export": _TRAINING_TIER,
    "predict": _FOUNDATION | {"progress"},  # runs SavedModels: needs no task, no model code
    "cudnn": _FOUNDATION,  # which recurrent layers a GPU runs on cuDNN kernels
    "diagnostics": _TRAINING_TIER,
    "cli": set(LAYER_OF_PART.values()),
    "figures": set(),  # plain drawing: arrays in, PNG out
    "plots": set(),  # matplotlib figures: values in, PNG out
    "distribution": _FOUNDATION,  # tf.distribute strategies and worker roles
    "warmup": set(),  # TF Serving's warm-up file: TensorFlow and tensorflow-serving-api only
    "progress": set(),  # progress bars on a terminal (tqdm)
    "reports": _TRAINING_TIER | {"plots", "figures"},  # a run's figures and TensorBoard extras
    "evaluation": _TRAINING_TIER | {"training"},  # evaluate --data / --predictions
    "native_logs": set(),  # the command line's filter of TensorFlow's native logging
    "fresh_process": set(),  # child interpreters that end with their parent (the export self-check)
    "graph_ops": set(),  # the ops of a SavedModel and whether TF Serving links them in
    "validation_scoring": _TRAINING_TIER,  # the task's scores during training (a Keras callback)
}
ALLOWED["export"] = ALLOWED["export"] | {"warmup", "fresh_process", "graph_ops"}
ALLOWED["predict"] = ALLOWED["predict"] | {"graph_ops"}
ALLOWED["training"] = ALLOWED["training"] | {"distribution", "cudnn", "reports", "validation_scoring"}
ALLOWED = {layer: parts | ({"compat"} if layer != "compat" else set()) for layer, parts in ALLOWED.items()}

FORBIDDEN_MODULES = ("tf_keras",)
TEXT_MODULE = "tensorflow_text"
# TF Text is imported only for its SentencePiece tokenizer, and named only where its ops must be found.
TEXT_MODULE_IMPORTERS = {"pipeline/data/subwords.py"}
TEXT_MODULE_MENTIONS = TEXT_MODULE_IMPORTERS | {
    "pipeline/graph_ops.py",  # finds TF Text's op libraries (the export op check, predict)
    "pipeline/export.py",  # the self-check's fresh process imports it for exports that use its ops
}
FORBIDDEN_CALLS = re.compile(r"\b(py_function|numpy_function|py_func)\b")


def package_modules() -> list[pathlib.Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(REPOSITORY).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of_path(path: pathlib.Path) -> str | None:
    relative = path.relative_to(PACKAGE)
    part = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    return LAYER_OF_PART.get(part)


def layer_of_module(name: str) -> str | None:
    """Layer of an imported `pipeline...` module name; `root` for `pipeline` itself."""
    parts = name.split(".")
    if len(parts) == 1:
        return "root"
    return LAYER_OF_PART.get(parts[1])


def is_submodule(name: str) -> bool:
    relative = pathlib.Path(*name.split("."))
    return (REPOSITORY / relative).is_dir() or (REPOSITORY / relative).with_suffix(".py").exists()


def imported_modules(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if is_submodule(candidate) else base))
    return found


def test_every_module_has_a_layer():
    unmapped = [str(path.relative_to(REPOSITORY)) for path in package_modules() if layer_of_path(path) is None]

    assert not unmapped, f"modules outside the DESIGN.md layout (add them to LAYER_OF_PART): {unmapped}"


def test_import_direction_follows_the_design():
    violations = []
    for path in package_modules():
        layer = layer_of_path(path)
        if layer is None:
            continue
        for line, name in imported_modules(path):
            if name != "pipeline" and not name.startswith("pipeline."):
                continue
            target = layer_of_module(name)
            if target == layer or target == "root":  # `pipeline/__init__.py` itself imports nothing
                continue
            if target not in ALLOWED[layer]:
                violations.append(f"{path.relative_to(REPOSITORY)}:{line}: {layer} imports {name} ({target})")

    assert not violations, "imports against DESIGN.md section 1:\n" + "\n".join(violations)


def test_import_scanner_resolves_pipeline_imports():
    # Guards the checker itself: the parsed imports of a known module include its pipeline imports.
    found = {name for _, name in imported_modules(PACKAGE / "tasks" / "sentiment.py")}

    assert {"pipeline.config", "pipeline.metrics", "pipeline.data.text",
            "pipeline.models.sentiment_classifier"} <= found


def test_data_and_models_never_import_each_other():
    crossings = []
    for path in package_modules():
        layer = layer_of_path(path)
        if layer not in ("data", "models"):
            continue
        other = "models" if layer == "data" else "data"
        for line, name in imported_modules(path):
            if name.startswith(f"pipeline.{other}"):
                crossings.append(f"{path.relative_to(REPOSITORY)}:{line}: imports {name}")

    assert not crossings, "\n".join(crossings)


def test_training_and_export_never_import_each_other():
    crossings = []
    for path in package_modules():
        layer = layer_of_path(path)
        if layer not in ("training", "export"):
            continue
        other = "export" if layer == "training" else "training"
        for line, name in imported_modules(path):
            if layer_of_module(name) == other and name.startswith("pipeline"):
                crossings.append(f"{path.relative_to(REPOSITORY)}:{line}: imports {name}")

    assert not crossings, "\n".join(crossings)


def test_no_tf_keras_and_tensorflow_text_only_for_sentencepiece():
    offenders = []
    for path in package_modules():
        relative = str(path.relative_to(REPOSITORY))
        for line, name in imported_modules(path):
            top = name.split(".")[0]
            if top in FORBIDDEN_MODULES or (top == TEXT_MODULE and relative not in TEXT_MODULE_IMPORTERS):
                offenders.append(f"{relative}:{line}: imports {name}")
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if (any(module in text for module in FORBIDDEN_MODULES)
                    or (TEXT_MODULE in text and relative not in TEXT_MODULE_MENTIONS)):
                offenders.append(f"{relative}:{number}: {text.strip()}")

    assert not offenders, "\n".join(offenders)


def test_no_python_callbacks_in_graphs():
    offenders = []
    for path in package_modules():
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if FORBIDDEN_CALLS.search(text):
                offenders.append(f"{path.relative_to(REPOSITORY)}:{number}: {text.strip()}")

    assert not offenders, "exports must use core TensorFlow ops only:\n" + "\n".join(offenders)


SERVING = REPOSITORY / "serving"

# What `serving/client.py` may import besides the standard library: a user copies it alone.
CLIENT_THIRD_PARTY = {"numpy", "requests", "grpc", "tensorflow_serving", "google", "tensorflow"}


def serving_modules() -> list[pathlib.Path]:
    return sorted(path for path in SERVING.rglob("*.py") if "__pycache__" not in path.parts)


def test_import_rules_cover_compat_and_every_serving_file():
    # Guards the checks themselves against files they would silently skip.
    assert layer_of_path(PACKAGE / "compat.py") == "compat" and ALLOWED["compat"] == set()
    assert all("compat" in allowed for layer, allowed in ALLOWED.items() if layer != "compat")
    assert {"client.py", "server.py"} <= {path.name for path in serving_modules()}


def test_serving_never_imports_pipeline():
    offenders = [f"{path.relative_to(REPOSITORY)}:{line}: imports {name}"
                 for path in serving_modules() for line, name in imported_modules(path)
                 if name.split(".")[0] == "pipeline"]

    assert not offenders, "serving/ serves exports with TensorFlow alone (DESIGN.md section 1):\n" + "\n".join(offenders)


def test_serving_client_imports_only_the_standard_library_and_serving_apis():
    path = SERVING / "client.py"
    offenders = [f"serving/client.py:{line}: imports {name}" for line, name in imported_modules(path)
                 if name.split(".")[0] not in sys.stdlib_module_names | CLIENT_THIRD_PARTY]

    assert not offenders, "a user copies serving/client.py alone (DESIGN.md section 1):\n" + "\n".join(offenders)
