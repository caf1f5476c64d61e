"""Warm start from another run: which weights are copied (compared array by array), vocabulary mapping, errors.

Source runs are made by hand here (config, vocabulary, one checkpoint of a freshly built model), so the
vocabularies and shapes are the test's own; `test_warm_start_runs.py` trains real runs end to end.
"""

import json
import logging
import pathlib

import keras
import numpy as np
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import run_files
from pipeline import run_state
from pipeline import tasks as tasks_lib
from pipeline import warm_start

WORDS = ["good", "bad", "film", "plot", "great", "awful", "actor", "music", "dull", "fun"]
TINY = {"sentiment": "configs/tiny/sentiment.yaml", "tagging": "configs/tiny/tagging.yaml"}


def language_model_tree(**model) -> dict:
    return {"name": "source_lm", "task": "language_model",
            "data": {"source": "synthetic:language_model", "level": "word", "lowercase": True},
            "model": {"cell": "gru", "embedding_dim": 16, "units": 16, **model},
            "train": {"carry_state": False}}


def tiny_tree(task: str, **model) -> dict:
    tree = config_lib.loader.read_yaml(str(helpers.REPOSITORY / TINY[task]))
    tree["model"] = {**tree["model"], **model}
    return tree


def make_run(directory: pathlib.Path, tree: dict, preprocessing_fields: dict, seed: int = 1):
    """A run directory with a config, vocabularies and one finished epoch of a freshly built model."""
    tree = {**tree, "runtime": {**tree.get("runtime", {}), "run_dir": str(directory)}}
    config = config_lib.from_tree(tree)
    config_lib.save_config(config, str(directory / run_files.CONFIG_FILE))
    task = tasks_lib.create_task(config)
    preprocessing = task.preprocessing_class(**preprocessing_fields)
    task.save_preprocessing(preprocessing, str(directory))
    keras.utils.set_random_seed(seed)
    model = task.build_model(preprocessing)
    (directory / run_files.LAST_CHECKPOINT).mkdir(parents=True)
    model.save_weights(str(directory / run_files.LAST_CHECKPOINT / "epoch-0002.weights.h5"))
    run_state.save(str(directory), run_state.TrainingState(
        epochs_done=3, monitor="val_loss", best_value=1.0, best_epoch=2, weights="epoch-0002.weights.h5",
        best_weights="epoch-0002.weights.h5"))
    return task, model, preprocessing


def sentiment_fields(words: list[str]) -> dict:
    return {"vocabulary": ["", "[UNK]"] + words, "label_names": ("negative", "positive")}


def tagging_fields(words: list[str]) -> dict:
    return {"words": ["", "[UNK]"] + words, "characters": ["", "[UNK]"] + list("abcdefghijklmnopqrstuvwxyz"),
            "tag_names": ("NOUN", "VERB", "ADJ")}


def target(directory: pathlib.Path, task_name: str, fields: dict, **model):
    """A fresh target run's task, model (built, seeded) and preprocessing, and a copy of its initial weights."""
    tree = tiny_tree(task_name, **model)
    tree["runtime"] = {"run_dir": str(directory)}
    task = tasks_lib.create_task(config_lib.from_tree(tree))
    preprocessing = task.preprocessing_class(**fields)
    keras.utils.set_random_seed(7)
    model = task.build_model(preprocessing)
    return task, model, preprocessing, weights_by_path(model)


def weights_by_path(model: keras.Model) -> dict[str, np.ndarray]:
    return {weight.path: keras.ops.convert_to_numpy(weight).copy() for weight in model.weights}


def array(weight) -> np.ndarray:
    return keras.ops.convert_to_numpy(weight)


def directions(layer) -> list:
    return [layer.forward_layer, layer.backward_layer] if isinstance(layer, keras.layers.Bidirectional) else [layer]


def assert_unchanged(layer, before: dict) -> None:
    for weight in layer.weights:
        np.testing.assert_array_equal(array(weight), before[weight.path], err_msg=weight.path)


