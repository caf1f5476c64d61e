"""The notebooks: each default run meets its bar, the executed copies in docs/notebooks/ match their sources.

Notebooks are jupytext percent-format `.py` files (the source of truth) paired with `.ipynb` files committed
without outputs; `docs/notebooks/regenerate.py` executes them with their default parameters and commits the
executed copies. The slow test runs every notebook with its default parameters in a temporary working directory
and asserts its bar from the `metrics.json` the run wrote; to save time it leaves out the cells tagged `serve`
(a server process started on the export, covered by the executed copies and tests/serving) and the export's
fresh-process self-check, neither of which changes a metric. The fast tests check the executed copies against
their sources, and their stored metrics against the same bars. A new notebook needs one row in NOTEBOOKS.
"""

import collections
import dataclasses
import functools
import importlib.util
import typing

import pytest

import helpers

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")

NOTEBOOK_DIR = helpers.REPOSITORY / "notebooks"
EXECUTED_DIR = helpers.REPOSITORY / "docs" / "notebooks"
# Appended to a notebook's own OVERRIDES in tests: the export self-check starts one more TensorFlow process
# and changes no metric.
COMMON_OVERRIDES = ["export.self_check=false"]
# Cells the slow test leaves out: they start a server on the export, and the executed copies show them run.
SKIPPED_TAG = "serve"
MAX_EXECUTED_COPY_BYTES = 1_000_000


