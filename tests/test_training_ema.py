"""Weight averaging (`train.ema_momentum`): validation, the best checkpoint and the saved model agree."""

import csv
import os

import keras
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import run_files
from pipeline import tasks
from pipeline import training


@pytest.mark.slow
def test_the_saved_model_is_the_averaged_model_that_validation_scored(tmp_path):
    config = config_lib.load_config(
        [str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
        helpers.tiny_overrides(tmp_path) + [
            "data.synthetic_examples=600", "train.epochs=2", "train.ema_momentum=0.9", "train.monitor=val_loss",
            "train.early_stopping_patience=0", "export.on_train_end=false"])
    run_dir = training.train(config)
    with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
        best_validation_loss = min(float(row["val_loss"]) for row in csv.DictReader(stream))
    task = tasks.create_task(config)
    validation = task.datasets(task.load_splits(), task.load_preprocessing(run_dir))["validation"]
    model = run_files.load_trained_model(run_dir)
    model.compile(loss=task.loss())
    optimizer = training.make_optimizer(config.train, total_steps=10)

    saved_loss = model.evaluate(validation, verbose=0, return_dict=True)["loss"]

    # Had the checkpoint been taken before the averaged weights were swapped in, it would hold the raw
    # weights, whose validation loss differs from the logged (averaged) one.
    assert saved_loss == pytest.approx(best_validation_loss, rel=1e-4)
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9


def test_averaging_swaps_weights_in_before_the_checkpoints(tmp_path):
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                                    helpers.tiny_overrides(tmp_path) + ["train.ema_momentum=0.99"])
    callbacks = training.make_callbacks(config, str(tmp_path))
    names = [type(callback).__name__ for callback in callbacks]

    assert names.index("SwapEMAWeights") < names.index("CSVLogger") < names.index("RunCheckpoint") == len(names) - 1
    # A resumed run tells the averaging callback that the restored model holds the averaged weights.
    assert callbacks[-1].averaged_weights_swap is callbacks[names.index("SwapEMAWeights")]
    assert "SwapEMAWeights" not in [type(callback).__name__ for callback in training.make_callbacks(
        config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                               helpers.tiny_overrides(tmp_path)), str(tmp_path))]


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.1"])
def test_ema_momentum_outside_the_open_unit_interval_is_refused(value):
    with pytest.raises(config_lib.ConfigError, match=r"train\.ema_momentum: must be in \(0, 1\)"):
        config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                               [f"train.ema_momentum={value}"])


def test_without_averaging_the_optimizer_keeps_no_average():
    assert not training.make_optimizer(config_lib.TrainConfig(), total_steps=10).use_ema
    assert isinstance(training.make_optimizer(config_lib.TrainConfig(ema_momentum=0.5), 10), keras.optimizers.Adam)
