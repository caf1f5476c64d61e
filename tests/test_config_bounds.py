"""Bounds declared next to their fields: each kind of bound fails with the same message format."""

import dataclasses
from typing import Optional

import pytest

from pipeline import config as config_lib
from pipeline.config import bounds


def _error(task: str = "sentiment", **blocks) -> str:
    tree = config_lib.merge({"name": "unit", "task": task, "data": {"source": f"synthetic:{task}"}}, blocks)
    with pytest.raises(config_lib.ConfigError) as error_info:
        config_lib.from_tree(tree)
    return str(error_info.value)


@pytest.mark.parametrize("blocks, message", [
    ({"train": {"epochs": 0}}, "train.epochs: must be >= 1 (got 0)"),
    ({"train": {"learning_rate": 0}}, "train.learning_rate: must be > 0 (got 0.0)"),
    ({"data": {"validation_fraction": 1}}, "data.validation_fraction: must be in (0, 1) (got 1.0)"),
    ({"model": {"dropout": 1.0}}, "model.dropout: must be in [0, 1) (got 1.0)"),
    ({"train": {"steps_per_epoch": 0}}, "train.steps_per_epoch: must be >= 1 or null (got 0)"),
    ({"train": {"clipnorm": -1.5}}, "train.clipnorm: must be > 0 or null (got -1.5)"),
    ({"train": {"ema_momentum": 1}}, "train.ema_momentum: must be in (0, 1) or null (got 1.0)"),
])
def test_each_kind_of_bound_names_path_bound_and_value(blocks, message):
    assert _error(**blocks) == message


def test_bounds_of_nested_and_redeclared_fields():
    assert _error("captioning", model={"encoder": {"image_size": 16}}) == (
        "model.encoder.image_size: must be >= 32 or null (got 16)")
    # The captioner gives beam_size a default of its own; the bound comes with it.
    assert _error("captioning", model={"beam_size": 0}) == "model.beam_size: must be >= 1 (got 0)"


def test_null_passes_an_optional_bounded_field():
    config = config_lib.from_tree({"name": "unit", "task": "sentiment", "data": {"source": "synthetic:sentiment"},
                                   "train": {"clipnorm": None, "ema_momentum": None}})

    assert config.train.clipnorm is None and config.train.ema_momentum is None


def test_blocks_built_directly_are_checked_too():
    with pytest.raises(config_lib.ConfigError, match=r"^train\.batch_size: must be >= 1 \(got 0\)$"):
        config_lib.TrainConfig(batch_size=0)


@dataclasses.dataclass(frozen=True)
class _Ranges:
    at_most: int = bounds.bounded(5, maximum=10)
    below: float = bounds.bounded(0.5, exclusive_maximum=1)
    closed: Optional[int] = bounds.bounded(None, minimum=1, maximum=3)

    def __post_init__(self):
        bounds.check(self, "block")


@pytest.mark.parametrize("values, message", [
    ({"at_most": 11}, "block.at_most: must be <= 10 (got 11)"),
    ({"below": 1.0}, "block.below: must be < 1 (got 1.0)"),
    ({"closed": 4}, "block.closed: must be in [1, 3] or null (got 4)"),
])
def test_upper_and_closed_bounds_read_the_same_way(values, message):
    with pytest.raises(config_lib.ConfigError) as error_info:
        _Ranges(**values)

    assert str(error_info.value) == message


def test_values_on_the_bounds_are_admitted():
    assert _Ranges(at_most=10, below=0.99, closed=3).closed == 3
    assert bounds.Bounds(minimum=0, exclusive_maximum=1).admits(0)
    assert not bounds.Bounds(exclusive_minimum=0).admits(0)