def test_language_model_into_bidirectional_classifier_copies_exactly_what_it_says(tmp_path, caplog):
    source_words = ["film", "<br>", "good", "music", "bad", "plot", "zebra"]  # another order, extra words
    source_task, source_model, source_preprocessing = make_run(
        tmp_path / "lm", language_model_tree(), {"vocabulary": ["", "[UNK]", "\n"] + source_words})
    task, model, preprocessing, before = target(
        tmp_path / "classifier", "sentiment", sentiment_fields(WORDS), bidirectional=True, layers=2,
        initialize_from=str(tmp_path / "lm"))

    with caplog.at_level(logging.INFO, logger="pipeline.warm_start"):
        record = warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier"))

    embedding = array(model.get_layer("token_embedding").embeddings)
    source_embedding = array(source_model.embedding.embeddings)
    source_row = {word: row for row, word in enumerate(source_preprocessing.vocabulary)}
    for row, word in enumerate(preprocessing.vocabulary):
        if word in source_words:
            np.testing.assert_array_equal(embedding[row], source_embedding[source_row[word]], err_msg=word)
        elif row != 1:
            np.testing.assert_array_equal(embedding[row], before["token_embedding/embeddings"][row], err_msg=word)
    np.testing.assert_array_equal(embedding[1], source_embedding[1])  # out of vocabulary -> out of vocabulary
    first, second = model.get_layer("encoder").recurrent_layers
    forward, backward = directions(first)
    for name in ("kernel", "recurrent_kernel", "bias"):
        np.testing.assert_array_equal(array(getattr(forward.cell, name)),
                                      array(getattr(source_model.recurrent_layers[0].cell, name)))
    assert_unchanged(backward, before)
    assert_unchanged(second, before)
    assert_unchanged(model.get_layer("probabilities"), before)

    found = sum(word in source_words for word in WORDS)
    copy = record["initialize_from"]
    assert copy["embedding"]["found"] == found and copy["embedding"]["words"] == len(WORDS)
    assert copy["checkpoint"] == "checkpoints/last/epoch-0002.weights.h5" and copy["epoch"] == 2
    assert copy["selection"] == "best epoch by val_loss"
    assert [entry["layer"] for entry in copy["copied"]] == ["forward_gru_0"]
    assert copy["fresh"] == ["backward_gru_0", "forward_gru_1", "backward_gru_1", "probabilities"]
    assert json.loads((tmp_path / "classifier" / warm_start.INITIALIZATION_FILE).read_text()) == record
    line = next(message for message in caplog.messages if message.startswith("initialized from"))
    assert f"{found} of {len(WORDS)} words found ({100 * found / len(WORDS):.1f}%)" in line
    assert "copied token_embedding, forward_gru_0 (from gru_0)" in line
    assert "fresh: backward_gru_0, forward_gru_1, backward_gru_1, probabilities" in line


def test_bidirectional_classifier_into_tagger_copies_both_directions_and_only_the_word_inputs(tmp_path):
    _, source_model, _ = make_run(tmp_path / "classifier", tiny_tree("sentiment", bidirectional=True, layers=2),
                                  sentiment_fields(list(reversed(WORDS))))
    task, model, preprocessing, before = target(
        tmp_path / "tagger", "tagging", tagging_fields(WORDS[:6]), layers=3, initialize_from=str(tmp_path / "classifier"))

    record = warm_start.initialize(model, task, preprocessing, str(tmp_path / "tagger"))

    source_layers = source_model.get_layer("encoder").recurrent_layers
    target_layers = model.get_layer("encoder").recurrent_layers
    for index in (0, 1):
        for source, copied in zip(directions(source_layers[index]), directions(target_layers[index])):
            kernel = array(copied.cell.kernel)
            if index == 0:  # 16 word-embedding rows copied, the character-feature rows kept
                np.testing.assert_array_equal(kernel[:16], array(source.cell.kernel))
                np.testing.assert_array_equal(kernel[16:], before[copied.cell.kernel.path][16:])
            else:
                np.testing.assert_array_equal(kernel, array(source.cell.kernel))
            np.testing.assert_array_equal(array(copied.cell.recurrent_kernel), array(source.cell.recurrent_kernel))
    assert_unchanged(target_layers[2], before)
    assert_unchanged(model.get_layer("char_encoder"), before)
    entries = {entry["layer"]: entry for entry in record["initialize_from"]["copied"]}
    assert entries["forward_gru_0"]["fresh_rows_reading"] == ["the features after the embedding"]
    assert entries["backward_gru_1"]["fresh_rows_reading"] == []
    assert record["initialize_from"]["embedding"]["found"] == 6
    assert "char_encoder" in record["initialize_from"]["fresh"]


def test_unidirectional_source_feeds_only_the_forward_inputs_of_a_deeper_bidirectional_layer(tmp_path):
    _, source_model, _ = make_run(tmp_path / "lm", language_model_tree(layers=2),
                                  {"vocabulary": ["", "[UNK]", "\n"] + WORDS})
    task, model, preprocessing, before = target(tmp_path / "classifier", "sentiment", sentiment_fields(WORDS),
                                                bidirectional=True, layers=2, initialize_from=str(tmp_path / "lm"))

    record = warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier"))

    forward = model.get_layer("encoder").recurrent_layers[1].forward_layer
    kernel = array(forward.cell.kernel)  # rows 0-15 read forward_gru_0, rows 16-31 backward_gru_0
    np.testing.assert_array_equal(kernel[:16], array(source_model.recurrent_layers[1].cell.kernel))
    np.testing.assert_array_equal(kernel[16:], before[forward.cell.kernel.path][16:])
    entries = {entry["layer"]: entry for entry in record["initialize_from"]["copied"]}
    assert entries["forward_gru_1"]["fresh_rows_reading"] == ["backward_gru_0"]
    assert record["initialize_from"]["embedding"]["found"] == len(WORDS)


