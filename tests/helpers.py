"""Helpers shared by tests: repository paths, run-directory overrides, running the CLI."""

import os
import pathlib
import subprocess
import sys

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPOSITORY.parent / "shared" / "data"


def tiny_overrides(directory: pathlib.Path) -> list[str]:
    """Overrides that keep a run's files inside a test's temporary directory."""
    return [f"runtime.run_dir={directory / 'run'}", f"export.dir={directory / 'exports'}"]


def run_cli(*arguments: str, input_text: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs `python -m pipeline ...` from the repository root."""
    return subprocess.run([sys.executable, "-m", "pipeline", *arguments], cwd=REPOSITORY, input=input_text,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


def weights_file_arrays(path) -> dict:
    """Every array of a `.weights.h5` file (model and optimizer), by its path inside the file."""
    import h5py
    import numpy as np

    arrays = {}
    with h5py.File(path, "r") as weights_file:
        weights_file.visititems(lambda name, item: arrays.update(
            {name: np.asarray(item)}) if isinstance(item, h5py.Dataset) else None)
    return arrays