def _load_regenerate():
    spec = importlib.util.spec_from_file_location("regenerate", EXECUTED_DIR / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _load_regenerate()


# === Bars: what each default run must reach, from its held-out metrics ===


@functools.lru_cache(maxsize=None)
def _splits(config_path: str, overrides: tuple):
    from pipeline import config as config_lib
    from pipeline import tasks
    return tasks.create_task(config_lib.load_config([config_path], list(overrides))).load_splits()


def _sentiment_bar(metrics: dict, splits) -> list[str]:
    return [] if metrics["accuracy"] >= 0.9 else [f"test accuracy {metrics['accuracy']:.3f} < 0.9"]


def _tagging_bar(metrics: dict, splits) -> list[str]:
    return [] if metrics["accuracy"] >= 0.9 else [f"test token accuracy {metrics['accuracy']:.3f} < 0.9"]


def _translation_bar(metrics: dict, splits) -> list[str]:
    """BLEU far above writing the most frequent training target, or copying the source (as in
    tests/test_translation_end_to_end.py)."""
    import sacrebleu
    train, test = splits.splits["train"], splits.splits["test"]
    most_frequent = collections.Counter(train.targets).most_common(1)[0][0]
    baseline = max(sacrebleu.corpus_bleu([most_frequent] * len(test.targets), [test.targets]).score,
                   sacrebleu.corpus_bleu(test.sources, [test.targets]).score)
    if metrics["bleu"] >= 90 and metrics["bleu"] >= baseline + 50:
        return []
    return [f"test BLEU {metrics['bleu']:.1f}: needs >= 90 and >= the constant/copy baseline "
            f"{baseline:.1f} + 50"]


def _captioning_bar(metrics: dict, splits) -> list[str]:
    """CIDEr-D far above a constant caption, and close to nearest-neighbour retrieval with the trained
    encoder's features (a strong baseline on the synthetic shapes, where most test captions occur in training)."""
    from pipeline import metrics as metrics_lib
    train, test = splits.splits["train"], splits.splits["test"]
    most_frequent = collections.Counter(captions[0] for captions in train.captions).most_common(1)[0][0]
    constant = metrics_lib.captioning_scores([most_frequent] * len(test.captions), test.captions)
    failures = []
    if not (metrics["cider"] >= 4 * constant["cider"] and metrics["bleu_4"] >= constant["bleu_4"] + 50):
        failures.append(f"test CIDEr-D {metrics['cider']:.0f} / BLEU-4 {metrics['bleu_4']:.1f}: needs 4x the "
                        f"constant caption's {constant['cider']:.0f} and its {constant['bleu_4']:.1f} + 50")
    if metrics["cider_ratio_to_nearest_neighbour"] < 0.75:
        failures.append(f"CIDEr-D ratio to nearest neighbour {metrics['cider_ratio_to_nearest_neighbour']:.2f} < 0.75")
    return failures


def _language_model_bar(metrics: dict, splits) -> list[str]:
    if metrics["perplexity"] <= 2.0 and metrics["perplexity"] <= metrics["uniform_perplexity"] / 10:
        return []
    return [f"test perplexity {metrics['perplexity']:.2f}: needs <= 2 and <= a tenth of uniform "
            f"{metrics['uniform_perplexity']:.0f}"]


@dataclasses.dataclass(frozen=True)
class Case:
    """How a notebook is checked: the figures it must write, what it must show, its bar.

    `bar(metrics, splits) -> failures` judges the held-out metrics of the notebook's run (None: the notebook
    trains no task model, so it neither exports nor serves); `parameters` replace notebook parameters in the
    slow test, only for notebooks without a bar. `shows`: texts its outputs must contain (by default the
    served model's status, so checked in the executed copy only when the slow test skips the `serve` cells).
    `cell_timeout_seconds` only stops a hung cell; it is no speed target.
    """

    figures: list
    bar: typing.Optional[typing.Callable] = None
    parameters: dict = dataclasses.field(default_factory=dict)
    shows: tuple = ("'state': 'AVAILABLE'",)
    cell_timeout_seconds: int = 600


NOTEBOOKS = {
    "sentiment": Case(["sentiment_training_curves.png", "sentiment_confusion_matrix.png"], _sentiment_bar),
    "tagging": Case(["tagging_training_curves.png", "tagging_predictions.png"], _tagging_bar),
    "translation": Case(["translation_training_curves.png", "translation_attention.png"], _translation_bar),
    "captioning": Case(["captioning_training_curves.png", "captioning_captions.png", "captioning_attention.png"],
                       _captioning_bar),
    "language_model": Case(["language_model_training_curves.png", "language_model_samples.png"],
                           _language_model_bar),
    # No task model and no bar: the test shrinks the experiments (each probe model costs about 2 s of tracing
    # whatever its size: two cells, one value of N); the executed copy shows the default settings.
    "rnn_internals": Case(["vanishing_gradients.png", "long_range.png", "clipping.png"],
                          parameters={"CELLS": ["simple_rnn", "gru"], "STEPS": 20, "DISTRACTORS": [10],
                                      "PROBE_TRAIN_STEPS": 40, "CLIPPING_STEPS": 40},
                          shows=("without_clipping: diverged at step", "3586 outputs, 0 wrong, largest error 0.0")),
}


def _default_parameters(notebook) -> dict:
    """The values the notebook's `parameters` cell assigns."""
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    namespace = {}
    exec(cells[0].source, namespace)  # plain assignments of literals
    return {key: value for key, value in namespace.items() if not key.startswith("__")}


def _default_splits(name: str):
    """The data splits of the notebook's default config, for the baselines of its bar."""
    defaults = _default_parameters(regenerate.read_source(name))
    return _splits(defaults["CONFIG"], tuple(defaults["OVERRIDES"]))


def _outputs_text(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


# === The default runs ===


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_default_run_meets_its_bar_and_writes_its_figures(name, tmp_path):
    case = NOTEBOOKS[name]
    notebook = regenerate.read_source(name)
    parameters = dict(case.parameters)
    if case.bar is not None:
        assert not case.parameters, "a notebook with a bar runs with its default parameters"
        parameters["OVERRIDES"] = _default_parameters(notebook)["OVERRIDES"] + COMMON_OVERRIDES
    skipped = [cell for cell in notebook.cells if SKIPPED_TAG in cell.metadata.get("tags", [])]
    notebook.cells = [cell for cell in notebook.cells if cell not in skipped]
    regenerate.inject_parameters(notebook, parameters)
    regenerate.execute(notebook, tmp_path, case.cell_timeout_seconds)  # working directory: tmp_path

    for figure in case.figures:
        paths = list(tmp_path.rglob(figure))
        assert paths, f"{name}.py did not write {figure}"
        assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].stat().st_size > 2000
    outputs = _outputs_text(notebook)
    for text in case.shows if not skipped else ():
        assert text in outputs, f"{name}.py did not show {text!r}"
    if case.bar is None:
        return
    assert any((tmp_path / "exports").rglob("saved_model.pb")), "no export written"
    runs = regenerate.held_out_metrics(tmp_path)
    assert len(runs) == 1, f"expected one run with metrics, found {sorted(runs)}"
    (run_dir, metrics), = runs.items()
    from pipeline import run_files
    from pipeline import tasks
    splits = tasks.create_task(run_files.load_run_config(str(tmp_path / run_dir))).load_splits()
    failures = case.bar(metrics, splits)
    assert not failures, f"{name}.py's default run misses its bar: {failures}"


# === The executed copies in docs/notebooks/ ===


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_executed_copy_is_in_step_with_its_source_and_meets_its_bar(name):
    path = EXECUTED_DIR / f"{name}.ipynb"
    command = f"python docs/notebooks/regenerate.py {name}"
    assert path.exists(), f"docs/notebooks/{name}.ipynb is missing; run `{command}`"
    executed = nbformat.read(path, as_version=4)
    source = regenerate.read_source(name)

    assert [(cell.cell_type, cell.source) for cell in executed.cells] == \
        [(cell.cell_type, cell.source) for cell in source.cells], \
        f"docs/notebooks/{name}.ipynb is older than notebooks/{name}.py; run `{command}`"
    code_cells = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells), f"not every cell ran; run `{command}`"
    assert not [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]
    assert path.stat().st_size < MAX_EXECUTED_COPY_BYTES, f"{path.stat().st_size} bytes: shrink its figures"
    case = NOTEBOOKS[name]
    assert sum("image/png" in output.get("data", {}) for cell in code_cells for output in cell.outputs) \
        >= len(case.figures)
    outputs = _outputs_text(executed)
    for text in case.shows:
        assert text in outputs, f"docs/notebooks/{name}.ipynb does not show {text!r}"
    if case.bar is None:
        return
    runs = executed.metadata[regenerate.METADATA_KEY]["metrics"]
    assert len(runs) == 1, sorted(runs)
    (metrics,) = runs.values()
    failures = case.bar(metrics, _default_splits(name))
    assert not failures, f"docs/notebooks/{name}.ipynb's stored metrics miss the bar: {failures}"


