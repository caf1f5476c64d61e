"""`training.train(config, callbacks=[...])` runs the caller's Keras callbacks alongside the run's own."""

import keras
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import training


class EpochRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append((epoch, sorted(logs)))


@pytest.mark.slow
def test_extra_callbacks_see_every_epoch_with_its_logs(tmp_path):
    config = config_lib.load_config(["tiny/sentiment"], helpers.tiny_overrides(tmp_path) + [
        "train.epochs=2", "data.synthetic_examples=100"])
    recorder = EpochRecorder()

    training.train(config, callbacks=[recorder])

    assert [epoch for epoch, _ in recorder.epochs] == [0, 1]
    assert {"loss", "val_loss", "val_accuracy"} <= set(recorder.epochs[-1][1])
