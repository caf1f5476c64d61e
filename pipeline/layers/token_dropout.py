"""Word dropout: during training, replace random tokens by the out-of-vocabulary id."""

import keras
from keras import ops


class TokenDropout(keras.layers.Layer):
    """Replaces each non-padding token id by `oov_id` with probability `rate`, in training only.

    Without it every training word is in the vocabulary, so the out-of-vocabulary embedding is never
    trained and unseen words at test time get a random vector.

    Args:
        rate: Probability of replacing a token.
        oov_id: The out-of-vocabulary id (1 in this package's vocabularies; 0 is padding and is kept).
        seed: Seed of the random generator.
    """

    def __init__(self, rate=0.0, oov_id=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate: must be in [0, 1) (got {rate})")
        self.rate = rate
        self.oov_id = oov_id
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, token_ids, training=None):
        if not training or self.rate == 0.0:
            return token_ids
        drop = keras.random.uniform(ops.shape(token_ids), seed=self.seed_generator) < self.rate
        drop = ops.logical_and(drop, ops.not_equal(token_ids, 0))
        return ops.where(drop, ops.full_like(token_ids, self.oov_id), token_ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "oov_id": self.oov_id, "seed": self.seed})
        return config
