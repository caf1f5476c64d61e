"""The sentiment classifier: shapes, probabilities, padding invariance and the .keras round trip."""

import itertools

import keras
import numpy as np
import pytest

from pipeline import config as config_lib
from pipeline import layers as layers_lib
from pipeline.models import sentiment_classifier

VOCABULARY_SIZE = 30
NUM_CLASSES = 3
CELLS = ("simple_rnn", "lstm", "gru")
POOLINGS = ("last", "mean", "max", "mean_max", "attention")
# Right-padded token ids: a full row, a short row and an empty text (one padding id).
TOKEN_IDS = np.array([[5, 3, 9, 2, 7],
                      [4, 8, 0, 0, 0],
                      [0, 0, 0, 0, 0]], dtype="int32")


def build(cell="gru", bidirectional=False, pooling="last", **model) -> keras.Model:
    model_config = config_lib.SentimentModelConfig(embedding_dim=8, units=6, cell=cell,
                                                   bidirectional=bidirectional, pooling=pooling, **model)
    keras.utils.set_random_seed(0)
    return sentiment_classifier.build_sentiment_classifier(
        model_config, vocabulary_size=VOCABULARY_SIZE, num_classes=NUM_CLASSES)


def predict(model: keras.Model, token_ids: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model({"token_ids": token_ids}, training=False))


def with_extra_padding(token_ids: np.ndarray, steps: int) -> np.ndarray:
    return np.pad(token_ids, [(0, 0), (0, steps)])


@pytest.mark.parametrize("cell, bidirectional, pooling", list(itertools.product(CELLS, (False, True), POOLINGS)),
                         ids=lambda value: str(value))
def test_probabilities_shape_sum_and_padding_invariance(cell, bidirectional, pooling):
    model = build(cell, bidirectional, pooling)

    probabilities = predict(model, TOKEN_IDS)
    padded = predict(model, with_extra_padding(TOKEN_IDS, 4))

    assert probabilities.shape == (3, NUM_CLASSES)
    assert probabilities.dtype == np.float32
    assert np.all(np.isfinite(probabilities))
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(padded, probabilities, rtol=1e-5, atol=1e-6)


def test_rows_do_not_depend_on_the_rest_of_the_batch():
    model = build("lstm", True, "attention")

    together = predict(model, TOKEN_IDS)
    alone = predict(model, TOKEN_IDS[1:2, :2])

    np.testing.assert_allclose(alone[0], together[1], rtol=1e-5, atol=1e-6)


def test_different_texts_get_different_probabilities():
    probabilities = predict(build("gru", False, "mean"), TOKEN_IDS)

    assert not np.allclose(probabilities[0], probabilities[1])


def test_model_takes_a_token_ids_dict_and_is_named():
    model = build()

    assert [tensor.name for tensor in model.inputs] == ["token_ids"]
    assert model.name == "sentiment_classifier"
    assert model.get_layer("encoder").num_layers == 1
    assert model.get_layer("token_embedding").input_dim == VOCABULARY_SIZE


@pytest.mark.parametrize("pooling, pooling_class", [
    ("mean", "MaskedPooling"), ("max", "MaskedPooling"), ("attention", "AttentionPooling")])
def test_pooling_choice_builds_the_pooling_layer(pooling, pooling_class):
    model = build(pooling=pooling)

    assert type(model.get_layer("pooling")).__name__ == pooling_class
    assert model.get_layer("encoder").return_sequences is True


def test_last_pooling_has_no_pooling_layer():
    model = build(pooling="last")

    assert model.get_layer("encoder").return_sequences is False
    assert "pooling" not in [layer.name for layer in model.layers]


def test_config_sizes_reach_the_layers():
    model = build("lstm", True, "attention", layers=2, dropout=0.2)
    encoder = model.get_layer("encoder")

    assert (encoder.cell, encoder.units, encoder.num_layers, encoder.bidirectional, encoder.dropout) == \
        ("lstm", 6, 2, True, 0.2)
    assert model.get_layer("token_embedding").output_dim == 8


@pytest.mark.parametrize("cell, bidirectional, pooling, num_layers", [
    ("lstm", True, "attention", 2),
    ("gru", False, "last", 1),
    ("simple_rnn", True, "max", 1),
    ("gru", True, "mean", 2),
])
def test_keras_save_load_round_trip(tmp_path, cell, bidirectional, pooling, num_layers):
    model = build(cell, bidirectional, pooling, layers=num_layers)
    expected = predict(model, TOKEN_IDS)
    path = str(tmp_path / "m.keras")

    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects=layers_lib.CUSTOM_OBJECTS)

    np.testing.assert_allclose(predict(loaded, TOKEN_IDS), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(predict(loaded, with_extra_padding(TOKEN_IDS, 2)), expected, rtol=1e-5, atol=1e-6)
    assert [weight.shape for weight in loaded.weights] == [weight.shape for weight in model.weights]


@pytest.fixture
def restore_dtype_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_mixed_precision_gives_valid_probabilities_for_every_row(restore_dtype_policy, policy, pooling):
    # runtime.mixed_precision may be mixed_float16; an empty text (all padding) must still get probabilities.
    keras.mixed_precision.set_global_policy(policy)
    model = build("gru", True, pooling)

    probabilities = predict(model, TOKEN_IDS)

    assert probabilities.dtype == np.float32
    assert np.all(np.isfinite(probabilities)), probabilities
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-3)
