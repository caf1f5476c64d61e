"""Config loading: YAML merging, --set overrides, strict checks with readable messages, round trips."""

import dataclasses
import pathlib

import pytest
import yaml

import helpers
from pipeline import config as config_lib

REPOSITORY = helpers.REPOSITORY
SHIPPED_CONFIGS = sorted(REPOSITORY.glob("configs/*.yaml")) + sorted(REPOSITORY.glob("configs/tiny/*.yaml"))

MINIMAL = {"name": "unit", "task": "sentiment", "data": {"source": "synthetic:sentiment"}}


def tree_with(**blocks) -> dict:
    """MINIMAL with some blocks merged in (nested dicts merge)."""
    return config_lib.merge(MINIMAL, blocks)


def write_yaml(path: pathlib.Path, tree: dict) -> str:
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return str(path)


def config_error(tree: dict) -> str:
    with pytest.raises(config_lib.ConfigError) as error_info:
        config_lib.from_tree(tree)
    return str(error_info.value)


# === Unknown keys ===


def test_unknown_model_key_names_path_suggests_and_lists_valid_keys():
    message = config_error(tree_with(model={"unit": 32}))

    assert message.startswith("model.unit:")
    assert "Did you mean 'units'?" in message
    for key in ("embedding_dim", "cell", "units", "layers", "bidirectional", "dropout", "pooling"):
        assert key in message


def test_unknown_top_level_key_suggests_name():
    message = config_error({**MINIMAL, "nmae": "other"})

    assert message.startswith("nmae:")
    assert "Did you mean 'name'?" in message
    assert "Valid keys:" in message and "runtime" in message


def test_unknown_data_key_uses_the_task_data_block():
    message = config_error(tree_with(data={"vocab_size": 100}))

    assert message.startswith("data.vocab_size:")
    assert "Did you mean 'vocabulary_size'?" in message
    assert "max_sequence_length" in message  # a key of the sentiment data block


def test_unknown_key_without_close_match_has_no_suggestion():
    message = config_error(tree_with(train={"zzzzzz": 1}))

    assert message.startswith("train.zzzzzz:")
    assert "Did you mean" not in message
    assert "epochs" in message


# === Wrong types ===


@pytest.mark.parametrize("value, found", [("3", "str"), (3.5, "float"), (True, "bool")])
def test_wrong_type_for_int_names_path_expected_and_found(value, found):
    message = config_error(tree_with(train={"epochs": value}))

    assert message.startswith("train.epochs:")
    assert "expected int" in message
    assert repr(value) in message
    assert f"({found})" in message


def test_bool_is_not_accepted_for_float():
    message = config_error(tree_with(train={"learning_rate": True}))

    assert message.startswith("train.learning_rate:")
    assert "expected float" in message


def test_int_is_accepted_for_float_and_converted():
    config = config_lib.from_tree(tree_with(train={"learning_rate": 1}))

    assert config.train.learning_rate == 1.0
    assert isinstance(config.train.learning_rate, float)


def test_block_that_is_not_a_mapping_is_rejected():
    message = config_error({**MINIMAL, "train": 3})

    assert message.startswith("train:")
    assert "mapping" in message


def test_labels_with_non_string_items_are_rejected():
    message = config_error(tree_with(data={"labels": ["negative", 1]}))

    assert message.startswith("data.labels")
    assert "list of str" in message
    assert "['negative', 1]" in message


def test_task_of_wrong_type_is_a_config_error():
    # A list as task (e.g. `--set task=[sentiment]`) must be reported, not crash with a TypeError.
    with pytest.raises(config_lib.ConfigError, match=r"^task:"):
        config_lib.from_tree({**MINIMAL, "task": ["sentiment"]})


# === Choices and values ===


def test_bad_cell_lists_choices_and_suggests():
    message = config_error(tree_with(model={"cell": "lstn"}))

    assert message.startswith("model.cell:")
    assert "'lstn'" in message
    for choice in ("simple_rnn", "lstm", "gru"):
        assert choice in message
    assert "Did you mean 'lstm'?" in message


def test_bad_pooling_lists_choices():
    message = config_error(tree_with(model={"pooling": "average"}))

    assert message.startswith("model.pooling:")
    for choice in ("last", "mean", "max", "attention"):
        assert choice in message


