"""Executes the notebooks with their default parameters and writes the executed copies beside this file.

    python docs/notebooks/regenerate.py              # every notebook, one after another
    python docs/notebooks/regenerate.py sentiment    # one (or a few) by name

Each notebook runs from its paired source (`notebooks/<name>.py`), exactly as shipped, in a fresh temporary
working directory: its run, export and figures land there (shown as `runs/...`, `exports/...`), nothing is
resumed from an earlier run, and the checkout is left untouched. The executed copy keeps the cells and their
outputs (text, PNG figures) and records, in its metadata under `pipeline`, the held-out metrics of every run
directory the notebook wrote and the run time; `tests/test_notebooks.py` checks the copies against their
sources and the metrics against each notebook's bar. Per-cell timings are dropped so that a regeneration
changes only what the run changed.
"""

import argparse
import datetime
import json
import os
import pathlib
import re
import sys
import tempfile
import time

import jupytext
import nbclient
import nbformat

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
SOURCES = REPOSITORY / "notebooks"
EXECUTED = pathlib.Path(__file__).resolve().parent
# The key under which an executed copy's metadata holds its metrics and run time.
METADATA_KEY = "pipeline"
# Lines TensorFlow writes while it starts (CUDA probes, oneDNN notes) and saves a model: noise to a reader.
_RUNTIME_LOG_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl|INFO:tensorflow:Assets written)")


def notebook_names() -> list[str]:
    """Every notebook's name, from the paired sources in notebooks/."""
    return sorted(path.stem for path in SOURCES.glob("*.py"))


def read_source(name: str) -> nbformat.NotebookNode:
    """The notebook as its jupytext source defines it, without outputs."""
    return jupytext.read(SOURCES / f"{name}.py")


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict) -> None:
    """Adds a cell after the one tagged `parameters` that overrides its values (papermill's convention)."""
    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.metadata.get("tags", []):
            source = "\n".join(f"{key} = {value!r}" for key, value in parameters.items())
            notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(
                source, metadata={"tags": ["injected-parameters"]}))
            return
    raise ValueError("the notebook has no cell tagged 'parameters'")


def held_out_metrics(working_directory: pathlib.Path) -> dict:
    """{run directory relative to the working directory: its test (or validation) metrics, numbers only}."""
    found = {}
    for path in sorted(working_directory.rglob("metrics.json")):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        split_name = "test" if "test" in metrics else "validation"
        if split_name not in metrics:
            continue
        numbers = {key: value for key, value in metrics[split_name].items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
        found[path.parent.relative_to(working_directory).as_posix()] = {"split": split_name, **numbers}
    return found


def execute(notebook: nbformat.NotebookNode, working_directory: pathlib.Path,
            cell_timeout_seconds: int = 600) -> nbformat.NotebookNode:
    """Runs every cell in a fresh kernel whose working directory is `working_directory`.

    The kernel imports `pipeline` and `serving` from this checkout; shipped configs are found by name.
    Returns the notebook with its outputs; raises nbclient's CellExecutionError when a cell fails.
    """
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])))
    client = nbclient.NotebookClient(notebook, timeout=cell_timeout_seconds, kernel_name="python3",
                                     resources={"metadata": {"path": str(working_directory)}})
    client.execute(env=environment)
    return notebook


def drop_runtime_logs(notebook: nbformat.NotebookNode) -> None:
    """Removes TensorFlow's start-up and SavedModel log lines from the stream outputs, and outputs left empty."""
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = "".join(line for line in output["text"].splitlines(keepends=True)
                                         if not _RUNTIME_LOG_LINE.match(line) and line.strip())
                if not output["text"]:
                    continue
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """How long a cell ran, from the timing nbclient records."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (_timestamp(end) - _timestamp(start)).total_seconds()


def _timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def regenerate(name: str) -> dict:
    """Executes one notebook with its defaults and writes `docs/notebooks/<name>.ipynb`; returns its record."""
    notebook = read_source(name)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"notebook_{name}_") as directory:
        execute(notebook, pathlib.Path(directory))
        metrics = held_out_metrics(pathlib.Path(directory))
    seconds = time.monotonic() - started
    slowest = sorted(((cell_seconds(cell), index) for index, cell in enumerate(notebook.cells)), reverse=True)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    drop_runtime_logs(notebook)
    record = {"metrics": metrics, "seconds": round(seconds, 1), "cpu_count": os.cpu_count()}
    notebook.metadata[METADATA_KEY] = record
    nbformat.write(notebook, EXECUTED / f"{name}.ipynb")
    print(f"{name}: {seconds:.0f} s; slowest cells " +
          ", ".join(f"#{index} {cell_time:.0f} s" for cell_time, index in slowest[:3]), flush=True)
    for run_dir, numbers in metrics.items():
        print(f"  {run_dir}: {json.dumps(numbers)}", flush=True)
    return record


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"notebooks to run (default: all of {', '.join(notebook_names())})")
    names = parser.parse_args(arguments).names or notebook_names()
    unknown = sorted(set(names) - set(notebook_names()))
    if unknown:
        parser.error(f"no notebook named {', '.join(unknown)}; choose from {', '.join(notebook_names())}")
    for name in names:
        regenerate(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
