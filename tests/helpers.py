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