@pytest.mark.parametrize("block, key, value", [
    ("train", "epochs", 0),
    ("train", "batch_size", -1),
    ("train", "learning_rate", 0.0),
    ("model", "units", 0),
    ("model", "dropout", 1.0),
    ("data", "validation_fraction", 1.0),
    ("data", "max_sequence_length", 0),
])
def test_out_of_range_value_names_path_and_value(block, key, value):
    message = config_error(tree_with(**{block: {key: value}}))

    assert message.startswith(f"{block}.{key}:")
    assert f"(got {value})" in message


def test_unknown_task_suggests_known_one():
    message = config_error({**MINIMAL, "task": "sentimnt"})

    assert message.startswith("task:")
    assert "'sentimnt'" in message
    assert "Did you mean 'sentiment'?" in message


def test_missing_task_is_reported():
    tree = dict(MINIMAL)
    del tree["task"]

    message = config_error(tree)

    assert message.startswith("task:")
    assert "sentiment" in message


def test_missing_name_is_reported():
    tree = dict(MINIMAL)
    del tree["name"]

    message = config_error(tree)

    assert message.startswith("name:")
    assert "missing" in message


def test_name_with_slash_is_rejected():
    with pytest.raises(config_lib.ConfigError, match=r"^name:"):
        config_lib.from_tree({**MINIMAL, "name": "a/b"})


def test_synthetic_source_of_another_task_is_rejected():
    message = config_error(tree_with(data={"source": "synthetic:tagging"}))

    assert message.startswith("data.source:")
    assert "synthetic:sentiment" in message


def test_unknown_source_kind_suggests():
    message = config_error(tree_with(data={"source": "tfsd:imdb_reviews"}))

    assert message.startswith("data.source:")
    assert "Did you mean 'tfds'?" in message


def test_tfds_source_without_dataset_name_is_rejected():
    with pytest.raises(config_lib.ConfigError, match=r"^data\.source:"):
        config_lib.from_tree(tree_with(data={"source": "tfds:"}))


def test_files_source_requires_train():
    message = config_error(tree_with(data={"source": "files"}))

    assert message.startswith("data.train:")
    assert "required" in message


def test_missing_data_block_defaults_to_files_and_requires_train():
    tree = dict(MINIMAL)
    del tree["data"]

    message = config_error(tree)

    assert message.startswith("data.train:")


# === Files and overrides ===


def test_yaml_files_merge_left_to_right_keeping_siblings(tmp_path):
    first = write_yaml(tmp_path / "first.yaml", {
        **MINIMAL, "model": {"cell": "gru", "units": 16, "bidirectional": True},
        "train": {"epochs": 4, "batch_size": 8}})
    second = write_yaml(tmp_path / "second.yaml", {"model": {"units": 48}, "train": {"epochs": 9}})

    config = config_lib.load_config([first, second])

    assert config.model.units == 48
    assert config.model.cell == "gru"
    assert config.model.bidirectional is True
    assert config.train.epochs == 9
    assert config.train.batch_size == 8


def test_later_file_replaces_lists_and_scalars(tmp_path):
    first = write_yaml(tmp_path / "a.yaml", tree_with(data={"labels": ["a", "b", "c"]}))
    second = write_yaml(tmp_path / "b.yaml", {"name": "renamed", "data": {"labels": ["x", "y"]}})

    config = config_lib.load_config([first, second])

    assert config.name == "renamed"
    assert config.data.labels == ("x", "y")


def test_empty_yaml_file_adds_nothing(tmp_path):
    base = write_yaml(tmp_path / "base.yaml", MINIMAL)
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")

    assert config_lib.load_config([base, str(empty)]) == config_lib.load_config([base])


def test_yaml_file_that_is_not_a_mapping_names_the_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")

    with pytest.raises(config_lib.ConfigError, match="list.yaml"):
        config_lib.load_config([str(path)])


def test_missing_config_file_names_the_file(tmp_path):
    path = str(tmp_path / "absent.yaml")

    with pytest.raises(config_lib.ConfigError, match="absent.yaml.*not found"):
        config_lib.load_config([path])


def test_overrides_parse_as_yaml_and_win_over_files(tmp_path):
    path = write_yaml(tmp_path / "run.yaml", tree_with(train={"epochs": 2, "clipnorm": 0.5},
                                                      model={"bidirectional": False}))

    config = config_lib.load_config([path], [
        "train.epochs=7",
        "train.learning_rate=0.01",
        "model.bidirectional=true",
        "data.labels=[neg, pos]",
        "train.clipnorm=null",
        "runtime.run_dir=/tmp/somewhere",
    ])

    assert config.train.epochs == 7 and isinstance(config.train.epochs, int)
    assert config.train.learning_rate == pytest.approx(0.01)
    assert config.model.bidirectional is True
    assert config.data.labels == ("neg", "pos")
    assert config.train.clipnorm is None
    assert config.run_dir == "/tmp/somewhere"


