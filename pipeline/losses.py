"""Losses and teacher-forced metrics of the sequence tasks (translation, captioning, language modelling).

Padding is token id 0 everywhere in this package, so the masked losses and accuracy average over the
positions whose label is not 0. `sampled_softmax_loss` trains a large output vocabulary at the cost of a
few sampled classes per batch.
"""

import math

import keras
import tensorflow as tf
from keras import ops


class MaskedSequenceLoss(keras.losses.Loss):
    """Cross-entropy over target tokens from logits, averaged over the real (non-padding, id 0) tokens.

    With `label_smoothing` e, the target distribution is (1 - e) on the true token plus e spread evenly
    over the vocabulary.
    """

    def __init__(self, label_smoothing=0.0, name="masked_sequence_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")  # (batch, time)
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)  # (batch, time, vocabulary)
        losses = -ops.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]  # (batch, time)
        if self.label_smoothing:
            losses = (1.0 - self.label_smoothing) * losses - self.label_smoothing * ops.mean(log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(labels, 0), "float32")
        return ops.sum(losses * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing})
        return config


class MaskedTokenAccuracy(keras.metrics.Mean):
    """Share of real (non-padding) target tokens whose most probable prediction is right (teacher-forced)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")  # (batch, time)
        correct = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), labels), "float32")
        mask = ops.cast(ops.not_equal(labels, 0), "float32")
        return super().update_state(correct, sample_weight=mask)


class Perplexity(keras.metrics.Mean):
    """exp(mean cross-entropy per token) of next-token logits: the model's average branching factor."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        losses = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)  # (batch, time)
        return super().update_state(losses, sample_weight=sample_weight)

    def result(self):
        return ops.exp(super().result())


# === Sampled softmax ===


def log_uniform_probabilities(num_classes: int, first_class: int = 1) -> tf.Tensor:
    """The log-uniform (Zipfian) distribution over classes `first_class` .. `num_classes - 1`.

    Class `first_class + r` has probability log((r + 2) / (r + 1)) / log(R + 1), R = num_classes - first_class:
    falling with the rank as word frequencies do, so it suits a vocabulary sorted by frequency.

    Returns:
        float32 [R], the probabilities of the classes from `first_class` on.
    """
    ranks = tf.range(num_classes - first_class, dtype=tf.float64)
    probabilities = tf.math.log1p(1.0 / (ranks + 1.0)) / math.log(num_classes - first_class + 1)
    return tf.cast(probabilities, tf.float32)


def sample_log_uniform(num_sampled: int, num_classes: int, seed, first_class: int = 1) -> tuple[tf.Tensor, tf.Tensor]:
    """`num_sampled` distinct classes drawn from `log_uniform_probabilities`, and the expected draws it took.

    Classes are drawn one after another without replacement (Gumbel top-k: the same distribution as drawing
    with replacement and keeping new classes until `num_sampled` are found, as TensorFlow's unique
    log-uniform sampler does). The draws are stateless, fixed by `seed` (a `keras.random.SeedGenerator`
    advances it), so a rerun or a resumed run draws the same classes.

    Returns:
        (classes int64 [num_sampled], the expected number of draws with replacement to find them: float32 []).
    """
    probabilities = log_uniform_probabilities(num_classes, first_class)  # (classes,)
    uniform = keras.random.uniform(ops.shape(probabilities), minval=1e-20, maxval=1.0, seed=seed)
    gumbel = -tf.math.log(-tf.math.log(tf.cast(uniform, tf.float32)))
    _, ranks = tf.math.top_k(tf.math.log(probabilities) + gumbel, k=num_sampled)  # in drawing order
    drawn = tf.gather(probabilities, ranks)  # (num_sampled,)
    found_before = tf.math.cumsum(drawn, exclusive=True)
    expected_draws = tf.reduce_sum(1.0 / tf.maximum(1.0 - found_before, 1e-12))
    return tf.cast(ranks + first_class, tf.int64), expected_draws


def expected_count(classes: tf.Tensor, expected_draws: tf.Tensor, num_classes: int, first_class: int = 1) -> tf.Tensor:
    """How often each class is expected among `expected_draws` log-uniform draws: 1 - (1 - p) ** draws."""
    probabilities = log_uniform_probabilities(num_classes, first_class)
    p = tf.gather(probabilities, tf.cast(classes, tf.int32) - first_class)
    return -tf.math.expm1(expected_draws * tf.math.log1p(-p))


def sampled_softmax_loss(hidden: tf.Tensor, labels: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, *,
                         num_sampled: int, seed) -> tf.Tensor:
    """Mean sampled-softmax cross-entropy over the real (non-padding) labels, without the full logits.

    The logits of a dense output layer (`hidden @ kernel + bias`) are computed only for each position's true
    class and for `num_sampled` classes drawn per call from the log-uniform distribution over the non-padding
    classes (`sample_log_uniform`), corrected by their expected counts (`tf.nn.sampled_softmax_loss`, with
    accidental hits of the true class removed). An estimate of the full softmax's loss for training: score
    with the full softmax.

    Args:
        hidden: float [batch, time, units], the output layer's inputs (any float dtype).
        labels: int [batch, time]; 0 is padding and does not count.
        kernel: float32 [units, classes], the output layer's kernel.
        bias: float32 [classes].
        num_sampled: Classes sampled per call, fewer than the non-padding classes.
        seed: A `keras.random.SeedGenerator` (or a seed) for the draws.

    Returns:
        float32 [], summed loss divided by the number of real labels (0 when there are none).
    """
    num_classes = kernel.shape[-1]
    inputs = tf.reshape(tf.cast(hidden, kernel.dtype), [-1, kernel.shape[0]])  # (positions, units)
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1, 1])  # (positions, 1)
    real = tf.cast(labels[:, 0] > 0, kernel.dtype)  # (positions,)
    labels = tf.maximum(labels, 1)  # padding scored as any class, then left out
    classes, expected_draws = sample_log_uniform(num_sampled, num_classes, seed)
    losses = tf.nn.sampled_softmax_loss(
        weights=tf.transpose(kernel), biases=bias, labels=labels, inputs=inputs, num_sampled=num_sampled,
        num_classes=num_classes, remove_accidental_hits=True,
        sampled_values=(classes, expected_count(labels, expected_draws, num_classes),
                        expected_count(classes, expected_draws, num_classes)))  # (positions,)
    return tf.reduce_sum(losses * real) / tf.maximum(tf.reduce_sum(real), 1.0)
