"""Encoder-decoder translator: recurrent encoder, recurrent decoder with attention, `encode`/`decode_step`.

Training runs the decoder over the whole target at once (teacher forcing): the decoder's recurrent
layers read the target embeddings, then every decoder state attends over the encoder outputs and the
state and its context give the logits (the attention of Luong et al. 2015, with additive or
multiplicative scores). Decoding runs the same layers one token at a time through `decode_step`, which
`pipeline.decoding` drives; both paths give the same logits for the same prefix.
"""

import keras
from keras import ops

from pipeline import config as config_lib
from pipeline.layers import attention as attention_lib
from pipeline.layers import recurrent

ATTENTIONS = {"bahdanau": attention_lib.BahdanauAttention, "luong": attention_lib.LuongAttention}


class Seq2SeqTranslator(keras.Model):
    """Recurrent encoder-decoder with optional attention.

    Inputs of `call` are {"encoder_token_ids": int32 [batch, source_time], "decoder_token_ids": int32
    [batch, target_time]} (other keys are ignored); id 0 is padding. Padded source steps are masked in
    the encoder and in attention; the decoder is causal and right-padded, so padded target steps never
    change earlier logits (the loss ignores them). Returns float32 logits [batch, target_time, vocabulary].

    The encoder's final output (for a bidirectional encoder the forward output at the last token and the
    backward output at the first) starts every decoder layer: as is when its size equals `units`,
    else through a tanh `Dense` bridge. LSTM cell states start at zero.

    Args:
        source_vocabulary_size: Source token ids, padding and out-of-vocabulary included.
        target_vocabulary_size: Target token ids, padding, out-of-vocabulary, start and end included.
        embedding_dim: Size of both token embeddings.
        cell: `simple_rnn`, `lstm` or `gru`, for encoder and decoder.
        units: Units per recurrent layer (per direction in the encoder).
        num_layers: Recurrent layers in the encoder and in the decoder.
        bidirectional: Bidirectional encoder.
        dropout: Dropout after the embeddings, between recurrent layers and before the output layer.
        attention: `bahdanau`, `luong` or `none`.
    """

    def __init__(self, source_vocabulary_size, target_vocabulary_size, embedding_dim=64, cell="lstm", units=64,
                 num_layers=1, bidirectional=False, dropout=0.0, attention="bahdanau", **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTIONS and attention != "none":
            raise ValueError(f"attention: {attention!r} is not one of {sorted(ATTENTIONS) + ['none']}")
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.attention = attention
        self.encoder_features = units * (2 if bidirectional else 1)

        # === Layers ===
        self.source_embedding = keras.layers.Embedding(source_vocabulary_size, embedding_dim,
                                                       name="source_embedding")
        self.source_dropout = keras.layers.Dropout(dropout, name="source_dropout")
        self.encoder = recurrent.RecurrentStack(cell, units=units, num_layers=num_layers, bidirectional=bidirectional,
                                                dropout=dropout, return_sequences=True, name="encoder")
        self.bridge = (keras.layers.Dense(units, activation="tanh", name="bridge")
                       if self.encoder_features != units else None)
        self.target_embedding = keras.layers.Embedding(target_vocabulary_size, embedding_dim,
                                                       name="target_embedding")
        self.target_dropout = keras.layers.Dropout(dropout, name="target_dropout")
        self.decoder_layers = [
            recurrent.CELLS[cell](units, return_sequences=True, return_state=True, name=f"decoder_{cell}_{index}")
            for index in range(num_layers)]
        self.decoder_dropouts = [keras.layers.Dropout(dropout, name=f"decoder_dropout_{index}")
                                 for index in range(1, num_layers)]  # between decoder layers
        self.attention_layer = ATTENTIONS[attention](units, name="attention") if attention != "none" else None
        # A linear projection of [state; context]: with Luong's tanh here, the tanh and then the decoder
        # saturated within 20 Adam steps on Multi30k and training stalled at unigram accuracy (any learning
        # rate from 5e-4 to 2e-3); without it the same run reached 31% validation token accuracy in 200 steps.
        self.attention_output = (keras.layers.Dense(units, name="attention_output")
                                 if attention != "none" else None)
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_projection = keras.layers.Dense(target_vocabulary_size, dtype="float32", name="logits")

    def build(self, input_shape=None):
        self.source_embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim))
        if self.bridge is not None:
            self.bridge.build((None, self.encoder_features))
        self.target_embedding.build((None, None))
        features = self.embedding_dim
        for layer in self.decoder_layers:
            layer.build((None, None, features))
            features = self.units
        if self.attention_layer is not None:
            self.attention_layer.build((None, None, self.units), (None, None, self.encoder_features))
            self.attention_output.build((None, None, self.units + self.encoder_features))
        self.output_projection.build((None, None, self.units))
        self.built = True

    # === Encoder ===

    def encode(self, encoder_token_ids, training=False):
        """Runs the encoder once per source sentence.

        Args:
            encoder_token_ids: int32 [batch, source_time], right-padded with 0 (at least one column).

        Returns:
            The decoder state, a dict of tensors with leading dimension batch: `encoder_outputs`
            (batch, source_time, encoder_features), `encoder_mask` bool (batch, source_time),
            `attention_keys` (batch, source_time, units; absent without attention) and `decoder_states`
            (one list of recurrent states per decoder layer, each (batch, units)).
        """
        mask = ops.not_equal(encoder_token_ids, 0)  # (batch, source_time)
        embedded = self.source_dropout(self.source_embedding(encoder_token_ids), training=training)
        outputs = self.encoder(embedded, mask=mask, training=training)  # (batch, source_time, features)
        initial = self._bridge(self._final_output(outputs, mask))  # (batch, units)
        zeros = ops.zeros_like(initial)
        state = {
            "encoder_outputs": outputs,
            "encoder_mask": mask,
            "decoder_states": [[initial, zeros] if self.cell == "lstm" else [initial]
                               for _ in self.decoder_layers],
        }
        if self.attention_layer is not None:
            state["attention_keys"] = self.attention_layer.project_keys(outputs)
        return state

    def _final_output(self, outputs, mask):
        """The forward output at the last real step (+ the backward output at the first, if bidirectional)."""
        lengths = ops.sum(ops.cast(mask, "int32"), axis=1)  # (batch,)
        last = ops.maximum(lengths - 1, 0)[:, None, None]  # (batch, 1, 1)
        forward = ops.take_along_axis(outputs[:, :, :self.units], last, axis=1)[:, 0]  # (batch, units)
        if not self.bidirectional:
            return forward
        return ops.concatenate([forward, outputs[:, 0, self.units:]], axis=-1)  # (batch, 2 * units)

    def _bridge(self, final_output):
        return final_output if self.bridge is None else self.bridge(final_output)

    # === Decoder ===

    def call(self, inputs, training=None):
        state = self.encode(inputs["encoder_token_ids"], training=training)
        outputs = self.target_dropout(self.target_embedding(inputs["decoder_token_ids"]), training=training)
        for index, layer in enumerate(self.decoder_layers):
            if index > 0:
                outputs = self.decoder_dropouts[index - 1](outputs, training=training)
            outputs = layer(outputs, initial_state=state["decoder_states"][index], training=training)[0]
        logits, _ = self._logits(outputs, state, training=training)  # (batch, target_time, vocabulary)
        return logits

    def _logits(self, decoder_outputs, state, training=False):
        """Decoder outputs (batch, time, units) -> logits (batch, time, vocabulary) and attention weights."""
        weights = None
        if self.attention_layer is not None:
            context, weights = self.attention_layer(
                decoder_outputs, state["encoder_outputs"], keys=state["attention_keys"],
                value_mask=state["encoder_mask"])  # (batch, time, encoder_features), (batch, time, source_time)
            decoder_outputs = self.attention_output(ops.concatenate([decoder_outputs, context], axis=-1))
        outputs = self.output_dropout(decoder_outputs, training=training)
        return self.output_projection(outputs), weights

    def decode_step(self, token_ids, state):
        """Feeds one token per row and returns the next-token logits.

        Args:
            token_ids: int32 [batch]: the previous token (the start token at the first step).
            state: The dict from `encode` or from the previous `decode_step`.

        Returns:
            (logits float32 [batch, vocabulary], the new state with the same structure).
        """
        logits, state, _ = self.decode_step_with_attention(token_ids, state)
        return logits, state

    def decode_step_with_attention(self, token_ids, state):
        """`decode_step` that also returns the attention weights [batch, source_time] (None without attention)."""
        outputs = self.target_embedding(token_ids)  # (batch, embedding_dim)
        decoder_states = []
        for index, layer in enumerate(self.decoder_layers):
            outputs, layer_state = layer.cell(outputs, list(state["decoder_states"][index]), training=False)
            decoder_states.append(list(layer_state))
        logits, weights = self._logits(outputs[:, None, :], state)  # (batch, 1, vocabulary)
        new_state = dict(state, decoder_states=decoder_states)
        return logits[:, 0], new_state, None if weights is None else weights[:, 0]

    def attention_weights(self, encoder_token_ids, decoder_token_ids):
        """Teacher-forced attention weights [batch, target_time, source_time], for plotting an alignment.

        Raises:
            ValueError: The model has no attention.
        """
        if self.attention_layer is None:
            raise ValueError("this translator was built with attention: none; it has no attention weights")
        state = self.encode(encoder_token_ids)
        outputs = self.target_embedding(decoder_token_ids)
        for index, layer in enumerate(self.decoder_layers):
            outputs = layer(outputs, initial_state=state["decoder_states"][index])[0]
        return self._logits(outputs, state)[1]

    # === Config ===
    def get_config(self):
        return {
            "name": self.name,
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "attention": self.attention,
        }


def build_seq2seq_translator(model_config: config_lib.Seq2SeqModelConfig, *, source_vocabulary_size: int,
                             target_vocabulary_size: int) -> Seq2SeqTranslator:
    """Builds the translator from its config block and the two vocabulary sizes (built, uncompiled)."""
    model = Seq2SeqTranslator(
        source_vocabulary_size, target_vocabulary_size, embedding_dim=model_config.embedding_dim,
        cell=model_config.cell, units=model_config.units, num_layers=model_config.layers,
        bidirectional=model_config.bidirectional, dropout=model_config.dropout,
        attention=model_config.attention, name="seq2seq_translator")
    model.build()
    return model
