"""Executes every notebook top to bottom on its tiny config (slow), and checks its pairing.

Notebooks are jupytext percent-format `.py` files (the source of truth) paired with `.ipynb` files committed
without outputs. A new notebook needs one row in NOTEBOOKS.
"""

import dataclasses
import os
import typing

import pytest

import helpers

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")

NOTEBOOK_DIR = helpers.REPOSITORY / "notebooks"
# Applied to every notebook run in tests: the export self-check starts one more TensorFlow process.
COMMON_OVERRIDES = ["export.self_check=false"]


@dataclasses.dataclass(frozen=True)
class Case:
    """How a notebook runs in tests: config overrides and the figures it must write.

    `config` names the tiny config (`configs/tiny/<config>.yaml`, the notebook's name by default); a notebook
    without one (None) trains no task model, so it neither exports nor serves, and gets `parameters` only.
    `shows`: texts its outputs must contain (by default the served model's status).
    `cell_timeout_seconds` only stops a hung cell; it is no speed target.
    """

    overrides: list
    figures: list
    cell_timeout_seconds: int = 600
    config: typing.Optional[str] = ""
    parameters: dict = dataclasses.field(default_factory=dict)
    shows: tuple = ("'state': 'AVAILABLE'",)


NOTEBOOKS = {
    "sentiment": Case(["train.epochs=1"], ["sentiment_training_curves.png", "sentiment_confusion_matrix.png"]),
    "tagging": Case(["train.epochs=1"], ["tagging_training_curves.png", "tagging_predictions.png"]),
    "translation": Case(["train.epochs=1", "data.synthetic_examples=600"],
                        ["translation_training_curves.png", "translation_attention.png"]),
    "captioning": Case(["train.epochs=1", "data.synthetic_examples=300"],
                       ["captioning_training_curves.png", "captioning_captions.png", "captioning_attention.png"]),
    "language_model": Case(["train.epochs=1", "data.synthetic_examples=300"],
                           ["language_model_training_curves.png", "language_model_samples.png"], config="lm"),
    # Each probe model costs about 2 s of tracing whatever its size: two cells, one value of N.
    "rnn_internals": Case([], ["vanishing_gradients.png", "long_range.png", "clipping.png"], config=None,
                          parameters={"CELLS": ["simple_rnn", "gru"], "STEPS": 20, "DISTRACTORS": [10],
                                      "PROBE_TRAIN_STEPS": 40, "CLIPPING_STEPS": 40},
                          shows=("without_clipping: diverged at step", "3586 outputs, 0 wrong, largest error 0.0")),
}


def _parameters_index(notebook) -> int:
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.metadata.get("tags", []):
            return index
    raise AssertionError("the notebook has no cell tagged 'parameters'")


def _inject_parameters(notebook, parameters: dict) -> None:
    """Adds a cell after the `parameters` cell that overrides its values (papermill's convention)."""
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(_parameters_index(notebook) + 1, cell)


def _outputs_text(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_and_writes_its_figures(name, tmp_path):
    case = NOTEBOOKS[name]
    notebook = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    figures = tmp_path / "figures"
    parameters = {"FIGURES": str(figures), **case.parameters}
    if case.config is not None:
        parameters.update({
            "CONFIG": str(helpers.REPOSITORY / "configs" / "tiny" / f"{case.config or name}.yaml"),
            "OVERRIDES": [*COMMON_OVERRIDES, *case.overrides,
                          f"runtime.run_dir={tmp_path / 'run'}", f"export.dir={tmp_path / 'exports'}"]})
    _inject_parameters(notebook, parameters)
    environment = {"PYTHONPATH": os.pathsep.join(filter(None, [str(helpers.REPOSITORY), os.environ.get("PYTHONPATH")])),
                   "TF_CPP_MIN_LOG_LEVEL": "2"}
    client = nbclient.NotebookClient(notebook, timeout=case.cell_timeout_seconds, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ, **environment))  # the kernel imports pipeline from the repository

    for figure in case.figures:
        path = figures / figure
        assert path.exists(), f"{name}.py did not write {figure}; it wrote {sorted(os.listdir(figures))}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000
    if case.config is not None:
        assert any((tmp_path / "exports").rglob("saved_model.pb")), "no export written"
    outputs = _outputs_text(notebook)
    for text in case.shows:
        assert text in outputs, f"{name}.py did not show {text!r}"


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


def test_readme_shows_every_notebook():
    readme = (helpers.REPOSITORY / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Notebooks", 1)[-1].split("\n## ", 1)[0]

    for name in NOTEBOOKS:
        assert f"notebooks/{name}.ipynb" in section, f"README's Notebooks section does not list {name}"
    images = [line.split("](", 1)[1].split(")", 1)[0] for line in section.splitlines() if "![" in line]
    assert images and all((helpers.REPOSITORY / image).exists() for image in images), images