def test_deeper_source_leaves_its_upper_layers_unused(tmp_path):
    make_run(tmp_path / "lm", language_model_tree(layers=2), {"vocabulary": ["", "[UNK]", "\n"] + WORDS})
    task, model, preprocessing, _ = target(tmp_path / "classifier", "sentiment", sentiment_fields(WORDS),
                                           initialize_from=str(tmp_path / "lm"))

    record = warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier"))

    assert record["initialize_from"]["unused"] == ["gru_1"]


def test_classifier_into_classifier_copies_the_encoder_and_leaves_the_head_fresh(tmp_path):
    """The SST-2 recipe: a classifier trained on one data set (IMDB) starts a classifier of another."""
    source_words = ["film", "good", "bad", "plot", "dull"]
    _, source_model, _ = make_run(tmp_path / "imdb", tiny_tree("sentiment", pooling="max"),
                                  sentiment_fields(source_words))
    target_words = ["bad", "fun", "film", "music", "good"]
    task, model, preprocessing, before = target(tmp_path / "sst2", "sentiment", sentiment_fields(target_words),
                                                pooling="mean_max", initialize_from=str(tmp_path / "imdb"))

    record = warm_start.initialize(model, task, preprocessing, str(tmp_path / "sst2"))

    source_embedding = array(source_model.get_layer("token_embedding").embeddings)
    embedding = array(model.get_layer("token_embedding").embeddings)
    for row, word in enumerate(target_words, start=2):
        expected = (source_embedding[source_words.index(word) + 2] if word in source_words
                    else before["token_embedding/embeddings"][row])
        np.testing.assert_array_equal(embedding[row], expected, err_msg=word)
    source_gru = source_model.get_layer("encoder").recurrent_layers[0]
    gru = model.get_layer("encoder").recurrent_layers[0]
    for name in ("kernel", "recurrent_kernel", "bias"):
        np.testing.assert_array_equal(array(getattr(gru.cell, name)), array(getattr(source_gru.cell, name)))
    assert_unchanged(model.get_layer("probabilities"), before)  # 2 x 16 pooled inputs here, 16 in the source
    assert record["initialize_from"]["task"] == "sentiment"
    assert record["initialize_from"]["embedding"]["found"] == 3
    assert record["initialize_from"]["fresh"] == ["probabilities"]


@pytest.mark.parametrize("source_model, target_model, expected", [
    ({"units": 32}, {}, "has gru units 32, {target} (this run) has 16"),
    ({"cell": "lstm"}, {}, "has recurrent cell lstm, {target} (this run) has gru"),
    ({"embedding_dim": 8}, {}, "has embedding_dim 8, {target} (this run) has 16"),
])
def test_shapes_that_cannot_match_fail_naming_both_runs(tmp_path, source_model, target_model, expected):
    make_run(tmp_path / "lm", language_model_tree(**source_model), {"vocabulary": ["", "[UNK]", "\n"] + WORDS})
    task, model, preprocessing, _ = target(tmp_path / "classifier", "sentiment", sentiment_fields(WORDS),
                                           initialize_from=str(tmp_path / "lm"), **target_model)

    with pytest.raises(config_lib.ConfigError) as error:
        warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier"))

    assert str(error.value) == (f"model.initialize_from: {tmp_path / 'lm'} "
                                + expected.format(target=tmp_path / "classifier"))


def test_a_source_that_is_no_trained_run_or_has_no_encoder_is_refused(tmp_path):
    task, model, preprocessing, _ = target(tmp_path / "classifier", "sentiment", sentiment_fields(WORDS),
                                           initialize_from=str(tmp_path / "nothing"))
    with pytest.raises(config_lib.ConfigError, match="nothing is not a run directory"):
        warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier"))

    translation = config_lib.loader.read_yaml(str(helpers.REPOSITORY / "configs/tiny/translation.yaml"))
    (tmp_path / "translation").mkdir()
    config_lib.save_config(config_lib.from_tree(translation), str(tmp_path / "translation" / "config.yaml"))
    task, model, preprocessing, _ = target(tmp_path / "classifier", "sentiment", sentiment_fields(WORDS),
                                           initialize_from=str(tmp_path / "translation"))
    with pytest.raises(config_lib.ConfigError, match="is a translation run, whose model has no token embedding"):
        warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier"))

    make_run(tmp_path / "lm", language_model_tree(), {"vocabulary": ["", "[UNK]", "\n"] + WORDS})
    run_state.save(str(tmp_path / "lm"), run_state.TrainingState())
    task, model, preprocessing, _ = target(tmp_path / "classifier", "sentiment", sentiment_fields(WORDS),
                                           initialize_from=str(tmp_path / "lm"))
    with pytest.raises(config_lib.ConfigError, match="has no checkpoint yet"):
        warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier"))


def test_a_run_without_initialization_keys_is_left_as_built(tmp_path):
    task, model, preprocessing, before = target(tmp_path / "classifier", "sentiment", sentiment_fields(WORDS))

    assert warm_start.initialize(model, task, preprocessing, str(tmp_path / "classifier")) is None
    assert_unchanged(model, before)
    assert warm_start.load_record(str(tmp_path / "classifier")) is None
