"""Masked pooling over time: many-to-one heads for sequence encoders."""

import keras
from keras import ops


class MaskedPooling(keras.layers.Layer):
    """Mean or max over the unmasked time steps of (batch, time, features), or both concatenated.

    A row whose steps are all masked (an empty text) pools to zeros.

    Args:
        mode: `mean`, `max`, or `mean_max` ([mean, max] concatenated: (batch, 2 * features), the
            "concat pooling" of ULMFiT).
    """

    MODES = ("mean", "max", "mean_max")

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode: {mode!r} is not one of {list(self.MODES)}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)  # (batch, time, 1)
        if self.mode == "mean":
            return self._mean(inputs, weights)
        if self.mode == "max":
            return self._max(inputs, weights)
        return ops.concatenate([self._mean(inputs, weights), self._max(inputs, weights)], axis=-1)

    @staticmethod
    def _mean(inputs, weights):
        total = ops.sum(inputs * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)

    @staticmethod
    def _max(inputs, weights):
        lowest = ops.min(inputs) - 1.0
        pooled = ops.max(ops.where(weights > 0, inputs, lowest), axis=1)
        has_steps = ops.sum(weights, axis=1) > 0  # (batch, 1)
        return ops.where(has_steps, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        features = input_shape[-1]
        if self.mode == "mean_max" and features is not None:
            features *= 2
        return (input_shape[0], features)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode})
        return config


class AttentionPooling(keras.layers.Layer):
    """Weighted sum over time with learned weights: score_t = v . tanh(W h_t), softmax over unmasked steps.

    Args:
        units: Size of the hidden scoring layer.
        return_attention: Also return the weights (batch, time), for inspection.
    """

    def __init__(self, units=64, return_attention=False, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.return_attention = return_attention
        self.supports_masking = True
        # === Layers ===
        self.hidden = keras.layers.Dense(units, activation="tanh", name="attention_hidden")
        self.score = keras.layers.Dense(1, use_bias=False, name="attention_score")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.score.build(tuple(input_shape[:-1]) + (self.units,))
        self.built = True

    def call(self, inputs, mask=None):
        # float32 scores: -1e9 would overflow to -inf in float16 and make all-masked rows NaN.
        scores = ops.cast(ops.squeeze(self.score(self.hidden(inputs)), -1), "float32")  # (batch, time)
        if mask is not None:
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)  # (batch, time)
        if mask is not None:
            weights = weights * ops.cast(mask, weights.dtype)  # all-masked rows pool to zeros
        weights = ops.cast(weights, inputs.dtype)
        pooled = ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)  # (batch, features)
        return (pooled, weights) if self.return_attention else pooled

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], input_shape[-1])
        return (pooled, tuple(input_shape[:2])) if self.return_attention else pooled

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "return_attention": self.return_attention})
        return config
