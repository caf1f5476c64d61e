"""Attention of decoder steps over encoder outputs: additive (Bahdanau) and multiplicative (Luong, "general").

Both layers take `query` (batch, query_time, query_features) and `value` (batch, value_time,
value_features) and return the context (batch, query_time, value_features) and the attention weights
(batch, query_time, value_time). The keys, a projection of `value`, can be computed once per source
sentence with `project_keys` and passed back in at every decoding step.
"""

import keras
from keras import ops

# float32 scores: -1e9 would overflow to -inf in float16 and make all-masked rows NaN.
_MASKED_SCORE = -1e9


class _ScoredAttention(keras.layers.Layer):
    """Softmax over masked scores and the weighted sum of values; subclasses define keys and scores.

    Masking: `value_mask` (batch, value_time) marks real source steps. Masked steps get exactly zero
    weight; the weights of every row with at least one real step sum to 1; a row with no real step gets
    all-zero weights and a zero context.
    """

    def __init__(self, units=64, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def project_keys(self, value):
        """Projects encoder outputs (batch, value_time, features) to keys (batch, value_time, units)."""
        return self.key_projection(value)

    def call(self, query, value, keys=None, value_mask=None):
        keys = self.project_keys(value) if keys is None else keys  # (batch, value_time, units)
        scores = ops.cast(self.score(query, keys), "float32")  # (batch, query_time, value_time)
        if value_mask is not None:
            mask = ops.expand_dims(ops.cast(value_mask, "bool"), 1)  # (batch, 1, value_time)
            scores = ops.where(mask, scores, ops.full_like(scores, _MASKED_SCORE))
        weights = ops.softmax(scores, axis=-1)  # (batch, query_time, value_time)
        if value_mask is not None:
            weights = weights * ops.cast(mask, weights.dtype)  # all-masked rows attend to nothing
        context = ops.matmul(ops.cast(weights, value.dtype), value)  # (batch, query_time, value_features)
        return context, weights

    def compute_output_shape(self, query_shape, value_shape, keys_shape=None, value_mask_shape=None):
        return (tuple(query_shape[:2]) + (value_shape[-1],), tuple(query_shape[:2]) + (value_shape[1],))

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


class BahdanauAttention(_ScoredAttention):
    """Additive attention (Bahdanau et al., 2015): score(q, k) = v . tanh(W_q q + W_k k).

    Args:
        units: Size of the hidden scoring layer.

    Example:
        >>> attention = BahdanauAttention(16)
        >>> context, weights = attention(keras.ops.ones((2, 3, 8)), keras.ops.ones((2, 5, 12)))
        >>> context.shape, weights.shape
        ((2, 3, 12), (2, 3, 5))
    """

    def __init__(self, units=64, **kwargs):
        super().__init__(units, **kwargs)
        # === Layers ===
        self.query_projection = keras.layers.Dense(units, use_bias=False, name="query_projection")
        self.key_projection = keras.layers.Dense(units, name="key_projection")
        self.score_projection = keras.layers.Dense(1, use_bias=False, name="score_projection")

    def build(self, query_shape, value_shape):
        self.query_projection.build(query_shape)
        self.key_projection.build(value_shape)
        self.score_projection.build(tuple(value_shape[:-1]) + (self.units,))
        self.built = True

    def score(self, query, keys):
        queries = ops.expand_dims(self.query_projection(query), 2)  # (batch, query_time, 1, units)
        hidden = ops.tanh(queries + ops.expand_dims(keys, 1))  # (batch, query_time, value_time, units)
        return ops.squeeze(self.score_projection(hidden), -1)  # (batch, query_time, value_time)


class LuongAttention(_ScoredAttention):
    """Multiplicative attention (Luong et al., 2015, "general"): score(q, k) = q . W k.

    Args:
        units: Size of the queries; the keys are projected to it.

    Example:
        >>> attention = LuongAttention(8)
        >>> context, weights = attention(keras.ops.ones((2, 3, 8)), keras.ops.ones((2, 5, 12)))
        >>> context.shape, weights.shape
        ((2, 3, 12), (2, 3, 5))
    """

    def __init__(self, units=64, **kwargs):
        super().__init__(units, **kwargs)
        # === Layers ===
        self.key_projection = keras.layers.Dense(units, use_bias=False, name="key_projection")

    def build(self, query_shape, value_shape):
        if query_shape[-1] is not None and query_shape[-1] != self.units:
            raise ValueError(f"LuongAttention(units={self.units}) needs queries with {self.units} features, "
                             f"got shape {query_shape}")
        self.key_projection.build(value_shape)
        self.built = True

    def score(self, query, keys):
        return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))  # (batch, query_time, value_time)
