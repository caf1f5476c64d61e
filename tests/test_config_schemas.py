"""Task schemas: a task defined outside the package loads its YAML; `train.monitor` is checked at load."""

import dataclasses
import pathlib
import subprocess
import sys

import pytest
import yaml

import helpers
from pipeline import config as config_lib
from pipeline.config import bounds


@dataclasses.dataclass(frozen=True)
class LengthBucketDataConfig(config_lib.DataConfig):
    """Texts whose label is the bucket of their length."""

    buckets: int = bounds.bounded(4, minimum=2)


@dataclasses.dataclass(frozen=True)
class LengthBucketModelConfig(config_lib.RecurrentConfig):
    """A recurrent stack read out at its last step."""

    hidden_layer: bool = False


LENGTH_BUCKET = config_lib.TaskSchema(data=LengthBucketDataConfig, model=LengthBucketModelConfig,
                                      monitor_choices=("val_accuracy",))
SCHEMAS = {**config_lib.SCHEMAS, "length_bucket": LENGTH_BUCKET}
TREE = {"name": "buckets", "task": "length_bucket", "data": {"source": "synthetic:length_bucket", "buckets": 3},
        "model": {"units": 8, "hidden_layer": True}}


def _write(path: pathlib.Path, tree: dict) -> str:
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return str(path)


def test_task_defined_outside_the_package_loads_its_yaml(tmp_path):
    config = config_lib.load_config([_write(tmp_path / "run.yaml", TREE)], ["train.epochs=2"], schemas=SCHEMAS)

    assert isinstance(config.data, LengthBucketDataConfig) and config.data.buckets == 3
    assert isinstance(config.model, LengthBucketModelConfig) and config.model.hidden_layer
    assert type(config.train) is config_lib.TrainConfig and config.train.epochs == 2


def test_outside_task_keys_and_bounds_are_checked(tmp_path):
    path = _write(tmp_path / "run.yaml", TREE)

    with pytest.raises(config_lib.ConfigError, match=r"^data\.bucket: unknown key\. Did you mean 'buckets'\?"):
        config_lib.load_config([path], ["data.bucket=3"], schemas=SCHEMAS)
    with pytest.raises(config_lib.ConfigError, match=r"^data\.buckets: must be >= 2 \(got 1\)$"):
        config_lib.load_config([path], ["data.buckets=1"], schemas=SCHEMAS)


def test_outside_task_round_trips_through_save_config(tmp_path):
    config = config_lib.from_tree(TREE, schemas=SCHEMAS)
    path = str(tmp_path / "config.yaml")

    config_lib.save_config(config, path)

    assert config_lib.load_config([path], schemas=SCHEMAS) == config


def test_task_is_checked_against_the_schemas_given():
    with pytest.raises(config_lib.ConfigError, match=r"^task: 'length_bucket' is not one of \[") as error_info:
        config_lib.from_tree(TREE)
    assert "'sentiment'" in str(error_info.value)

    only_buckets = {"length_bucket": LENGTH_BUCKET}
    with pytest.raises(config_lib.ConfigError) as error_info:
        config_lib.from_tree({**TREE, "task": "length_buckets"}, schemas=only_buckets)
    assert str(error_info.value) == (
        "task: 'length_buckets' is not one of ['length_bucket']. Did you mean 'length_bucket'?")


def test_run_config_built_directly_accepts_a_task_outside_the_schemas():
    config = config_lib.RunConfig(name="buckets", task="length_bucket",
                                  data=LengthBucketDataConfig(source="synthetic:length_bucket"),
                                  model=LengthBucketModelConfig())

    assert config.task not in config_lib.SCHEMAS


def test_schema_train_class_supplies_defaults_when_the_block_is_absent():
    config = config_lib.from_tree({"name": "lm", "task": "language_model",
                                   "data": {"source": "synthetic:language_model"}})

    assert config.train == config_lib.LanguageModelTrainConfig()


@pytest.mark.parametrize("task", sorted(config_lib.SCHEMAS))
def test_every_task_defaults_to_one_of_its_monitor_choices(task):
    config = config_lib.from_tree({"name": "unit", "task": task, "data": {"source": f"synthetic:{task}"}})

    assert config.train.monitor in config_lib.SCHEMAS[task].monitor_choices


def test_bad_monitor_fails_at_load_with_choices_and_suggestion():
    with pytest.raises(config_lib.ConfigError) as error_info:
        config_lib.from_tree({"name": "unit", "task": "sentiment", "data": {"source": "synthetic:sentiment"},
                              "train": {"monitor": "val_acc"}})

    assert str(error_info.value) == (
        "train.monitor: 'val_acc' is not one of ['val_accuracy', 'val_loss']. Did you mean 'val_accuracy'?")


def test_monitor_choices_come_from_the_schema_given():
    with pytest.raises(config_lib.ConfigError, match=r"^train\.monitor: 'val_loss' is not one of \['val_accuracy'\]"):
        config_lib.from_tree(config_lib.merge(TREE, {"train": {"monitor": "val_loss"}}), schemas=SCHEMAS)


_LOAD_WITH_BAD_MONITOR = """
import sys
from pipeline import config as config_lib
try:
    config_lib.load_config([sys.argv[1]])
except config_lib.ConfigError as error:
    print(error)
print("tensorflow" in sys.modules)
print(sorted(name for name in sys.modules if name.startswith("pipeline") and not name.startswith("pipeline.config")))
"""


def test_bad_monitor_fails_before_tensorflow_is_imported(tmp_path):
    path = _write(tmp_path / "run.yaml", {"name": "unit", "task": "language_model",
                                          "data": {"source": "synthetic:language_model"},
                                          "train": {"monitor": "val_perplexty"}})

    process = subprocess.run([sys.executable, "-c", _LOAD_WITH_BAD_MONITOR, path], cwd=helpers.REPOSITORY,
                             capture_output=True, text=True, timeout=120, check=True)

    message, tensorflow_imported, pipeline_modules = process.stdout.splitlines()
    assert message == ("train.monitor: 'val_perplexty' is not one of ['val_loss', 'val_perplexity']. "
                       "Did you mean 'val_perplexity'?")
    assert tensorflow_imported == "False"
    assert pipeline_modules == "['pipeline']"
