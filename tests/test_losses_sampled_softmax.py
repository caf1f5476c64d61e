"""Sampled softmax: log-uniform draws (distinct, seeded, with the right inclusion rates), padding left out, and a
language model that learns with it while its full softmax is what evaluation reads."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import losses
from pipeline.models import recurrent_language_model


def test_draws_are_distinct_classes_other_than_padding_and_fixed_by_the_seed():
    first = losses.sample_log_uniform(40, 100, keras.random.SeedGenerator(7))[0].numpy()
    again = losses.sample_log_uniform(40, 100, keras.random.SeedGenerator(7))[0].numpy()
    generator = keras.random.SeedGenerator(7)
    losses.sample_log_uniform(40, 100, generator)
    next_draw = losses.sample_log_uniform(40, 100, generator)[0].numpy()

    assert len(set(first.tolist())) == 40 and first.min() >= 1 and first.max() <= 99
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, next_draw)  # the generator advances: every step draws anew


def test_probabilities_fall_with_the_rank_and_inclusion_rates_match_the_expected_counts():
    probabilities = losses.log_uniform_probabilities(51).numpy()  # classes 1..50
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6) and np.all(np.diff(probabilities) < 0)

    generator, draws = keras.random.SeedGenerator(1), 2000

    @tf.function
    def draw():
        classes, expected_draws = losses.sample_log_uniform(10, 51, generator)
        return classes, losses.expected_count(tf.range(1, 51), expected_draws, 51)

    included, expected = np.zeros(51), np.zeros(51)
    for _ in range(draws):
        classes, counts = draw()
        included[classes.numpy()] += 1
        expected[1:] += counts.numpy()

    rates, predicted = included[1:] / draws, expected[1:] / draws
    assert rates.sum() == pytest.approx(10.0)
    np.testing.assert_allclose(rates, predicted, atol=0.04)  # the correction the loss subtracts fits the draws


def test_padding_positions_do_not_count():
    rng = np.random.default_rng(0)
    hidden = tf.constant(rng.normal(size=(2, 5, 6)), tf.float32)
    labels = np.array([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]], np.int32)
    kernel, bias = tf.constant(rng.normal(size=(6, 30)), tf.float32), tf.constant(rng.normal(size=30), tf.float32)

    padded = losses.sampled_softmax_loss(hidden, labels, kernel, bias, num_sampled=8,
                                         seed=keras.random.SeedGenerator(3))
    real = labels > 0
    alone = losses.sampled_softmax_loss(tf.boolean_mask(hidden, real)[None], labels[real][None], kernel, bias,
                                        num_sampled=8, seed=keras.random.SeedGenerator(3))

    assert np.isfinite(float(padded)) and float(padded) == pytest.approx(float(alone), rel=1e-6)
    nothing = losses.sampled_softmax_loss(hidden, np.zeros_like(labels), kernel, bias, num_sampled=8,
                                          seed=keras.random.SeedGenerator(3))
    assert float(nothing) == 0.0


def _stream(vocabulary: int, length: int, seed: int = 0) -> np.ndarray:
    """A stream where each token mostly decides the next: learnable far below the uniform perplexity."""
    rng = np.random.default_rng(seed)
    successor = rng.integers(1, vocabulary, size=vocabulary)
    tokens = [1]
    for _ in range(length - 1):
        tokens.append(int(successor[tokens[-1]]) if rng.random() < 0.9 else int(rng.integers(1, vocabulary)))
    return np.asarray(tokens, np.int32)


def test_a_model_trained_on_a_sampled_softmax_learns_and_is_scored_with_the_full_softmax():
    vocabulary = 200
    tokens = _stream(vocabulary, 16 * 41 * 6).reshape(-1, 41)
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    keras.utils.set_random_seed(0)
    model = recurrent_language_model.RecurrentLanguageModel(vocabulary, embedding_dim=16, units=32, cell="gru",
                                                            sampled_softmax=20)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=[losses.Perplexity()])

    history = model.fit({"token_ids": inputs}, labels, batch_size=16, epochs=4, verbose=0).history
    evaluated = model.evaluate({"token_ids": inputs}, labels, batch_size=16, verbose=0, return_dict=True)

    assert set(history) == {"loss"} and history["loss"][-1] < 0.5 * history["loss"][0]
    logits = model.run(inputs)[0].numpy().astype(np.float64)  # (rows, time, vocabulary)
    log_probabilities = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    full = -np.take_along_axis(log_probabilities, labels[..., None], axis=-1).mean()
    assert evaluated["loss"] == pytest.approx(full, rel=1e-4)  # evaluation reads the full softmax
    assert evaluated["perplexity"] == pytest.approx(np.exp(full), rel=1e-3) and evaluated["perplexity"] < 20


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_a_sampled_softmax_trains_in_mixed_precision(policy):
    tokens = _stream(100, 8 * 21 * 4).reshape(-1, 21)
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = recurrent_language_model.RecurrentLanguageModel(100, embedding_dim=8, units=16, cell="gru",
                                                                stateful=True, sampled_softmax=10)
        model.build()
        model.compile(optimizer=keras.optimizers.Adam(0.02),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit({"token_ids": tokens[:, :-1]}, tokens[:, 1:], batch_size=8, epochs=3, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")

    assert model.compute_dtype != "float32" and all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    assert model({"token_ids": tokens[:2, :-1]}).dtype == "float32"  # the full-softmax logits stay float32
