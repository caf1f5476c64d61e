"""Runs you can trust: a run killed at any point resumes exactly, and a finished run is complete.

A killed run is `python -m pipeline train` in a subprocess with one function patched to SIGKILL the process
at a named point; the same `train` command then resumes it. Its history, training state, checkpoints,
metrics and exports must equal those of the uninterrupted run, bit for bit (`runtime.deterministic` is on).
"""

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

import helpers
from pipeline import cli
from pipeline import run_files
from pipeline import run_state

pytestmark = pytest.mark.slow

# Small enough for seconds per run; dropout, word dropout and weight averaging make the random generators and
# the averaged weights part of what has to resume, and the patience tracks early stopping without reaching it.
_SETTINGS = ["data.synthetic_examples=120", "train.batch_size=16", "train.epochs=3", "model.dropout=0.2",
             "model.word_dropout=0.1", "train.ema_momentum=0.9", "train.early_stopping_patience=5",
             "export.self_check=false"]

# Imports the package, patches the function named by argv[1] to kill the process at that point (2nd epoch,
# 2nd split evaluated, SavedModel written but not yet moved into place), then runs the CLI.
_KILLED_RUN = r"""
import os, signal, sys

import keras

from pipeline import checkpoints, cli, export, training

point = sys.argv[1]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


class DieMidEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            die()


if point == "mid_epoch":
    make_callbacks = training.make_callbacks
    training.make_callbacks = lambda *args, **kwargs: make_callbacks(*args, **kwargs) + [DieMidEpoch()]
elif point == "after_history_row":  # the CSV row of the epoch is written, its checkpoint is not
    commit = checkpoints.RunCheckpoint.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            die()
        commit(self, epoch, logs)

    checkpoints.RunCheckpoint.on_epoch_end = on_epoch_end
elif point == "evaluation":
    evaluate_splits = training.evaluate_splits

    def evaluate_splits_and_die(task, *args, **kwargs):
        evaluate, calls = task.evaluate, []

        def evaluate_twice(*inner_args, **inner_kwargs):
            calls.append(None)
            if len(calls) == 2:
                die()
            return evaluate(*inner_args, **inner_kwargs)

        task.evaluate = evaluate_twice
        return evaluate_splits(task, *args, **kwargs)

    training.evaluate_splits = evaluate_splits_and_die
elif point == "export":  # the SavedModel is written in its temporary folder, not yet checked or renamed
    write_saved_model = export.write_saved_model

    def write_saved_model_and_die(*args, **kwargs):
        write_saved_model(*args, **kwargs)
        die()

    export.write_saved_model = write_saved_model_and_die
sys.exit(cli.main(sys.argv[2:]))
"""

_KILL_POINTS = ("mid_epoch", "after_history_row", "evaluation", "export")


def _train_arguments(directory: pathlib.Path, *extra: str) -> list[str]:
    overrides = helpers.tiny_overrides(directory) + _SETTINGS + list(extra)
    return ["train", str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml"),
            *(item for override in overrides for item in ("--set", override))]


def _train(directory: pathlib.Path, *extra: str) -> None:
    """The `train` command, in this process (TensorFlow is already loaded here)."""
    assert cli.main(_train_arguments(directory, *extra)) == 0


def _start_killed_run(directory: pathlib.Path, point: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _KILLED_RUN, point, *_train_arguments(directory)],
                            cwd=helpers.REPOSITORY, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))



def _versions(directory: pathlib.Path) -> list[str]:
    base = directory / "exports" / "tiny_sentiment"
    return sorted(name for name in os.listdir(base) if name.isdigit()) if base.is_dir() else []


def _outcome(directory: pathlib.Path) -> dict:
    """What a finished run left: history text, state, metrics, export versions and every weight file."""
    run_dir = directory / "run"
    state = json.loads((run_dir / run_state.STATE_FILE).read_text())
    state.pop("export_path")  # under the test's own directory
    checkpoint_files = sorted(os.listdir(run_dir / run_files.LAST_CHECKPOINT))
    return {
        "history": (run_dir / run_files.HISTORY).read_text(),
        "state": state,
        "metrics": json.loads((run_dir / run_files.METRICS_FILE).read_text()),
        "versions": _versions(directory),
        "checkpoint_files": checkpoint_files,
        "weights": {name: helpers.weights_file_arrays(run_dir / run_files.LAST_CHECKPOINT / name)
                    for name in checkpoint_files if name.endswith(".h5")}
        | {"best": helpers.weights_file_arrays(run_dir / run_files.BEST_WEIGHTS)},
    }


def _assert_same_outcome(resumed: dict, uninterrupted: dict, point: str) -> None:
    for key in ("history", "state", "metrics", "versions", "checkpoint_files"):
        assert resumed[key] == uninterrupted[key], f"killed at {point}: {key} differs"
    for name, arrays in uninterrupted["weights"].items():
        assert resumed["weights"][name].keys() == arrays.keys(), f"killed at {point}: {name} holds other arrays"
        for array_name, array in arrays.items():
            assert np.array_equal(resumed["weights"][name][array_name], array), \
                f"killed at {point}: {name}/{array_name} differs"


