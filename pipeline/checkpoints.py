"""The run's checkpoints: the last epoch (to resume from), the best epoch, and early stopping, kill -9 safe.

`checkpoints/last/` holds `training_state.json` (see `run_state`) and the weight files it names: the
last finished epoch (weights, optimizer state) and the best epoch by `train.monitor`. At the end of an
epoch the weights go to a new file `epoch-<n>.weights.h5`, then the state naming it replaces the old state
atomically (the commit), then files no longer named are deleted and `checkpoints/best.weights.h5` is
refreshed from the best epoch's file. A process killed at any point leaves a state whose files exist; a
resumed run loads them, with the random generators' state, and continues exactly where the committed
epoch ended.
"""

import logging
import os
import shutil
import typing

import keras
import numpy as np

from pipeline import compat
from pipeline import run_files
from pipeline import run_state

logger = logging.getLogger(__name__)

STATE_FILE_NAME = os.path.basename(run_state.STATE_FILE)


class RunCheckpoint(keras.callbacks.Callback):
    """Restores the last checkpoint when training starts; after every epoch saves it, then stops early if due.

    Place it after every callback that writes the epoch (history, logs, validation scores): an epoch is
    committed only once all of them have seen it.

    Args:
        run_dir: The run directory.
        monitor: The validation metric that picks the best epoch and drives early stopping.
        patience: Epochs without improvement before stopping; 0 never stops early.
        averaged_weights_swap: The run's `SwapEMAWeights(swap_on_epoch=True)` callback, if it averages
            weights: the checkpoint then holds the averaged weights in the model, and a resumed run has
            to swap them back at the next epoch's start.
    """

    def __init__(self, run_dir: str, monitor: str, patience: int,
                 averaged_weights_swap: typing.Optional[keras.callbacks.Callback] = None):
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.patience = patience
        self.averaged_weights_swap = averaged_weights_swap
        self.directory = os.path.join(run_dir, run_files.LAST_CHECKPOINT)
        self.state = run_state.TrainingState()

    def on_train_begin(self, logs=None):
        self.state = run_state.load(self.run_dir)
        remove_unused_files(self.run_dir, self.state)
        if self.state.weights:
            restore(self.model, self.run_dir, self.state)
            publish_best(self.run_dir, self.state)  # in case a kill came between the commit and the copy
            if self.averaged_weights_swap is not None:
                compat.mark_averaged_weights_in_model(self.averaged_weights_swap)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        os.makedirs(self.directory, exist_ok=True)
        self.model.save_weights(os.path.join(self.directory, weights), overwrite=True)
        value = logs.get(self.monitor)
        if value is None:
            logger.warning("%s was not logged in epoch %d: it neither improves nor counts towards early stopping",
                           self.monitor, epoch + 1)
        self.state = self.state.after_epoch(self.monitor, None if value is None else float(value), weights,
                                            random_state(self.model))
        run_state.save(self.run_dir, self.state)  # the commit: from here on, the epoch is done
        remove_unused_files(self.run_dir, self.state)
        if self.state.improved():
            publish_best(self.run_dir, self.state)
        if self.state.stopped_early(self.patience):  # training.fit logs the one line saying so
            self.model.stop_training = True


def random_state(model: keras.Model) -> list:
    """Values of the model's variables that are not weights (the dropout layers' random generators)."""
    weights = {id(variable) for variable in model.weights}
    return [np.asarray(variable).tolist() for variable in model.variables if id(variable) not in weights]


def restore(model: keras.Model, run_dir: str, state: run_state.TrainingState) -> None:
    """Loads the last checkpoint (weights, optimizer state, random generators) into a built, compiled model."""
    _build_optimizer(model)
    model.load_weights(os.path.join(run_dir, run_files.LAST_CHECKPOINT, state.weights))
    weights = {id(variable) for variable in model.weights}
    others = [variable for variable in model.variables if id(variable) not in weights]
    if len(others) != len(state.random_state):
        raise ValueError(f"{run_state.path(run_dir)}: the checkpoint holds {len(state.random_state)} random "
                         f"generator state(s), the model has {len(others)}")
    for variable, value in zip(others, state.random_state):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def load_best(model: keras.Model, run_dir: str, state: run_state.TrainingState) -> None:
    """Loads the best epoch's weights (the last epoch's when no epoch was scored) into a model (compiled or not:
    an uncompiled one takes the model's weights and leaves the optimizer's)."""
    name = state.best_weights or state.weights
    if name:
        _build_optimizer(model)
        model.load_weights(os.path.join(run_dir, run_files.LAST_CHECKPOINT, name))


def publish_best(run_dir: str, state: run_state.TrainingState) -> None:
    """Copies the best epoch's weights to `checkpoints/best.weights.h5` (replaced atomically)."""
    if not state.best_weights:
        return
    target = os.path.join(run_dir, run_files.BEST_WEIGHTS)
    temporary = f"{target}.tmp"
    shutil.copyfile(os.path.join(run_dir, run_files.LAST_CHECKPOINT, state.best_weights), temporary)
    os.replace(temporary, target)


def remove_unused_files(run_dir: str, state: run_state.TrainingState) -> None:
    """Deletes what a killed save left in `checkpoints/last/` and the weight files no state names any more."""
    directory = os.path.join(run_dir, run_files.LAST_CHECKPOINT)
    if not os.path.isdir(directory):
        return
    keep = state.weight_files() | {STATE_FILE_NAME}
    for name in os.listdir(directory):
        if name not in keep:
            os.remove(os.path.join(directory, name))


def _build_optimizer(model: keras.Model) -> None:
    # Its variables have to exist for `load_weights` to fill them; an uncompiled model has none to fill.
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
