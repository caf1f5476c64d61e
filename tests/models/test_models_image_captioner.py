"""The image captioner: logits for every decoder and cell, caption padding invariance, encode/decode_step
against the teacher-forced pass, the precomputed-features path and the .keras round trip."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import models
from pipeline.models import image_captioner

VOCABULARY_SIZE = 15
IMAGE_SIZE = 32
CELLS = ("simple_rnn", "lstm", "gru")
DECODERS = ("show_and_tell", "show_attend_and_tell")
IMAGES = np.random.default_rng(0).integers(0, 256, (3, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("uint8")
# Right-padded captions, start token 2 first.
DECODER_IDS = np.array([[2, 5, 6, 7, 9],
                        [2, 8, 9, 0, 0],
                        [2, 4, 0, 0, 0]], dtype="int32")
CAPTION_LENGTHS = np.count_nonzero(DECODER_IDS, axis=1)


def build(cell="gru", decoder="show_attend_and_tell", attention="bahdanau", **model) -> image_captioner.ImageCaptioner:
    encoder = config_lib.ImageEncoderConfig(name="small_cnn", image_size=IMAGE_SIZE, filters=(8, 16))
    model_config = config_lib.CaptionerModelConfig(embedding_dim=5, units=6, cell=cell, decoder=decoder,
                                                   attention=attention, encoder=encoder, **model)
    keras.utils.set_random_seed(0)
    return image_captioner.build_image_captioner(model_config, vocabulary_size=VOCABULARY_SIZE)


def predict(model, images=IMAGES, decoder_token_ids=DECODER_IDS) -> np.ndarray:
    return keras.ops.convert_to_numpy(model({"images": images, "decoder_token_ids": decoder_token_ids},
                                            training=False))


def assert_equal_on_real_positions(actual: np.ndarray, expected: np.ndarray):
    for row, length in enumerate(CAPTION_LENGTHS):
        np.testing.assert_allclose(actual[row, :length], expected[row, :length], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell, decoder", list(itertools.product(CELLS, DECODERS)), ids=str)
def test_logits_shape_dtype_and_caption_padding_invariance(cell, decoder):
    model = build(cell, decoder)

    logits = predict(model)
    longer = predict(model, decoder_token_ids=np.pad(DECODER_IDS, [(0, 0), (0, 2)]))

    assert logits.shape == (3, 5, VOCABULARY_SIZE)
    assert logits.dtype == np.float32 and np.all(np.isfinite(logits))
    assert longer.shape == (3, 7, VOCABULARY_SIZE)
    assert_equal_on_real_positions(longer, logits)


@pytest.mark.parametrize("decoder", DECODERS)
def test_rows_do_not_depend_on_the_rest_of_the_batch(decoder):
    model = build("lstm", decoder, layers=2)

    together = predict(model)
    alone = predict(model, IMAGES[1:2], DECODER_IDS[1:2, :3])

    np.testing.assert_allclose(alone[0], together[1, :3], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("decoder", DECODERS)
def test_different_images_get_different_logits(decoder):
    same_caption = np.repeat(DECODER_IDS[:1], 2, axis=0)

    logits = predict(build("gru", decoder), IMAGES[:2], same_caption)

    assert not np.allclose(logits[0], logits[1])


@pytest.mark.parametrize("cell, decoder, attention, num_layers", [
    ("simple_rnn", "show_and_tell", "bahdanau", 1),
    ("lstm", "show_and_tell", "bahdanau", 2),
    ("gru", "show_attend_and_tell", "bahdanau", 1),
    ("lstm", "show_attend_and_tell", "luong", 2),
    ("simple_rnn", "show_attend_and_tell", "luong", 1),
], ids=str)
def test_decode_step_from_encode_matches_the_teacher_forced_pass(cell, decoder, attention, num_layers):
    model = build(cell, decoder, attention, layers=num_layers)
    logits = predict(model)

    state = model.encode(IMAGES)
    steps = []
    for position in range(DECODER_IDS.shape[1]):
        step_logits, state = model.decode_step(tf.constant(DECODER_IDS[:, position]), state)
        steps.append(keras.ops.convert_to_numpy(step_logits))

    assert steps[0].shape == (3, VOCABULARY_SIZE) and steps[0].dtype == np.float32
    assert_equal_on_real_positions(np.stack(steps, axis=1), logits)


@pytest.mark.parametrize("cell, decoder", [("lstm", "show_attend_and_tell"), ("gru", "show_and_tell")], ids=str)
def test_encode_returns_a_state_that_decode_step_returns_in_the_same_structure(cell, decoder):
    model = build(cell, decoder, layers=2)

    state = model.encode(IMAGES)
    _, next_state, weights = model.decode_step_with_attention(tf.constant(DECODER_IDS[:, 0]), state)

    locations = model.image_encoder.locations
    assert len(state["decoder_states"]) == 2
    assert all(len(layer) == (2 if cell == "lstm" else 1) for layer in state["decoder_states"])
    assert all(tuple(tensor.shape) == (3, 6) for layer in state["decoder_states"] for tensor in layer)
    tf.nest.assert_same_structure(state, next_state)
    if decoder == "show_attend_and_tell":
        assert tuple(state["features"].shape) == (3, locations, 6)
        weights = keras.ops.convert_to_numpy(weights)
        assert weights.shape == (3, locations)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    else:
        assert "features" not in state and weights is None


@pytest.mark.parametrize("decoder", DECODERS)
def test_precomputed_image_features_give_the_same_logits(decoder):
    model = build("gru", decoder)
    features = model.image_features(IMAGES)

    from_features = model({"image_features": features, "decoder_token_ids": DECODER_IDS}, training=False)

    assert tuple(features.shape) == (3, model.image_encoder.locations, model.image_encoder.channels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(from_features), predict(model), rtol=1e-5, atol=1e-6)


def test_config_sizes_reach_the_layers():
    model = build("lstm", "show_attend_and_tell", "luong", layers=2, dropout=0.2)

    assert model.name == "image_captioner"
    assert (model.image_size, model.encoder_filters) == (IMAGE_SIZE, (8, 16))
    assert [cell.name for cell in model.decoder_cells] == ["decoder_lstm_cell_0", "decoder_lstm_cell_1"]
    assert type(model.attention_layer).__name__ == "LuongAttention"
    assert model.token_embedding.output_dim == 5 and model.output_projection.units == VOCABULARY_SIZE
    assert [layer.name for layer in build("gru", "show_and_tell").decoder_layers] == ["decoder_gru_0"]


@pytest.mark.parametrize("cell, decoder, attention", [
    ("lstm", "show_attend_and_tell", "bahdanau"),
    ("gru", "show_and_tell", "bahdanau"),
], ids=str)
def test_keras_save_load_round_trip(tmp_path, cell, decoder, attention):
    model = build(cell, decoder, attention, layers=2)
    expected = predict(model)
    path = str(tmp_path / "captioner.keras")

    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects=models.CUSTOM_OBJECTS, compile=False)

    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(predict(loaded), expected, rtol=1e-6, atol=1e-7)
    step_logits, _ = loaded.decode_step(tf.constant(DECODER_IDS[:, 0]), loaded.encode(IMAGES))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(step_logits), expected[:, 0], rtol=1e-4, atol=1e-5)
