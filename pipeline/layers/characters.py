"""Character-level word features: a CNN or a BiLSTM over each word's characters."""

import keras
from keras import ops


class CharacterEncoder(keras.layers.Layer):
    """Encodes char ids (batch, time, chars) into one vector per word (batch, time, features).

    Character id 0 is padding and never contributes: the CNN max-pools only over real characters (ReLU
    features, so a padding word pools to zeros) and the BiLSTM masks padding characters. The output mask
    marks words that have at least one character.

    Args:
        mode: `cnn` (convolution of width 3, ReLU, max over characters) or `bilstm` (final states of both
            directions).
        vocabulary_size: Number of character ids, padding and out-of-vocabulary included.
        embedding_dim: Size of the character embedding.
        units: CNN filters, or LSTM units per direction.
    """

    def __init__(self, mode="cnn", vocabulary_size=300, embedding_dim=32, units=32, **kwargs):
        super().__init__(**kwargs)
        if mode not in ("cnn", "bilstm"):
            raise ValueError(f"mode: {mode!r} is not one of ['cnn', 'bilstm']")
        self.mode = mode
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        # === Layers ===
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="char_embedding")
        if mode == "cnn":
            self.encoder = keras.layers.Conv1D(units, 3, padding="same", activation="relu", name="char_cnn")
        else:
            self.encoder = keras.layers.Bidirectional(keras.layers.LSTM(units), name="char_bilstm")

    @property
    def output_features(self) -> int:
        return self.units * (2 if self.mode == "bilstm" else 1)

    def build(self, input_shape):
        self.embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim))
        self.built = True

    def call(self, char_ids):
        shape = ops.shape(char_ids)
        words = ops.reshape(char_ids, (-1, shape[2]))  # (batch * time, chars)
        mask = ops.not_equal(words, 0)
        embedded = self.embedding(words)  # (batch * time, chars, embedding_dim)
        if self.mode == "cnn":
            # Zero vectors at padding, like the convolution's own "same" padding, so extra padding
            # characters change nothing.
            weights = ops.expand_dims(ops.cast(mask, embedded.dtype), -1)  # (batch * time, chars, 1)
            features = self.encoder(embedded * weights) * weights  # (batch * time, chars, units)
            pooled = ops.max(features, axis=1)
        else:
            pooled = self.encoder(embedded, mask=mask)  # (batch * time, 2 * units)
        return ops.reshape(pooled, (shape[0], shape[1], self.output_features))

    def compute_mask(self, inputs, mask=None):
        # A word is real when it has characters. Keras' Concatenate keeps a step when ANY input keeps
        # it, so this mask must agree with the word embedding's instead of being absent.
        return ops.any(ops.not_equal(inputs, 0), axis=-1)  # (batch, time)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_features)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "vocabulary_size": self.vocabulary_size,
                       "embedding_dim": self.embedding_dim, "units": self.units})
        return config
