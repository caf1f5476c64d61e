"""How far a run has got: epochs trained, early stopping, evaluation and export, in one small JSON file.

`<run_dir>/checkpoints/last/training_state.json` is rewritten atomically (temporary file, then rename) at
the end of every epoch, after the epoch's weights are on disk: it is the commit point of the epoch. A run
killed at any moment therefore finds either the previous epoch's state or the new one, each naming weight
files that exist. Evaluation and export record themselves in the same file once they are done, so the same
`train` command run again does only what is missing, and nothing at all for a finished run.

This module imports no TensorFlow: the state can be read, checked and reported before TensorFlow starts.
"""

import dataclasses
import json
import os
import typing

STATE_FILE = os.path.join("checkpoints", "last", "training_state.json")

# Monitored values that improve by going down; every other monitor (accuracy, BLEU, F1...) improves going up.
_LOWER_IS_BETTER = ("loss", "perplexity")


def lower_is_better(monitor: str) -> bool:
    """Whether a smaller value of `monitor` (e.g. `val_loss`, `val_perplexity`) is an improvement."""
    return monitor.endswith(_LOWER_IS_BETTER)


@dataclasses.dataclass(frozen=True)
class TrainingState:
    """The state of a run after its last finished epoch.

    Attributes:
        epochs_done: Epochs trained and checkpointed.
        monitor: The monitored validation metric (`train.monitor`).
        best_value: Best value of `monitor` so far (None before the first epoch, or when never logged).
        best_epoch: Epoch (counted from 1) that reached `best_value`.
        wait: Epochs since the last improvement: early stopping stops once it reaches the patience.
        weights: File in `checkpoints/last/` with the weights and optimizer state after `epochs_done`.
        best_weights: File in `checkpoints/last/` with the weights of `best_epoch`.
        random_state: Values of the model's variables that are not weights (the random generators of
            dropout layers), in the order of `model.variables`.
        evaluated_epochs: `epochs_done` when `metrics.json` was last written by `train`.
        export_epochs: `epochs_done` when the export of `export_version` was started.
        export_version: Version number claimed for the export after training.
        export_path: The export after training, once it is complete.
    """

    epochs_done: int = 0
    monitor: typing.Optional[str] = None
    best_value: typing.Optional[float] = None
    best_epoch: typing.Optional[int] = None
    wait: int = 0
    weights: typing.Optional[str] = None
    best_weights: typing.Optional[str] = None
    random_state: tuple = ()
    evaluated_epochs: typing.Optional[int] = None
    export_epochs: typing.Optional[int] = None
    export_version: typing.Optional[int] = None
    export_path: typing.Optional[str] = None

    def after_epoch(self, monitor: str, value: typing.Optional[float], weights: str,
                    random_state: list) -> "TrainingState":
        """The state once one more epoch, whose monitored value is `value`, is saved in `weights`."""
        epoch = self.epochs_done + 1
        state = dataclasses.replace(self, epochs_done=epoch, monitor=monitor, weights=weights,
                                    random_state=tuple(random_state))
        if value is None:  # not logged this epoch: neither an improvement nor a step towards stopping
            return state
        if self.best_value is None or (value < self.best_value if lower_is_better(monitor)
                                       else value > self.best_value):
            return dataclasses.replace(state, best_value=value, best_epoch=epoch, best_weights=weights, wait=0)
        return dataclasses.replace(state, wait=self.wait + 1)

    def improved(self) -> bool:
        """Whether the last finished epoch is the best so far."""
        return self.best_epoch is not None and self.best_epoch == self.epochs_done

    def stopped_early(self, patience: int) -> bool:
        """Whether early stopping with this patience (0: none) ends training here."""
        return patience > 0 and self.wait >= patience

    def training_finished(self, epochs: int, patience: int) -> bool:
        """Whether there is nothing left to train for `train.epochs` and `train.early_stopping_patience`."""
        return self.epochs_done >= epochs or self.stopped_early(patience)

    def evaluated(self) -> bool:
        """Whether `metrics.json` describes the model of the last finished epoch's training."""
        return self.epochs_done > 0 and self.evaluated_epochs == self.epochs_done

    def exported(self) -> bool:
        """Whether the export after this training is complete."""
        return self.epochs_done > 0 and self.export_epochs == self.epochs_done and self.export_path is not None

    def claimed_export_version(self) -> typing.Optional[int]:
        """The version an interrupted export of this training was writing, if any (to finish it, not to add one)."""
        if self.epochs_done > 0 and self.export_epochs == self.epochs_done and self.export_path is None:
            return self.export_version
        return None

    def weight_files(self) -> set[str]:
        """The files of `checkpoints/last/` this state needs."""
        return {name for name in (self.weights, self.best_weights) if name}


def path(run_dir: str) -> str:
    return os.path.join(run_dir, STATE_FILE)


def load(run_dir: str) -> TrainingState:
    """The run's state; a fresh state when the run has not finished an epoch yet."""
    try:
        with open(path(run_dir), encoding="utf-8") as stream:
            fields = json.load(stream)
    except FileNotFoundError:
        return TrainingState()
    fields["random_state"] = tuple(fields.get("random_state", ()))
    known = {field.name for field in dataclasses.fields(TrainingState)}
    return TrainingState(**{key: value for key, value in fields.items() if key in known})


def save(run_dir: str, state: TrainingState) -> None:
    """Replaces the state file atomically: a reader (or a process killed meanwhile) sees the old or the new one."""
    target = path(run_dir)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    temporary = f"{target}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(dataclasses.asdict(state), stream, indent=1)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, target)


def update(run_dir: str, **changes) -> TrainingState:
    """Saves the run's state with some fields changed and returns it."""
    state = dataclasses.replace(load(run_dir), **changes)
    save(run_dir, state)
    return state


def describe(state: TrainingState, epochs: int, patience: int, metrics: dict) -> list[str]:
    """A few readable lines about a run: epochs, early stopping, best epoch, metrics per split, export.

    Args:
        state: The run's state.
        epochs: `train.epochs` of the config in use.
        patience: `train.early_stopping_patience` of the config in use.
        metrics: The contents of `metrics.json` (split name -> metrics).
    """
    if state.stopped_early(patience):
        trained = (f"{state.epochs_done} epoch(s), stopped early after {state.wait} epoch(s) without "
                   f"improvement of {state.monitor}")
    else:
        trained = f"{state.epochs_done} of {epochs} epoch(s)"
    lines = [f"trained {trained}"]
    if state.best_epoch is not None:
        lines.append(f"best {state.monitor} {state.best_value:.6g} at epoch {state.best_epoch}")
    for split_name, values in metrics.items():
        if isinstance(values, dict) and split_name != "skipped_rows":
            shown = ", ".join(f"{key}={value:.4f}" for key, value in values.items() if isinstance(value, float))
            lines.append(f"{split_name}: {shown}")
    lines.append(f"export: {state.export_path}" if state.exported() else "export: none")
    return lines