def test_every_notebook_has_a_test_case():
    found = {path.stem for path in NOTEBOOK_DIR.glob("*.py")}

    assert found == set(NOTEBOOKS), f"add a row to NOTEBOOKS for {sorted(found - set(NOTEBOOKS))}"


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_pair_is_in_sync_and_has_no_outputs(name):
    script = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    stored = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)

    assert [(cell.cell_type, cell.source) for cell in stored.cells] == \
        [(cell.cell_type, cell.source) for cell in script.cells], \
        f"notebooks/{name}.ipynb differs from {name}.py; run `jupytext --sync notebooks/{name}.py`"
    with_outputs = [index for index, cell in enumerate(stored.cells)
                    if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not with_outputs, f"notebooks/{name}.ipynb has outputs in cells {with_outputs}; clear them"


def test_readme_shows_every_notebook_and_its_executed_copy():
    readme = (helpers.REPOSITORY / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Notebooks", 1)[-1].split("\n## ", 1)[0]

    for name in NOTEBOOKS:
        assert f"notebooks/{name}.ipynb" in section, f"README's Notebooks section does not list {name}"
        assert f"docs/notebooks/{name}.ipynb" in section, f"README's Notebooks section does not link {name}'s copy"
    images = [line.split("](", 1)[1].split(")", 1)[0] for line in section.splitlines() if "![" in line]
    assert all((helpers.REPOSITORY / image).exists() for image in images), images
