"""`model.pretrained_embeddings`: the rows it fills, coverage, config checks and errors (vectors made in tmp_path)."""

import logging

import keras
import numpy as np
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import tasks as tasks_lib
from pipeline import warm_start
from pipeline.data import text_files

WORDS = ["good", "bad", "film", "plot", "great", "awful", "actor", "music", "dull", "fun"]
TINY_SENTIMENT = str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")


def build(tmp_path, *overrides: str):
    config = config_lib.load_config([TINY_SENTIMENT], [f"runtime.run_dir={tmp_path / 'run'}", *overrides])
    task = tasks_lib.create_task(config)
    preprocessing = task.preprocessing_class(vocabulary=["", "[UNK]"] + WORDS, label_names=("negative", "positive"))
    keras.utils.set_random_seed(3)
    model = task.build_model(preprocessing)
    return task, model, preprocessing


def vector(index: int, dimension: int = 16) -> list[float]:
    return [round(index + position / 100, 2) for position in range(dimension)]


def write_vectors(path, words, dimension: int = 16, header: bool = False) -> str:
    text_lines = [f"{len(words)} {dimension}"] if header else []
    text_lines += [f"{word} {' '.join(map(str, vector(index, dimension)))}" for index, word in enumerate(words)]
    path.write_text("\n".join(text_lines) + "\n", encoding="utf-8")
    return str(path)


def test_rows_of_found_words_are_filled_and_the_others_kept(tmp_path, caplog):
    file_words = ["film", "zebra", "Good", "music", "the", "fun", "music"]  # "Good": lower-cased match
    path = write_vectors(tmp_path / "glove.txt", file_words)
    task, model, preprocessing = build(tmp_path, f"model.pretrained_embeddings.path={path}")
    before = keras.ops.convert_to_numpy(model.get_layer("token_embedding").embeddings).copy()

    with caplog.at_level(logging.INFO, logger="pipeline.warm_start"):
        record = warm_start.initialize(model, task, preprocessing, str(tmp_path / "run"))

    embedding = keras.ops.convert_to_numpy(model.get_layer("token_embedding").embeddings)
    expected = {"film": 0, "good": 2, "music": 3, "fun": 5}  # first "music" line wins
    for row, word in enumerate(preprocessing.vocabulary):
        want = vector(expected[word]) if word in expected else before[row]
        np.testing.assert_allclose(embedding[row], want, err_msg=repr(word))
    assert record["pretrained_embeddings"] == {
        "path": path, "words": 10, "found": 4, "exact": 3, "lowercased": 1, "duplicate_lines": 1, "trainable": True}
    assert ("pretrained_embeddings: 4 of 10 words found (40.0%) in glove.txt (3 exact, 1 through a lower-cased "
            "word; 1 repeated word(s) ignored (first line kept)); embedding fine-tuned") in caplog.messages
    assert any("only 4 of 10 words found" in message for message in caplog.messages)  # a low coverage warns


def test_a_cased_run_matches_exactly(tmp_path):
    path = write_vectors(tmp_path / "cased.vec", ["Good", "film"], header=True)
    task, model, preprocessing = build(tmp_path, f"model.pretrained_embeddings.path={path}", "data.lowercase=false")

    record = warm_start.initialize(model, task, preprocessing, str(tmp_path / "run"))

    assert record["pretrained_embeddings"]["found"] == 1


def test_frozen_embedding_is_built_frozen(tmp_path):
    path = write_vectors(tmp_path / "glove.txt", WORDS)
    _, model, _ = build(tmp_path, f"model.pretrained_embeddings.path={path}", "model.pretrained_embeddings.trainable=false")

    assert not model.get_layer("token_embedding").trainable
    assert all("token_embedding" not in weight.path for weight in model.trainable_weights)


def test_a_dimension_mismatch_names_file_line_sizes_and_key(tmp_path):
    path = write_vectors(tmp_path / "glove.50d.txt", WORDS, dimension=50)
    task, model, preprocessing = build(tmp_path, f"model.pretrained_embeddings.path={path}")

    with pytest.raises(text_files.DataError) as error:
        warm_start.initialize(model, task, preprocessing, str(tmp_path / "run"))

    assert str(error.value) == f"{path}:1: the vectors have 50 dimensions, model.embedding_dim is 16"


def test_config_refuses_both_sources_and_trainable_without_a_path():
    with pytest.raises(config_lib.ConfigError, match="cannot be combined with model.initialize_from: both set the "
                                                     "token embedding"):
        config_lib.load_config([TINY_SENTIMENT], ["model.initialize_from=runs/lm",
                                                  "model.pretrained_embeddings.path=glove.txt"])
    with pytest.raises(config_lib.ConfigError, match="model.pretrained_embeddings.trainable: false freezes"):
        config_lib.load_config([TINY_SENTIMENT], ["model.pretrained_embeddings.trainable=false"])
    with pytest.raises(config_lib.ConfigError, match="model.pretrained_embeddings.pat: unknown key"):
        config_lib.load_config([TINY_SENTIMENT], ["model.pretrained_embeddings.pat=glove.txt"])


@pytest.mark.parametrize("config", ["configs/tiny/sentiment.yaml", "configs/tiny/tagging.yaml"])
def test_both_files_are_input_paths_checked_before_training(config):
    loaded = config_lib.load_config([str(helpers.REPOSITORY / config)], [
        "model.pretrained_embeddings.path=vectors/glove.txt.gz"])
    assert loaded.input_paths()["model.pretrained_embeddings.path"] == ["vectors/glove.txt.gz"]
    loaded = config_lib.load_config([str(helpers.REPOSITORY / config)], ["model.initialize_from=runs/lm"])
    assert loaded.input_paths()["model.initialize_from"] == ["runs/lm"]


def test_the_command_line_refuses_a_missing_vectors_file_before_training(tmp_path):
    result = helpers.run_cli("train", "tiny/sentiment", "--set", f"runtime.run_dir={tmp_path / 'run'}",
                             "--set", f"model.pretrained_embeddings.path={tmp_path / 'absent.txt'}")

    assert result.returncode == 2
    assert f"model.pretrained_embeddings.path: {tmp_path / 'absent.txt'}: no such file" in result.stderr
    assert not (tmp_path / "run").exists()
