"""The sequence tagger: tag probabilities for every cell and character encoder, padding invariance, the mask
that keeps padding out of the loss, and the .keras round trip."""

import itertools

import keras
import numpy as np
import pytest

from pipeline import config as config_lib
from pipeline import models
from pipeline.models import sequence_tagger

VOCABULARY_SIZE = 30
CHAR_VOCABULARY_SIZE = 12
NUM_TAGS = 4
CELLS = ("simple_rnn", "lstm", "gru")
CHAR_ENCODERS = ("none", "cnn", "bilstm")
# Right-padded sentences of 4, 2 and 1 words; each real word has 1 to 3 characters, padding words none.
TOKEN_IDS = np.array([[5, 3, 9, 2],
                      [4, 8, 0, 0],
                      [7, 0, 0, 0]], dtype="int32")
CHAR_IDS = np.array([[[3, 4, 0], [5, 0, 0], [6, 7, 8], [2, 3, 0]],
                     [[9, 9, 0], [4, 0, 0], [0, 0, 0], [0, 0, 0]],
                     [[10, 11, 3], [0, 0, 0], [0, 0, 0], [0, 0, 0]]], dtype="int32")
LENGTHS = np.count_nonzero(TOKEN_IDS, axis=1)


def build(cell="gru", char_encoder="cnn", bidirectional=True, **model) -> keras.Model:
    model_config = config_lib.TaggerModelConfig(embedding_dim=8, units=6, cell=cell, bidirectional=bidirectional,
                                                char_encoder=char_encoder, char_embedding_dim=4, char_units=5,
                                                **model)
    keras.utils.set_random_seed(0)
    return sequence_tagger.build_sequence_tagger(model_config, vocabulary_size=VOCABULARY_SIZE,
                                                 char_vocabulary_size=CHAR_VOCABULARY_SIZE, num_tags=NUM_TAGS)


def predict(model: keras.Model, token_ids=TOKEN_IDS, char_ids=CHAR_IDS) -> np.ndarray:
    return keras.ops.convert_to_numpy(model({"token_ids": token_ids, "char_ids": char_ids}, training=False))


def with_extra_padding(token_ids: np.ndarray, char_ids: np.ndarray, words: int, chars: int):
    return (np.pad(token_ids, [(0, 0), (0, words)]),
            np.pad(char_ids, [(0, 0), (0, words), (0, chars)]))


def assert_equal_on_real_words(actual: np.ndarray, expected: np.ndarray):
    for row, length in enumerate(LENGTHS):
        np.testing.assert_allclose(actual[row, :length], expected[row, :length], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell, char_encoder", list(itertools.product(CELLS, CHAR_ENCODERS)), ids=str)
def test_probabilities_shape_dtype_and_padding_invariance(cell, char_encoder):
    model = build(cell, char_encoder, bidirectional=cell != "simple_rnn")

    probabilities = predict(model)
    padded = predict(model, *with_extra_padding(TOKEN_IDS, CHAR_IDS, words=3, chars=2))

    assert probabilities.shape == (3, 4, NUM_TAGS)
    assert probabilities.dtype == np.float32 and np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert padded.shape == (3, 7, NUM_TAGS)
    assert_equal_on_real_words(padded, probabilities)


def test_rows_do_not_depend_on_the_rest_of_the_batch():
    model = build("lstm", "bilstm", layers=2)

    together = predict(model)
    alone = predict(model, TOKEN_IDS[1:2, :2], CHAR_IDS[1:2, :2, :2])

    np.testing.assert_allclose(alone[0], together[1, :2], rtol=1e-5, atol=1e-6)


def test_characters_change_the_tags_of_an_unknown_word():
    model = build("gru", "cnn")
    unknown = np.array([[1, 1]], "int32")  # two out-of-vocabulary words spelled differently

    probabilities = predict(model, unknown, np.array([[[3, 4, 0], [9, 10, 11]]], "int32"))

    assert not np.allclose(probabilities[0, 0], probabilities[0, 1])


@pytest.mark.parametrize("char_encoder", ["cnn", "none"])
def test_padding_stays_out_of_the_loss(char_encoder):
    # The embedding's mask reaches the output, so Keras weighs padded words out of the loss.
    model = build("gru", char_encoder)
    model.compile(loss="sparse_categorical_crossentropy")
    tags = np.where(TOKEN_IDS > 0, TOKEN_IDS % NUM_TAGS, 0)
    token_ids, char_ids = with_extra_padding(TOKEN_IDS, CHAR_IDS, words=2, chars=0)
    padded_tags = np.pad(tags, [(0, 0), (0, 2)], constant_values=NUM_TAGS - 1)  # wrong tags on padding
    padded_tags[token_ids == 0] = NUM_TAGS - 1

    loss = model.evaluate({"token_ids": TOKEN_IDS, "char_ids": CHAR_IDS}, tags, verbose=0)
    padded_loss = model.evaluate({"token_ids": token_ids, "char_ids": char_ids}, padded_tags, verbose=0)

    probabilities = predict(model)
    real = TOKEN_IDS > 0
    expected = -np.log(np.take_along_axis(probabilities, tags[..., None], -1)[..., 0][real]).mean()
    assert loss == pytest.approx(expected, rel=1e-4)
    assert padded_loss == pytest.approx(loss, rel=1e-5)


def test_word_dropout_only_acts_in_training():
    model = build("gru", "cnn", word_dropout=0.5)

    np.testing.assert_array_equal(predict(model), predict(model))


def test_model_takes_token_and_char_ids_and_is_named():
    model = build("lstm", "cnn", layers=2, dropout=0.2)
    encoder = model.get_layer("encoder")

    assert model.name == "sequence_tagger"
    assert sorted(tensor.name for tensor in model.inputs) == ["char_ids", "token_ids"]
    assert (encoder.cell, encoder.units, encoder.num_layers, encoder.bidirectional, encoder.dropout) == \
        ("lstm", 6, 2, True, 0.2)
    assert model.get_layer("token_embedding").input_dim == VOCABULARY_SIZE
    assert model.get_layer("char_encoder").mode == "cnn"
    assert "char_encoder" not in [layer.name for layer in build(char_encoder="none").layers]


@pytest.mark.parametrize("cell, char_encoder, bidirectional, num_layers", [
    ("lstm", "bilstm", True, 2),
    ("simple_rnn", "cnn", False, 1),
    ("gru", "none", True, 1),
], ids=str)
def test_keras_save_load_round_trip(tmp_path, cell, char_encoder, bidirectional, num_layers):
    model = build(cell, char_encoder, bidirectional, layers=num_layers, word_dropout=0.1)
    expected = predict(model)
    path = str(tmp_path / "tagger.keras")

    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects=models.CUSTOM_OBJECTS, compile=False)

    np.testing.assert_allclose(predict(loaded), expected, rtol=1e-6, atol=1e-7)
    padded = predict(loaded, *with_extra_padding(TOKEN_IDS, CHAR_IDS, words=2, chars=1))
    assert_equal_on_real_words(padded, expected)
    assert [weight.shape for weight in loaded.weights] == [weight.shape for weight in model.weights]
