"""The slanted triangular learning rate (`train.learning_rate_schedule: slanted_triangular`)."""

import keras
import numpy as np
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import schedules
from pipeline import training


def _rate(schedule, step: int) -> float:
    return float(schedule(step))


def test_rises_to_the_peak_then_falls_to_the_peak_over_ratio():
    schedule = schedules.SlantedTriangular(0.01, total_steps=1000, warmup_fraction=0.1, ratio=32)

    assert schedule.rise_steps == 100
    assert _rate(schedule, 0) == pytest.approx(0.01 / 32)
    assert _rate(schedule, 50) == pytest.approx(0.01 * (1 + 0.5 * 31) / 32)  # half way up
    assert _rate(schedule, 100) == pytest.approx(0.01)
    assert _rate(schedule, 550) == pytest.approx(0.01 * (1 + 0.5 * 31) / 32)  # half way down
    assert _rate(schedule, 1000) == pytest.approx(0.01 / 32)
    assert _rate(schedule, 5000) == pytest.approx(0.01 / 32)  # steps past the end stay at the floor


def test_is_linear_on_each_side_of_the_peak():
    schedule = schedules.SlantedTriangular(1.0, total_steps=200, warmup_fraction=0.25, ratio=10)
    rates = np.array([_rate(schedule, step) for step in range(201)])

    assert np.argmax(rates) == 50
    np.testing.assert_allclose(np.diff(rates[:51]), (1 - 0.1) / 50, rtol=1e-4)
    np.testing.assert_allclose(np.diff(rates[50:]), -(1 - 0.1) / 150, rtol=1e-4)


def test_round_trips_through_its_config():
    schedule = schedules.SlantedTriangular(0.003, total_steps=77, warmup_fraction=0.2, ratio=8)

    rebuilt = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule),
                                                     custom_objects={"SlantedTriangular": schedules.SlantedTriangular})

    assert rebuilt.get_config() == schedule.get_config()
    assert [_rate(rebuilt, step) for step in (0, 15, 40, 77)] == [_rate(schedule, step) for step in (0, 15, 40, 77)]


@pytest.mark.parametrize("arguments", [{"total_steps": 0}, {"warmup_fraction": 1.0}, {"ratio": 0.5}])
def test_impossible_shapes_are_refused(arguments):
    with pytest.raises(ValueError, match=next(iter(arguments))):
        schedules.SlantedTriangular(0.01, **{"total_steps": 10, **arguments})


def test_the_train_keys_shape_the_optimizers_schedule():
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")], [
        "train.learning_rate_schedule=slanted_triangular", "train.learning_rate=0.02", "train.warmup_fraction=0.2",
        "train.slanted_triangular_ratio=4"])
    optimizer = training.make_optimizer(config.train, total_steps=50)
    default = training.make_optimizer(
        config_lib.TrainConfig(learning_rate_schedule="slanted_triangular"), total_steps=50)

    assert isinstance(optimizer._learning_rate, schedules.SlantedTriangular)
    assert optimizer._learning_rate.get_config() == {"peak_learning_rate": 0.02, "total_steps": 50,
                                                     "warmup_fraction": 0.2, "ratio": 4, "name": "slanted_triangular"}
    assert (default._learning_rate.warmup_fraction, default._learning_rate.ratio) == (0.1, 32)  # ULMFiT's
    assert float(optimizer.learning_rate) == pytest.approx(0.02 / 4)  # step 0


@pytest.mark.parametrize("key", ["warmup_fraction=0.2", "slanted_triangular_ratio=4"])
def test_its_keys_are_refused_with_another_schedule(key):
    with pytest.raises(config_lib.ConfigError, match=rf"train\.{key.split('=')[0]}: only used with "
                                                      r"train\.learning_rate_schedule: slanted_triangular"):
        config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                               ["train.learning_rate_schedule=cosine", f"train.{key}"])


@pytest.mark.parametrize("key, message", [("warmup_fraction=1", r"must be in \(0, 1\)"),
                                          ("slanted_triangular_ratio=0.5", "must be >= 1")])
def test_its_keys_are_bounded(key, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                               ["train.learning_rate_schedule=slanted_triangular", f"train.{key}"])
