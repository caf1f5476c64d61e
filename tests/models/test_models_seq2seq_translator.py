"""The translator: logits for every cell and attention, padding invariance, encode/decode_step against the
teacher-forced pass, attention weights and the .keras round trip."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import models
from pipeline.models import seq2seq_translator

SOURCE_VOCABULARY = 20
TARGET_VOCABULARY = 15
CELLS = ("simple_rnn", "lstm", "gru")
ATTENTIONS = ("bahdanau", "luong", "none")
# Right-padded source and target ids (target: start token 2 first); the third source is one word long.
ENCODER_IDS = np.array([[5, 6, 7, 8, 9],
                        [4, 3, 0, 0, 0],
                        [9, 0, 0, 0, 0]], dtype="int32")
DECODER_IDS = np.array([[2, 5, 6, 7, 9],
                        [2, 8, 9, 0, 0],
                        [2, 4, 0, 0, 0]], dtype="int32")
TARGET_LENGTHS = np.count_nonzero(DECODER_IDS, axis=1)


def build(cell="gru", attention="bahdanau", bidirectional=False, **model) -> seq2seq_translator.Seq2SeqTranslator:
    model_config = config_lib.Seq2SeqModelConfig(embedding_dim=8, units=6, cell=cell, attention=attention,
                                                 bidirectional=bidirectional, **model)
    keras.utils.set_random_seed(0)
    return seq2seq_translator.build_seq2seq_translator(
        model_config, source_vocabulary_size=SOURCE_VOCABULARY, target_vocabulary_size=TARGET_VOCABULARY)


def predict(model, encoder_token_ids=ENCODER_IDS, decoder_token_ids=DECODER_IDS) -> np.ndarray:
    inputs = {"encoder_token_ids": encoder_token_ids, "decoder_token_ids": decoder_token_ids}
    return keras.ops.convert_to_numpy(model(inputs, training=False))


def with_extra_padding(token_ids: np.ndarray, steps: int) -> np.ndarray:
    return np.pad(token_ids, [(0, 0), (0, steps)])


def assert_equal_on_real_positions(actual: np.ndarray, expected: np.ndarray):
    for row, length in enumerate(TARGET_LENGTHS):
        np.testing.assert_allclose(actual[row, :length], expected[row, :length], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell, attention", list(itertools.product(CELLS, ATTENTIONS)), ids=str)
def test_logits_shape_dtype_and_padding_invariance(cell, attention):
    model = build(cell, attention, bidirectional=cell == "gru")

    logits = predict(model)
    longer_source = predict(model, encoder_token_ids=with_extra_padding(ENCODER_IDS, 3))
    longer_target = predict(model, decoder_token_ids=with_extra_padding(DECODER_IDS, 2))

    assert logits.shape == (3, 5, TARGET_VOCABULARY)
    assert logits.dtype == np.float32 and np.all(np.isfinite(logits))
    np.testing.assert_allclose(longer_source, logits, rtol=1e-5, atol=1e-6)
    assert longer_target.shape == (3, 7, TARGET_VOCABULARY)
    assert_equal_on_real_positions(longer_target, logits)


def test_rows_do_not_depend_on_the_rest_of_the_batch():
    model = build("lstm", "luong", bidirectional=True, layers=2)

    together = predict(model)
    alone = predict(model, ENCODER_IDS[1:2, :2], DECODER_IDS[1:2, :3])

    np.testing.assert_allclose(alone[0], together[1, :3], rtol=1e-5, atol=1e-6)


def test_different_sources_get_different_logits():
    model = build("gru", "bahdanau")
    same_target = np.repeat(DECODER_IDS[:1], 2, axis=0)

    logits = predict(model, ENCODER_IDS[:2], same_target)

    assert not np.allclose(logits[0], logits[1])


@pytest.mark.parametrize("cell, attention, bidirectional, num_layers", [
    ("simple_rnn", "none", False, 1),
    ("lstm", "luong", False, 2),
    ("gru", "bahdanau", True, 1),
    ("lstm", "bahdanau", True, 2),
    ("simple_rnn", "luong", True, 1),
], ids=str)
def test_decode_step_from_encode_matches_the_teacher_forced_pass(cell, attention, bidirectional, num_layers):
    model = build(cell, attention, bidirectional=bidirectional, layers=num_layers)
    logits = predict(model)

    state = model.encode(ENCODER_IDS)
    steps = []
    for position in range(DECODER_IDS.shape[1]):
        step_logits, state = model.decode_step(tf.constant(DECODER_IDS[:, position]), state)
        steps.append(keras.ops.convert_to_numpy(step_logits))

    assert steps[0].shape == (3, TARGET_VOCABULARY) and steps[0].dtype == np.float32
    assert_equal_on_real_positions(np.stack(steps, axis=1), logits)


@pytest.mark.parametrize("cell, attention, bidirectional, num_layers", [
    ("lstm", "bahdanau", True, 2),
    ("gru", "none", False, 1),
], ids=str)
def test_encode_returns_a_state_that_decode_step_returns_in_the_same_structure(cell, attention, bidirectional,
                                                                               num_layers):
    model = build(cell, attention, bidirectional=bidirectional, layers=num_layers)

    state = model.encode(ENCODER_IDS)
    _, next_state = model.decode_step(tf.constant(DECODER_IDS[:, 0]), state)

    encoder_features = 6 * (2 if bidirectional else 1)
    assert tuple(state["encoder_outputs"].shape) == (3, 5, encoder_features)
    assert keras.ops.convert_to_numpy(state["encoder_mask"]).tolist() == (ENCODER_IDS != 0).tolist()
    assert ("attention_keys" in state) == (attention != "none")
    assert len(state["decoder_states"]) == num_layers
    assert all(len(layer) == (2 if cell == "lstm" else 1) for layer in state["decoder_states"])
    assert all(tuple(tensor.shape) == (3, 6) for layer in state["decoder_states"] for tensor in layer)
    tf.nest.assert_same_structure(state, next_state)


def test_attention_weights_cover_only_real_source_words():
    model = build("gru", "bahdanau")

    weights = keras.ops.convert_to_numpy(model.attention_weights(ENCODER_IDS, DECODER_IDS))

    assert weights.shape == (3, 5, 5)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(weights[ENCODER_IDS[:, None, :].repeat(5, axis=1) == 0] == 0)
    with pytest.raises(ValueError, match="attention: none"):
        build("gru", "none").attention_weights(ENCODER_IDS, DECODER_IDS)


def test_bridge_only_when_the_encoder_output_size_differs_from_the_decoder():
    assert build(bidirectional=True).bridge is not None
    assert build(bidirectional=False).bridge is None


def test_config_sizes_reach_the_layers():
    model = build("lstm", "luong", bidirectional=True, layers=2, dropout=0.2)

    assert model.name == "seq2seq_translator"
    assert (model.encoder.cell, model.encoder.units, model.encoder.num_layers, model.encoder.bidirectional) == \
        ("lstm", 6, 2, True)
    assert [layer.name for layer in model.decoder_layers] == ["decoder_lstm_0", "decoder_lstm_1"]
    assert model.source_embedding.input_dim == SOURCE_VOCABULARY
    assert model.target_embedding.output_dim == 8
    assert model.output_projection.units == TARGET_VOCABULARY


@pytest.mark.parametrize("cell, attention, bidirectional, num_layers", [
    ("lstm", "bahdanau", True, 2),
    ("simple_rnn", "luong", False, 1),
    ("gru", "none", True, 1),
], ids=str)
def test_keras_save_load_round_trip(tmp_path, cell, attention, bidirectional, num_layers):
    model = build(cell, attention, bidirectional=bidirectional, layers=num_layers)
    expected = predict(model)
    path = str(tmp_path / "translator.keras")

    model.save(path)
    loaded = keras.saving.load_model(path, custom_objects=models.CUSTOM_OBJECTS, compile=False)

    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(predict(loaded), expected, rtol=1e-6, atol=1e-7)
    step_logits, _ = loaded.decode_step(tf.constant(DECODER_IDS[:, 0]), loaded.encode(ENCODER_IDS))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(step_logits), expected[:, 0], rtol=1e-4, atol=1e-5)