def _assert_killed_at(point: str, directory: pathlib.Path) -> None:
    """The run died where the point says: checks the state the kill left."""
    state = run_state.load(str(directory / "run"))
    if point in ("mid_epoch", "after_history_row"):
        assert state.epochs_done == 1, state
        history_rows = (directory / "run" / run_files.HISTORY).read_text().splitlines()[1:]
        assert len(history_rows) == (2 if point == "after_history_row" else 1), history_rows
    elif point == "evaluation":
        assert state.epochs_done == 3 and not state.evaluated(), state
    else:
        assert state.evaluated() and state.claimed_export_version() == 1 and not _versions(directory), state


@pytest.fixture(scope="module")
def uninterrupted_and_killed_runs(tmp_path_factory):
    """The uninterrupted run (directory) and one run killed at each point (point -> directory), not resumed."""
    root = tmp_path_factory.mktemp("resume_exact")
    killed = {point: root / point for point in _KILL_POINTS}
    processes = {point: _start_killed_run(directory, point) for point, directory in killed.items()}
    try:
        _train(root / "uninterrupted")  # meanwhile
        for point, process in processes.items():
            _, errors = process.communicate(timeout=600)
            assert process.returncode == -signal.SIGKILL, f"{point}: exit {process.returncode}\n{errors[-3000:]}"
    finally:
        for process in processes.values():
            process.kill()  # no-op once it has ended
    return root / "uninterrupted", killed


@pytest.mark.parametrize("point", _KILL_POINTS)
def test_a_run_killed_and_resumed_ends_bit_for_bit_as_the_uninterrupted_run(uninterrupted_and_killed_runs, point):
    uninterrupted, killed = uninterrupted_and_killed_runs
    _assert_killed_at(point, killed[point])

    _train(killed[point])

    _assert_same_outcome(_outcome(killed[point]), _outcome(uninterrupted), point)


def test_an_export_killed_after_it_was_complete_is_recorded_not_repeated(tmp_path, uninterrupted_and_killed_runs):
    # The state claims version 1 for this training; the export folder is complete but was never recorded.
    uninterrupted, _ = uninterrupted_and_killed_runs
    run_dir = str(uninterrupted / "run")
    state = run_state.load(run_dir)
    run_state.update(run_dir, export_path=None)

    _train(uninterrupted)

    assert _versions(uninterrupted) == ["1"]
    assert run_state.load(run_dir) == state


def test_rerunning_a_finished_run_changes_nothing_and_raising_epochs_continues_it(uninterrupted_and_killed_runs):
    uninterrupted, _ = uninterrupted_and_killed_runs
    run_dir = uninterrupted / "run"
    before = _outcome(uninterrupted)
    written = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")
               if path.is_file() and path.name != run_files.CONFIG_FILE}

    _train(uninterrupted)

    _assert_same_outcome(_outcome(uninterrupted), before, "a rerun")
    assert {path: path.stat().st_mtime_ns for path in written} == written, "a finished run was written to"

    _train(uninterrupted, "train.epochs=4")

    history = (run_dir / run_files.HISTORY).read_text()
    assert history.startswith(before["history"])
    assert len(history.splitlines()) == len(before["history"].splitlines()) + 1
    assert run_state.load(str(run_dir)).epochs_done == 4
    assert _versions(uninterrupted) == ["1", "2"], "the continued run is exported as a fresh run would be"


def test_early_stopping_resumes_with_its_wait_count_and_a_run_that_stopped_is_finished(tmp_path):
    # With a learning rate this small validation accuracy never improves after epoch 1: patience 2 stops
    # training after epoch 3. Trained in two parts (2 epochs, then continued), it must stop there too.
    frozen = ["optimizer=sgd", "learning_rate=0.000000001", "early_stopping_patience=2", "monitor=val_accuracy"]
    settings = ["export.on_train_end=false", *(f"train.{item}" for item in frozen)]
    _train(tmp_path / "whole", *settings, "train.epochs=6")
    _train(tmp_path / "parts", *settings, "train.epochs=2")
    assert run_state.load(str(tmp_path / "parts" / "run")).wait == 1

    _train(tmp_path / "parts", *settings, "train.epochs=6")

    for name in ("whole", "parts"):
        state = run_state.load(str(tmp_path / name / "run"))
        assert (state.epochs_done, state.best_epoch, state.wait) == (3, 1, 2), name
    assert ((tmp_path / "parts" / "run" / run_files.HISTORY).read_text()
            == (tmp_path / "whole" / "run" / run_files.HISTORY).read_text())
    mtime = (tmp_path / "whole" / "run" / run_state.STATE_FILE).stat().st_mtime_ns

    _train(tmp_path / "whole", *settings, "train.epochs=8")  # stopped early: finished for any epochs

    assert (tmp_path / "whole" / "run" / run_state.STATE_FILE).stat().st_mtime_ns == mtime