def test_later_override_wins_over_earlier_one():
    tree = config_lib.apply_override(config_lib.apply_override(MINIMAL, "train.epochs=3"), "train.epochs=5")

    assert config_lib.from_tree(tree).train.epochs == 5


def test_override_keeps_sibling_keys():
    tree = config_lib.apply_override(tree_with(model={"cell": "gru", "units": 8}), "model.units=12")

    assert tree["model"] == {"cell": "gru", "units": 12}


@pytest.mark.parametrize("override", ["train.epochs", "", "=3"])
def test_malformed_override_is_config_error(override):
    with pytest.raises(config_lib.ConfigError, match="KEY=VALUE"):
        config_lib.load_config([], ["name=x", override])


def test_override_with_invalid_yaml_value_is_config_error():
    with pytest.raises(config_lib.ConfigError, match="train.epochs"):
        config_lib.apply_override(MINIMAL, "train.epochs=[1")


def test_override_of_unknown_key_gets_did_you_mean(tmp_path):
    path = write_yaml(tmp_path / "run.yaml", MINIMAL)

    with pytest.raises(config_lib.ConfigError, match=r"^model\.unit: .*Did you mean 'units'\?"):
        config_lib.load_config([path], ["model.unit=3"])


def test_overrides_alone_build_a_config():
    config = config_lib.load_config([], ["name=solo", "task=sentiment", "data.source=synthetic:sentiment"])

    assert config.name == "solo"
    assert config.data.source == "synthetic:sentiment"


# === Defaults, round trip, immutability ===


def test_run_dir_and_model_name_default_to_name():
    config = config_lib.from_tree(MINIMAL)

    assert config.run_dir == "runs/unit"
    assert config.model_name == "unit"
    assert config.export.dir == "exports"


def test_run_dir_and_model_name_can_be_set():
    config = config_lib.from_tree(tree_with(runtime={"run_dir": "elsewhere"}, export={"model_name": "served"}))

    assert config.run_dir == "elsewhere"
    assert config.model_name == "served"


def test_task_picks_the_task_blocks():
    config = config_lib.from_tree(MINIMAL)

    assert isinstance(config.data, config_lib.TextClassificationDataConfig)
    assert isinstance(config.model, config_lib.SentimentModelConfig)


def test_save_then_load_gives_an_equal_config(tmp_path):
    config = config_lib.from_tree({
        "name": "round_trip", "task": "sentiment",
        "data": {"source": "files", "train": "train.tsv", "test": "test.tsv", "labels": ["neg", "pos"],
                 "text_column": 1, "label_column": "rating", "on_bad_rows": "skip", "bucketing": False},
        "model": {"cell": "simple_rnn", "units": 7, "bidirectional": True, "pooling": "attention",
                  "dropout": 0.25},
        "train": {"epochs": 3, "learning_rate": 1e-5, "clipnorm": None, "steps_per_epoch": 11},
        "export": {"model_name": "served", "on_train_end": False},
        "runtime": {"seed": 7, "mixed_precision": "mixed_bfloat16"},
    })
    path = str(tmp_path / "nested" / "config.yaml")

    config_lib.save_config(config, path)
    loaded = config_lib.load_config([path])

    assert loaded == config
    assert loaded.data.labels == ("neg", "pos")
    assert loaded.data.text_column == 1
    assert not (tmp_path / "nested" / "config.yaml.tmp").exists()


def test_to_tree_is_plain_yaml_data():
    tree = config_lib.to_tree(config_lib.from_tree(tree_with(data={"labels": ["a", "b"]})))

    assert tree["data"]["labels"] == ["a", "b"]
    assert yaml.safe_load(yaml.safe_dump(tree)) == tree


def test_configs_are_frozen():
    config = config_lib.from_tree(MINIMAL)

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.epochs = 99
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model.units = 1


def test_shipped_configs_were_found():
    names = {path.relative_to(REPOSITORY).as_posix() for path in SHIPPED_CONFIGS}

    assert "configs/quickstart.yaml" in names
    assert "configs/tiny/sentiment.yaml" in names


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda path: path.relative_to(REPOSITORY).as_posix())
def test_shipped_config_loads(path):
    config = config_lib.load_config([str(path)])

    assert config.name
    assert config.task in config_lib.SCHEMAS
    assert config_lib.load_config([str(path)]) == config
