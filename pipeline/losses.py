"""Losses and teacher-forced metrics of the sequence tasks (translation, captioning, language modelling).

Padding is token id 0 everywhere in this package, so the masked loss and accuracy average over the
positions whose label is not 0.
"""

import keras
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
