"""Recurrent language model: embedding -> stacked SimpleRNN/LSTM/GRU -> next-token logits, with carried state.

Training reads whole chunks at once (`call`); generation feeds one token at a time through `decode_step`,
which `pipeline.decoding` drives; both give the same logits for the same prefix. With `stateful=True` the
model keeps each row's final recurrent state after a call and starts the same row of the next call from it
(truncated backpropagation through time): the carried state is read as a constant, so gradients stop at
the chunk boundary.

With `sampled_softmax` set, `fit` trains on a sampled softmax (`losses.sampled_softmax_loss` over the
output layer's hidden inputs, so the full logits are never computed); everything else, validation
included, uses the full softmax.
"""

import keras
import tensorflow as tf
from keras import ops

from pipeline import compat
from pipeline import config as config_lib
from pipeline import losses
from pipeline.layers import recurrent


class _CarriedState:
    """The recurrent state kept between calls of a stateful model, outside the model's weights.

    It is data, not a parameter: it must not enter checkpoints, `model.keras` or exports, so it lives in
    plain `tf.Variable`s of unknown batch size held by an object Keras and TensorFlow do not track.
    `rows` holds the batch size the state belongs to (-1: none), so a batch of another size, e.g. the
    first batch after `reset`, starts from zeros. (Comparing `rows` rather than the variables' own shape
    keeps graph optimizations from folding the check away.)
    """

    def __init__(self, state_sizes: list[int]):
        self.sizes = list(state_sizes)
        self.values = [tf.Variable(tf.zeros([0, size]), shape=tf.TensorShape([None, size]), trainable=False)
                       for size in self.sizes]
        self.rows = tf.Variable(-1, trainable=False)

    def read(self, batch_size, dtype) -> list:
        """The carried state if it belongs to `batch_size` rows, else zeros; never differentiated."""
        def carried():
            return [tf.identity(value) for value in self.values]

        def zeros():
            return [tf.zeros(tf.stack([batch_size, size])) for size in self.sizes]

        values = tf.cond(tf.equal(self.rows, batch_size), carried, zeros)
        return [tf.cast(tf.stop_gradient(value), dtype) for value in values]

    def write(self, values: list, batch_size) -> None:
        for variable, value in zip(self.values, values):
            variable.assign(tf.cast(value, tf.float32))
        self.rows.assign(batch_size)

    def reset(self) -> None:
        self.rows.assign(-1)


