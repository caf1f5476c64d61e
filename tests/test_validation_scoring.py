"""The validation scorer: scores join the epoch's logs, pick the best checkpoint, and survive a resume."""

import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import run_files
from pipeline import training
from pipeline import validation_scoring
from pipeline.tasks import base

NAMES = ("val_bleu", "val_chrf")


def _config(tmp_path, *overrides):
    return config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/translation.yaml")],
                                  [f"runtime.run_dir={tmp_path / 'run'}", "train.monitor=val_bleu",
                                   "train.early_stopping_patience=0", *overrides])


def _scripted(values):
    """A scorer that returns the next BLEU of `values` on each call (chrF = BLEU / 2)."""
    remaining = list(values)
    return lambda: base.ValidationScores({"bleu": remaining[0], "chrf": remaining.pop(0) / 2},
                                         [{"source": "a", "reference": "b", "translation": "c"}])


class _WeightsPerEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([value.copy() for value in self.model.get_weights()])


def _fit(config, run_dir, scores, epochs, every=1):
    """Fits a small dense model with the run's callbacks; the validation loss falls every epoch."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([3]), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    features = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    labels = features @ np.array([[1.0], [-2.0], [0.5]], "float32")
    finished = training.resumed_epoch(run_dir)
    training.trim_history(run_dir, finished)
    scorer = validation_scoring.ValidationScorer(_scripted(scores), NAMES, every=every,
                                                 log_dir=f"{run_dir}/logs/tensorboard/validation_samples")
    record = _WeightsPerEpoch()
    callbacks = training.make_callbacks(config, run_dir, scorer) + [record]
    model.fit(features, labels, validation_data=(features, labels), epochs=epochs, initial_epoch=finished,
              batch_size=16, callbacks=callbacks, verbose=0)
    return model, record.weights


def _history(run_dir):
    with open(f"{run_dir}/{run_files.HISTORY}", newline="") as stream:
        return list(csv.DictReader(stream))


def _best_weights(run_dir):
    model = keras.Sequential([keras.Input([3]), keras.layers.Dense(1)])
    model.load_weights(f"{run_dir}/{run_files.BEST_WEIGHTS}")
    return model.get_weights()


def test_monitor_val_bleu_keeps_the_epoch_with_the_highest_bleu(tmp_path):
    config = _config(tmp_path)
    run_dir = training.prepare_run_dir(config)

    _, weights = _fit(config, run_dir, scores=[10.0, 30.0, 20.0], epochs=3)

    history = _history(run_dir)
    assert [float(row["val_bleu"]) for row in history] == [10.0, 30.0, 20.0]
    assert [float(row["val_chrf"]) for row in history] == [5.0, 15.0, 10.0]
    losses = [float(row["val_loss"]) for row in history]
    assert losses == sorted(losses, reverse=True)  # val_loss would have kept the last epoch
    best = _best_weights(run_dir)
    assert all(np.array_equal(saved, kept) for saved, kept in zip(best, weights[1]))
    assert not all(np.array_equal(saved, kept) for saved, kept in zip(best, weights[2]))


def test_resume_with_val_bleu_continues_from_the_best_score_so_far(tmp_path):
    config = _config(tmp_path, "train.epochs=2")
    run_dir = training.prepare_run_dir(config)
    _, first_weights = _fit(config, run_dir, scores=[10.0, 30.0], epochs=2)

    continued = _config(tmp_path, "train.epochs=4")
    run_dir = training.prepare_run_dir(continued)
    assert training.resumed_epoch(run_dir) == 2
    _, later_weights = _fit(continued, run_dir, scores=[20.0, 25.0], epochs=4)

    assert [float(row["val_bleu"]) for row in _history(run_dir)] == [10.0, 30.0, 20.0, 25.0]
    best = _best_weights(run_dir)  # 20 and 25 are below the 30 of the first session: epoch 2's weights stay
    assert all(np.array_equal(saved, kept) for saved, kept in zip(best, first_weights[1]))


def test_epochs_between_passes_are_nan_and_the_last_epoch_is_scored(tmp_path):
    config = _config(tmp_path)
    run_dir = training.prepare_run_dir(config)

    _fit(config, run_dir, scores=[12.0, 14.0], epochs=3, every=2)

    values = [float(row["val_bleu"]) for row in _history(run_dir)]
    assert math.isnan(values[0]) and values[1:] == [12.0, 14.0]
    assert validation_scoring.best_value(values, "val_bleu") == 14.0


def test_monitor_directions_and_best_values():
    assert validation_scoring.monitor_mode("val_loss") == "min"
    assert validation_scoring.monitor_mode("val_perplexity") == "min"
    assert validation_scoring.monitor_mode("val_bleu") == "max" == validation_scoring.monitor_mode("val_span_f1")
    assert validation_scoring.best_value([math.nan, 3.0, 5.0], "val_cider") == 5.0
    assert validation_scoring.best_value([math.nan, 3.0, 5.0], "val_perplexity") == 3.0
    assert validation_scoring.best_value([math.nan], "val_bleu") is None


def test_a_subset_takes_batches_evenly_across_the_dataset():
    dataset = tf.data.Dataset.range(10)

    assert list(validation_scoring.spread_batches(dataset, examples=96, batch_size=32).as_numpy_iterator()) == [0, 3, 6]
    assert len(list(validation_scoring.spread_batches(dataset, examples=10_000, batch_size=32))) == 10
    assert len(list(validation_scoring.spread_batches(dataset, examples=1, batch_size=32))) == 1


def test_a_score_the_task_does_not_declare_is_an_error():
    scorer = validation_scoring.ValidationScorer(lambda: base.ValidationScores({"rouge": 1.0}), NAMES, every=1)
    scorer.set_params({"epochs": 1})

    with pytest.raises(ValueError, match="rouge"):
        scorer.on_epoch_end(0, {})


@pytest.mark.parametrize("overrides, message", [
    (["train.monitor=val_bleu", "train.validation_every=0"], "train.validation_every: must be >= 1"),
    (["train.monitor=val_cider"], "train.monitor"),
])
def test_scored_monitors_are_checked_when_the_config_loads(overrides, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/translation.yaml")], overrides)
