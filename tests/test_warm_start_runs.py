"""Warm-started runs end to end: a run started from another resumes exactly without starting again, and frozen
pretrained vectors stay as they were through training, resumption and `model.keras`."""

import gzip
import json

import keras
import numpy as np
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import run_files
from pipeline import run_state
from pipeline import tasks as tasks_lib
from pipeline import training
from pipeline import warm_start

pytestmark = pytest.mark.slow  # trains tiny models

TINY_SENTIMENT = str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")


def train(directory, *overrides: str) -> str:
    return training.train(config_lib.load_config([TINY_SENTIMENT], helpers.tiny_overrides(directory) + list(overrides)))


def checkpoint_arrays(run_dir: str, name: str) -> dict:
    return helpers.weights_file_arrays(f"{run_dir}/{run_files.LAST_CHECKPOINT}/{name}")


def embedding_of(arrays: dict) -> np.ndarray:
    return arrays["layers/embedding/vars/0"]  # Keras names a weights file's layers by their class


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("source"), "train.epochs=1")


def test_a_warm_started_run_resumes_exactly_and_is_not_started_again(tmp_path, source_run, monkeypatch):
    settings = [f"model.initialize_from={source_run}", "model.bidirectional=true", "model.dropout=0.2"]
    straight = train(tmp_path / "straight", "train.epochs=2", *settings)
    resumed = train(tmp_path / "resumed", "train.epochs=1", *settings)
    record = warm_start.load_record(resumed)

    def started_again(*arguments, **keywords):
        raise AssertionError("a resumed run was warm-started again")

    monkeypatch.setattr(warm_start, "initialize", started_again)
    train(tmp_path / "resumed", "train.epochs=2", *settings)

    assert record == warm_start.load_record(straight) == warm_start.load_record(resumed)
    assert record["initialize_from"]["run"] == source_run
    assert [entry["layer"] for entry in record["initialize_from"]["copied"]] == ["forward_gru_0"]
    state = run_state.load(straight)
    assert run_state.load(resumed).weights == state.weights == "epoch-0002.weights.h5"
    for name, array in checkpoint_arrays(straight, state.weights).items():
        np.testing.assert_array_equal(checkpoint_arrays(resumed, state.weights)[name], array, err_msg=name)
    assert (tmp_path / "straight/run/logs/history.csv").read_text() == (tmp_path / "resumed/run/logs/history.csv").read_text()


def test_frozen_pretrained_vectors_stay_unchanged_through_training_and_resume(tmp_path):
    config = config_lib.load_config([TINY_SENTIMENT], helpers.tiny_overrides(tmp_path / "probe"))
    task = tasks_lib.create_task(config)
    vocabulary = task.fit_preprocessing(task.load_splits()).vocabulary
    words = vocabulary[2::2]  # every other word has a vector
    vectors = {word: np.round(np.linspace(-1, 1, 16) * (index + 1) / len(words), 4) for index, word in enumerate(words)}
    path = tmp_path / "vectors.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write(f"{len(vectors)} 16\n")
        stream.writelines(f"{word} {' '.join(map(str, values))}\n" for word, values in vectors.items())
    settings = [f"model.pretrained_embeddings.path={path}", "model.pretrained_embeddings.trainable=false",
                "model.word_dropout=0.1"]

    run_dir = train(tmp_path, "train.epochs=1", *settings)
    after_first = embedding_of(checkpoint_arrays(run_dir, "epoch-0001.weights.h5"))
    train(tmp_path, "train.epochs=2", *settings)  # resumes
    after_second = embedding_of(checkpoint_arrays(run_dir, "epoch-0002.weights.h5"))

    np.testing.assert_array_equal(after_second, after_first)
    for row, word in enumerate(vocabulary):
        if word in vectors:
            np.testing.assert_allclose(after_second[row], vectors[word], rtol=1e-6, err_msg=word)
    record = json.loads((tmp_path / "run" / warm_start.INITIALIZATION_FILE).read_text())
    assert record["pretrained_embeddings"]["found"] == len(words) and not record["pretrained_embeddings"]["trainable"]
    model = run_files.load_trained_model(run_dir)
    assert not model.get_layer("token_embedding").trainable
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.get_layer("token_embedding").embeddings), after_second)