class RecurrentLanguageModel(keras.Model):
    """Next-token predictor over a token stream.

    Inputs of `call` are {"token_ids": int32 [batch, time]} (no padding: every step is a real token).
    Returns float32 logits [batch, time, vocabulary]: position t predicts token t + 1.

    The recurrent state is a list with one entry per layer, each the layer's state list: `[h]` for
    SimpleRNN and GRU, `[h, c]` for LSTM, every tensor (batch, units).

    Args:
        vocabulary_size: Token ids, padding and out-of-vocabulary included.
        embedding_dim: Size of the token embedding.
        cell: `simple_rnn`, `lstm` or `gru`.
        units: Units per recurrent layer.
        num_layers: Stacked recurrent layers.
        dropout: Dropout after the embedding, between recurrent layers and before the output layer.
        stateful: Carry each row's final state into the same row of the next call of the same batch size
            (see the module docstring); `reset_state()` forgets it.
        sampled_softmax: Classes sampled per training step by `fit` (see the module docstring); 0 trains on
            the full softmax.

    Example:
        >>> model = RecurrentLanguageModel(50, cell="gru", units=32)
        >>> model.build()
        >>> model({"token_ids": keras.ops.ones((2, 7), "int32")}).shape
        TensorShape([2, 7, 50])
    """

    def __init__(self, vocabulary_size, embedding_dim=64, cell="lstm", units=64, num_layers=1, dropout=0.0,
                 stateful=False, sampled_softmax=0, **kwargs):
        super().__init__(**kwargs)
        if cell not in recurrent.CELLS:
            raise ValueError(f"cell: {cell!r} is not one of {sorted(recurrent.CELLS)}")
        if sampled_softmax < 0 or (sampled_softmax and sampled_softmax >= vocabulary_size - 1):
            raise ValueError(f"sampled_softmax: {sampled_softmax} classes cannot be sampled from the "
                             f"{vocabulary_size - 1} non-padding classes; it must be fewer (0: full softmax)")
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.stateful = stateful
        self.sampled_softmax = sampled_softmax
        self.states_per_layer = 2 if cell == "lstm" else 1
        self._carried = _CarriedState([units] * (num_layers * self.states_per_layer))

        # === Layers ===
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        self.recurrent_layers = [
            recurrent.CELLS[cell](units, return_sequences=True, return_state=True, name=f"{cell}_{index}")
            for index in range(num_layers)]
        self.between_dropouts = [keras.layers.Dropout(dropout, name=f"dropout_{index}")
                                 for index in range(1, num_layers)]
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_projection = keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")
        if sampled_softmax:  # its state is saved with the checkpoints' random generators
            self.sampling_seed = keras.random.SeedGenerator(name="sampled_softmax_seed")

    def build(self, input_shape=None):
        self.embedding.build((None, None))
        features = self.embedding_dim
        for layer in self.recurrent_layers:
            layer.build((None, None, features))
            features = self.units
        self.output_projection.build((None, None, self.units))
        self.built = True

    # === State ===

    def initial_state(self, batch_size) -> list:
        """Zero state for `batch_size` rows (a Python int or a scalar tensor)."""
        zeros = ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
        return [[zeros] * self.states_per_layer for _ in self.recurrent_layers]

    def reset_state(self) -> None:
        """Forgets the carried state; the next call of a stateful model starts from zeros."""
        self._carried.reset()

    def _flat(self, state) -> list:
        return [tensor for layer_state in state for tensor in layer_state]

    def _nested(self, flat) -> list:
        size = self.states_per_layer
        return [list(flat[index * size:(index + 1) * size]) for index in range(self.num_layers)]

    # === Forward ===

    def hidden_states(self, token_ids, initial_state=None, mask=None, training=False):
        """Reads token_ids [batch, time] from `initial_state` (zeros when None) up to the output layer.

        Args:
            token_ids: int32 [batch, time].
            initial_state: A state as returned here or by `initial_state`.
            mask: Optional bool [batch, time]; masked steps leave the state unchanged (right padding).
            training: Dropout on or off.

        Returns:
            (the output layer's inputs [batch, time, units] in the compute dtype, final state).
        """
        if initial_state is None:
            initial_state = self.initial_state(ops.shape(token_ids)[0])
        outputs = self.embedding_dropout(self.embedding(token_ids), training=training)  # (batch, time, embedding)
        final_state = []
        for index, layer in enumerate(self.recurrent_layers):
            if index > 0:
                outputs = self.between_dropouts[index - 1](outputs, training=training)
            outputs, *layer_state = layer(outputs, initial_state=list(initial_state[index]), mask=mask,
                                          training=training)  # (batch, time, units)
            final_state.append(layer_state)
        return self.output_dropout(outputs, training=training), final_state

    def run(self, token_ids, initial_state=None, mask=None, training=False):
        """Like `hidden_states`, but returns (logits float32 [batch, time, vocabulary], final state)."""
        outputs, final_state = self.hidden_states(token_ids, initial_state, mask=mask, training=training)
        return self.output_projection(outputs), final_state  # (batch, time, vocabulary)

    def carried_hidden_states(self, token_ids, training=None):
        """`hidden_states` from the carried state of a stateful model (which keeps the final state), else
        from zeros."""
        if not self.stateful:
            return self.hidden_states(token_ids, training=training)[0]
        batch_size = tf.shape(token_ids)[0]
        initial_state = self._nested(self._carried.read(batch_size, self.compute_dtype))
        outputs, final_state = self.hidden_states(token_ids, initial_state, training=training)
        self._carried.write(self._flat(final_state), batch_size)
        return outputs

    def call(self, inputs, training=None):
        return self.output_projection(self.carried_hidden_states(inputs["token_ids"], training=training))

    # === Training ===

    def train_step(self, data):
        """Keras' training step, with the sampled softmax in place of the full one when it is configured."""
        if not self.sampled_softmax:
            return super().train_step(data)
        features, labels, _ = keras.utils.unpack_x_y_sample_weight(data)  # no sample weights in a text stream
        with tf.GradientTape() as tape:
            hidden = self.carried_hidden_states(features["token_ids"], training=True)  # (batch, time, units)
            loss = losses.sampled_softmax_loss(hidden, labels, self.output_projection.kernel,
                                               self.output_projection.bias, num_sampled=self.sampled_softmax,
                                               seed=self.sampling_seed)
            # Replicas' gradients are summed, so each contributes its share of the mean (as Keras' own loss).
            replica_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(replica_loss)  # mixed float16: the loss scale
        gradients = tape.gradient(scaled_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        tracker = compat.loss_tracker(self)
        tracker.update_state(loss, sample_weight=tf.shape(labels)[0])
        # The compiled metrics need full logits, which this step never computes; updating them with an empty
        # batch changes nothing but builds them as Keras' own step would (validation then reports them).
        no_logits = tf.zeros(tf.concat([[0], tf.shape(labels)[1:], [self.vocabulary_size]], axis=0))
        self.compute_metrics(features, labels[:0], no_logits)
        return {tracker.name: tracker.result()}

    # === Generation ===

    def encode(self, token_ids, mask=None):
        """Reads a prompt and returns the state after its last unmasked token.

        Args:
            token_ids: int32 [batch, time], right-padded; `mask` (bool [batch, time]) marks the real tokens.
                Rows with no real token keep the zero state.

        Returns:
            The state to continue from with `decode_step`.
        """
        return self.run(token_ids, mask=mask)[1]

    def decode_step(self, token_ids, state):
        """Feeds one token per row and returns the next-token logits.

        Args:
            token_ids: int32 [batch].
            state: The state from `encode`, `initial_state` or the previous `decode_step`.

        Returns:
            (logits float32 [batch, vocabulary], the new state with the same structure).
        """
        outputs = self.embedding(token_ids)  # (batch, embedding_dim)
        new_state = []
        for index, layer in enumerate(self.recurrent_layers):
            outputs, layer_state = layer.cell(outputs, list(state[index]), training=False)  # (batch, units)
            new_state.append(list(layer_state))
        return self.output_projection(outputs), new_state

    # === Config ===
    def get_config(self):
        return {
            "name": self.name,
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "stateful": self.stateful,
            "sampled_softmax": self.sampled_softmax,
        }


def build_recurrent_language_model(model_config: config_lib.LanguageModelConfig, *, vocabulary_size: int,
                                   stateful: bool = False, sampled_softmax: int = 0) -> RecurrentLanguageModel:
    """Builds the language model from its config block and the vocabulary size (built, uncompiled)."""
    model = RecurrentLanguageModel(
        vocabulary_size, embedding_dim=model_config.embedding_dim, cell=model_config.cell,
        units=model_config.units, num_layers=model_config.layers, dropout=model_config.dropout,
        stateful=stateful, sampled_softmax=sampled_softmax, name="recurrent_language_model")
    model.build()
    return model
