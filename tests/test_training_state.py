"""The run's progress record (`run_state`): best epoch, early stopping, completion, atomic saves; history trimming."""

import os

import pytest

from pipeline import run_state
from pipeline import training


def _after(values: list, monitor: str = "val_accuracy") -> run_state.TrainingState:
    state = run_state.TrainingState()
    for epoch, value in enumerate(values, start=1):
        state = state.after_epoch(monitor, value, f"epoch-{epoch:04d}.weights.h5", [[1, epoch]])
    return state


def test_best_epoch_and_wait_follow_the_monitor_direction():
    accuracy = _after([0.5, 0.7, 0.6, 0.7])
    assert (accuracy.best_epoch, accuracy.best_value, accuracy.wait) == (2, 0.7, 2)
    assert accuracy.best_weights == "epoch-0002.weights.h5" and accuracy.weights == "epoch-0004.weights.h5"
    for monitor in ("val_loss", "val_perplexity"):
        lower = _after([3.0, 2.0, 2.5], monitor)
        assert (lower.best_epoch, lower.wait) == (2, 1), monitor


def test_an_epoch_without_the_monitored_value_neither_improves_nor_waits():
    state = _after([0.5, None])
    assert (state.epochs_done, state.best_epoch, state.wait) == (2, 1, 0)


def test_training_is_finished_at_the_epoch_count_or_once_stopped_early():
    state = _after([0.5, 0.4, 0.4])  # two epochs without improvement
    assert state.stopped_early(patience=2) and state.training_finished(epochs=10, patience=2)
    assert not state.training_finished(epochs=10, patience=3), "a larger patience continues the run"
    assert not state.training_finished(epochs=10, patience=0), "patience 0 never stops early"
    assert state.training_finished(epochs=3, patience=0)
    assert not state.training_finished(epochs=4, patience=0), "more epochs continue the run"


def test_evaluation_and_export_count_only_for_the_training_they_followed():
    state = run_state.TrainingState(epochs_done=3, evaluated_epochs=3, export_epochs=3, export_version=2)
    assert state.evaluated() and not state.exported() and state.claimed_export_version() == 2
    exported = run_state.TrainingState(epochs_done=3, export_epochs=3, export_version=2, export_path="exports/x/2")
    assert exported.exported() and exported.claimed_export_version() is None
    continued = exported.after_epoch("val_loss", 1.0, "epoch-0004.weights.h5", [])
    assert not continued.exported() and continued.claimed_export_version() is None
    assert not run_state.TrainingState(epochs_done=4, evaluated_epochs=3).evaluated()


def test_state_round_trips_and_is_replaced_without_leftovers(tmp_path):
    state = _after([0.5, 0.6])
    run_state.save(str(tmp_path), state)
    assert run_state.load(str(tmp_path)) == state
    assert run_state.update(str(tmp_path), evaluated_epochs=2).evaluated()
    assert os.listdir(os.path.dirname(run_state.path(str(tmp_path)))) == ["training_state.json"]
    assert run_state.load(str(tmp_path / "elsewhere")) == run_state.TrainingState()


def test_describe_names_epochs_early_stopping_best_epoch_metrics_and_export():
    state = run_state.TrainingState(epochs_done=5, monitor="val_loss", best_value=0.25, best_epoch=2, wait=3,
                                    export_epochs=5, export_path="exports/run/1")
    lines = run_state.describe(state, epochs=10, patience=3,
                               metrics={"test": {"accuracy": 0.875, "examples": 8}, "skipped_rows": {}})
    assert lines == ["trained 5 epoch(s), stopped early after 3 epoch(s) without improvement of val_loss",
                     "best val_loss 0.25 at epoch 2", "test: accuracy=0.8750", "export: exports/run/1"]


@pytest.mark.parametrize("tail", ["", "2,0.5", "1"])
def test_history_keeps_only_complete_rows_of_checkpointed_epochs(tmp_path, tail):
    history = tmp_path / "logs" / "history.csv"
    history.parent.mkdir()
    history.write_text("epoch,loss,val_loss\r\n0,0.9,0.8\r\n1,0.7,0.6\r\n" + tail)

    training.trim_history(str(tmp_path), finished_epochs=2)
    assert history.read_text().splitlines() == ["epoch,loss,val_loss", "0,0.9,0.8", "1,0.7,0.6"]

    training.trim_history(str(tmp_path), finished_epochs=0)
    assert not history.exists(), "with no row left the CSV logger starts the file again, header first"
