"""Language-model config: its own train keys (truncated BPTT), data and model checks, round trip."""

import pytest

from pipeline import config as config_lib


def _tree(**blocks) -> dict:
    tree = {"name": "lm", "task": "language_model", "data": {"source": "synthetic:language_model"}}
    return config_lib.merge(tree, blocks)


def _error(**blocks) -> str:
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.from_tree(_tree(**blocks))
    return str(error.value)


def test_defaults_train_with_truncated_bptt_and_monitor_the_loss():
    config = config_lib.from_tree(_tree())

    assert isinstance(config.train, config_lib.LanguageModelTrainConfig)
    assert (config.train.tbptt_steps, config.train.carry_state, config.train.monitor) == (100, True, "val_loss")
    assert config.data.level == "char" and config.model.decoding == "sample"


def test_truncated_bptt_keys_belong_to_the_language_model_only():
    assert _error(train={"tbptt_step": 50}).startswith("train.tbptt_step: unknown key. Did you mean 'tbptt_steps'?")
    assert _error(train={"tbptt_steps": 0}) == "train.tbptt_steps: must be >= 1 (got 0)"
    assert _error(train={"carry_state": "yes"}).startswith("train.carry_state: expected bool, got 'yes'")
    with pytest.raises(config_lib.ConfigError, match=r"^train.tbptt_steps: unknown key"):
        config_lib.from_tree({"name": "s", "task": "sentiment", "data": {"source": "synthetic:sentiment"},
                              "train": {"tbptt_steps": 50}})


def test_model_and_data_checks():
    assert _error(model={"bidirectional": True}).startswith("model.bidirectional: must be false")
    assert _error(model={"top_k": -1}) == "model.top_k: must be >= 0 (got -1)"
    assert _error(model={"temperature": 0}) == "model.temperature: must be > 0 (got 0.0)"
    assert _error(data={"level": "chars"}).endswith("Did you mean 'char'?")
    assert _error(data={"source": "files"}) == "data.train: required when data.source is 'files'"
    assert _error(data={"source": "files", "train": []}).startswith("data.train: expected a path, a glob pattern")
    assert _error(data={"source": "synthetic:translation"}).startswith("data.source: 'synthetic:translation' does not")


def test_resolved_config_round_trips_with_a_list_of_files(tmp_path):
    config = config_lib.from_tree(_tree(data={"source": "files", "train": ["a.txt.gz", "books/*.txt"], "test": "t.txt"},
                                        train={"tbptt_steps": 64, "carry_state": False}))
    path = str(tmp_path / "config.yaml")

    config_lib.save_config(config, path)

    assert config_lib.load_config([path]) == config
    assert config.data.train == ("a.txt.gz", "books/*.txt") and config.data.test == "t.txt"


def test_column_keys_are_checked():
    assert _error(data={"file_format": "tab"}).startswith("data.file_format: 'tab' is not one of")
    assert _error(data={"text_column": -1}).startswith("data.text_column: must be a column name or a 0-based index")
    assert _error(data={"file_format": "jsonl", "text_column": 3}).startswith("data.text_column: JSON Lines records")
    config = config_lib.from_tree(_tree(data={"file_format": "tsv", "text_column": 3, "header": False}))
    assert (config.data.file_format, config.data.text_column, config.data.header) == ("tsv", 3, False)


def test_sampled_softmax_is_bounded_by_the_vocabulary_and_refuses_xla():
    assert config_lib.from_tree(_tree()).train.sampled_softmax == 0
    assert _error(train={"sampled_softmax": -1}) == "train.sampled_softmax: must be >= 0 (got -1)"
    assert _error(data={"vocabulary_size": 100}, train={"sampled_softmax": 99}).startswith(
        "train.sampled_softmax: must be below the vocabulary's 99 non-padding tokens (data.vocabulary_size: 100; "
        "got 99)")
    assert config_lib.from_tree(_tree(data={"vocabulary_size": 100}, train={"sampled_softmax": 98})).train.sampled_softmax == 98
    assert _error(train={"sampled_softmax": 8}, runtime={"jit_compile": True, "deterministic": False}).startswith(
        "train.sampled_softmax: not with runtime.jit_compile")


def test_sampled_softmax_larger_than_the_fitted_vocabulary_fails_before_training():
    from pipeline import tasks

    config = config_lib.from_tree(_tree(data={"synthetic_examples": 50}, train={"sampled_softmax": 500}))
    task = tasks.create_task(config)
    preprocessing = task.fit_preprocessing(task.load_splits())  # a few dozen characters

    with pytest.raises(config_lib.ConfigError, match=r"^train.sampled_softmax: 500 classes cannot be sampled from the"):
        task.build_model(preprocessing)
