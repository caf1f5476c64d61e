"""Recurrent language model: carried state (truncated BPTT), gradients stopping at chunk boundaries,
per-epoch resets inside `fit`, encode/decode_step agreeing with the full pass, and the Keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import models
from pipeline.data import language_model as text_stream
from pipeline.models import recurrent_language_model
from pipeline.tasks import language_model as language_model_task

VOCABULARY = 20


def _model(cell="gru", stateful=True, num_layers=2, seed=0) -> recurrent_language_model.RecurrentLanguageModel:
    keras.utils.set_random_seed(seed)
    model = recurrent_language_model.RecurrentLanguageModel(VOCABULARY, embedding_dim=8, cell=cell, units=12,
                                                            num_layers=num_layers, stateful=stateful)
    model.build()
    return model


def _tokens(batch=3, time=16, seed=1, low=3, high=VOCABULARY) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, size=(batch, time)).astype(np.int32)


def _loss(labels, logits):
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


# === Carried state ===


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_a_continued_chunk_sees_the_previous_chunk(cell):
    model = _model(cell)
    tokens = _tokens()
    full_logits = model.run(tokens)[0].numpy()  # one pass over both chunks

    model.reset_state()
    model({"token_ids": tokens[:, :8]})
    continued = model({"token_ids": tokens[:, 8:]}).numpy()  # state carried from the first chunk
    model.reset_state()
    from_zero = model({"token_ids": tokens[:, 8:]}).numpy()

    np.testing.assert_allclose(continued, full_logits[:, 8:], rtol=1e-5, atol=1e-5)
    labels = np.roll(tokens, -1, axis=1)[:, 8:]
    continued_loss, zero_state_loss = float(_loss(labels, continued)), float(_loss(labels, from_zero))
    assert abs(continued_loss - zero_state_loss) > 1e-5 * zero_state_loss  # far above float rounding (~1e-7)
    assert np.max(np.abs(continued - from_zero)) > 0.1 * np.max(np.abs(from_zero))
    np.testing.assert_allclose(from_zero, model.run(tokens[:, 8:])[0].numpy(), rtol=1e-5, atol=1e-5)


def test_a_batch_of_another_size_starts_from_zeros():
    model = _model()
    tokens = _tokens(batch=3)
    model({"token_ids": tokens[:, :8]})

    two_rows = model({"token_ids": tokens[:2, 8:]}).numpy()

    np.testing.assert_allclose(two_rows, model.run(tokens[:2, 8:])[0].numpy(), rtol=1e-5, atol=1e-5)


def test_a_model_that_is_not_stateful_forgets_between_calls():
    model = _model(stateful=False)
    tokens = _tokens()
    model({"token_ids": tokens[:, :8]})

    np.testing.assert_allclose(model({"token_ids": tokens[:, 8:]}).numpy(), model.run(tokens[:, 8:])[0].numpy(),
                               rtol=1e-6)


# === Gradients stop at the chunk boundary ===


def _gradients(model, loss_function):
    with tf.GradientTape() as tape:
        loss = loss_function()
    return [tf.convert_to_tensor(gradient) for gradient in tape.gradient(loss, model.trainable_variables)]


def test_gradients_do_not_cross_the_chunk_boundary():
    model = _model(cell="lstm")
    first = _tokens(seed=2, low=3, high=10)  # tokens 3..9 only in the first chunk
    second = _tokens(seed=3, low=10, high=VOCABULARY)  # tokens 10..19 only in the second
    labels = np.roll(second, -1, axis=1)
    model({"token_ids": first})  # carries its final state
    carried = [[tf.constant(tensor) for tensor in layer] for layer in model.run(first)[1]]
    embedding_index = next(index for index, variable in enumerate(model.trainable_variables)
                           if variable.path == model.embedding.embeddings.path)

    truncated = _gradients(model, lambda: _loss(labels, model({"token_ids": second})))
    constant_start = _gradients(model, lambda: _loss(labels, model.run(second, carried)[0]))
    full = _gradients(model, lambda: _loss(labels, model.run(np.concatenate([first, second], axis=1))[0][:, 16:]))

    for gradient, expected in zip(truncated, constant_start):
        np.testing.assert_allclose(gradient.numpy(), expected.numpy(), rtol=1e-4, atol=1e-7)
    first_chunk_rows = truncated[embedding_index][3:10]
    assert float(tf.reduce_max(tf.abs(first_chunk_rows))) == 0.0  # no gradient reaches the first chunk's inputs
    assert float(tf.reduce_max(tf.abs(full[embedding_index][3:10]))) > 1e-6
    recurrent_kernel = next(index for index, variable in enumerate(model.trainable_variables)
                            if "recurrent_kernel" in variable.path)
    assert not np.allclose(truncated[recurrent_kernel].numpy(), full[recurrent_kernel].numpy(), atol=1e-7)


# === Inside Keras fit ===


def test_fit_carries_state_across_batches_and_resets_it_every_epoch():
    model = _model(cell="gru", num_layers=1)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    token_ids = np.arange(3 * 31, dtype=np.int32) % (VOCABULARY - 3) + 3
    dataset = text_stream.stream_batches(token_ids, batch_size=3, steps=10)  # 3 batches of 10 steps per row

    model.fit(dataset, epochs=2, verbose=0, shuffle=False, callbacks=[language_model_task.ResetCarriedState()])

    rows = token_ids.reshape(3, 31)[:, :30]
    expected = model.run(rows)[1][0][0].numpy()  # one pass over each row from zeros: no break, no second epoch
    np.testing.assert_allclose(model._carried.values[0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_reset_callback_runs_at_epoch_and_validation_start():
    model = _model()
    callback = language_model_task.ResetCarriedState()
    callback.set_model(model)
    tokens = _tokens()
    for hook in (lambda: callback.on_epoch_begin(0), lambda: callback.on_test_begin()):
        model({"token_ids": tokens[:, :8]})
        hook()
        np.testing.assert_allclose(model({"token_ids": tokens[:, 8:]}).numpy(), model.run(tokens[:, 8:])[0].numpy(),
                                   rtol=1e-5, atol=1e-6)


# === Generation path and saving ===


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_encode_with_right_padding_and_decode_step_match_the_full_pass(cell):
    model = _model(cell, stateful=False)
    tokens = _tokens(batch=2, time=9)
    lengths = np.array([9, 4])
    padded = np.where(np.arange(9) < lengths[:, None], tokens, 0)
    full_logits = model.run(tokens)[0].numpy()

    state = model.encode(padded[:, :-1], mask=np.arange(8) < (lengths[:, None] - 1))
    last_tokens = tokens[np.arange(2), lengths - 1]
    logits, state = model.decode_step(last_tokens, state)

    np.testing.assert_allclose(logits.numpy()[0], full_logits[0, 8], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits.numpy()[1], full_logits[1, 3], rtol=1e-4, atol=1e-5)
    assert len(state) == 2 and all(len(layer) == (2 if cell == "lstm" else 1) for layer in state)


def test_keras_round_trip_keeps_weights_and_statefulness_but_not_the_carried_state(tmp_path):
    model = _model(cell="lstm")
    tokens = _tokens()
    model({"token_ids": tokens})
    path = str(tmp_path / "model.keras")
    model.save(path)

    loaded = keras.saving.load_model(path, custom_objects=models.CUSTOM_OBJECTS, compile=False)

    assert loaded.stateful and loaded.get_config() == model.get_config()
    assert len(loaded.weights) == len(model.weights) == 9  # the carried state is not a weight
    model.reset_state()
    np.testing.assert_allclose(loaded({"token_ids": tokens}).numpy(), model({"token_ids": tokens}).numpy(), rtol=1e-6)
