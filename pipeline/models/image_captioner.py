"""Image captioner: CNN encoder -> recurrent decoder, Show-and-Tell or Show-Attend-and-Tell, `encode`/`decode_step`.

Show-and-Tell (Vinyals et al. 2015): the mean of the image's feature grid, through a tanh layer,
initializes the decoder's recurrent state; the decoder then reads word embeddings only.
Show-Attend-and-Tell (Xu et al. 2015): the initial state also comes from the mean feature, and at every
step the previous hidden state attends over the feature grid; the gated context joins the word
embedding as the recurrent input, and the new state and context give the logits ("deep output"). A learned embedding of each grid location is
added to the projected features, so that the context also tells where it looked ("on the left").

Training is teacher-forced over whole captions; decoding feeds one token at a time through
`decode_step`, which `pipeline.decoding` drives. Both paths give the same logits for the same prefix.
"""

import keras
import tensorflow as tf
from keras import ops

from pipeline import config as config_lib
from pipeline.layers import attention as attention_lib
from pipeline.layers import image_encoders
from pipeline.layers import recurrent

ATTENTIONS = {"bahdanau": attention_lib.BahdanauAttention, "luong": attention_lib.LuongAttention}
CELL_CLASSES = {"simple_rnn": keras.layers.SimpleRNNCell, "lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell}
DECODERS = ("show_and_tell", "show_attend_and_tell")


class ImageCaptioner(keras.Model):
    """CNN encoder and recurrent caption decoder.

    Inputs of `call`: {"images": uint8/float [batch, size, size, 3] (RGB, 0..255)} or, with precomputed
    features of a frozen encoder, {"image_features": float [batch, locations, channels]}; plus
    {"decoder_token_ids": int32 [batch, time]} (start token first, right-padded with 0; other keys are
    ignored). Returns float32 logits [batch, time, vocabulary]. The decoder is causal, so padding on the
    right never changes earlier logits (the loss ignores padded steps).

    Args:
        vocabulary_size: Caption token ids, padding, out-of-vocabulary, start and end included.
        encoder: Backbone name (see `pipeline.layers.image_encoders.BACKBONES`).
        image_size: Square image size; null uses the backbone's native size.
        encoder_filters: Filters per block of the `small_cnn` backbone.
        encoder_trainable: False freezes the encoder (its features can then be cached).
        decoder: `show_and_tell` or `show_attend_and_tell`.
        embedding_dim: Size of the word embedding.
        cell: `simple_rnn`, `lstm` or `gru`.
        units: Units per decoder layer (and of the attention and projected features).
        num_layers: Stacked decoder layers.
        dropout: On the pooled feature, the embeddings, between layers and before the output.
        attention: `bahdanau` or `luong` (show_attend_and_tell only).
    """

    def __init__(self, vocabulary_size, encoder="small_cnn", image_size=None, encoder_filters=(32, 64, 128),
                 encoder_trainable=True, decoder="show_attend_and_tell", embedding_dim=64, cell="lstm", units=64,
                 num_layers=1, dropout=0.0, attention="bahdanau", **kwargs):
        super().__init__(**kwargs)
        if decoder not in DECODERS:
            raise ValueError(f"decoder: {decoder!r} is not one of {list(DECODERS)}")
        if decoder == "show_attend_and_tell" and attention not in ATTENTIONS:
            raise ValueError(f"attention: {attention!r} is not one of {sorted(ATTENTIONS)}")
        self.vocabulary_size = vocabulary_size
        self.encoder_name = encoder
        self.encoder_filters = tuple(encoder_filters)
        self.encoder_trainable = encoder_trainable
        self.decoder = decoder
        self.embedding_dim = embedding_dim
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.attention = attention
        self.uses_attention = decoder == "show_attend_and_tell"
        state_kinds = ("hidden", "cell") if cell == "lstm" else ("hidden",)

        # === Layers ===
        self.image_encoder = image_encoders.ImageEncoder(encoder, image_size, self.encoder_filters, name="image_encoder")
        self.image_encoder.trainable = encoder_trainable
        self.image_size = self.image_encoder.image_size
        self.feature_dropout = keras.layers.Dropout(dropout, name="feature_dropout")
        self.initial_state_layers = [
            [keras.layers.Dense(units, activation="tanh", name=f"initial_{kind}_{index}") for kind in state_kinds]
            for index in range(num_layers)]
        self.token_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="token_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        if self.uses_attention:
            self.feature_projection = keras.layers.Dense(units, activation="relu", name="feature_projection")
            # CNN features say what is there, not where; a learned embedding per grid location says where.
            self.location_embedding = keras.layers.Embedding(self.image_encoder.locations, units,
                                                             name="location_embedding")
            self.attention_layer = ATTENTIONS[attention](units, name="attention")
            self.context_gate = keras.layers.Dense(1, activation="sigmoid", name="context_gate")
            self.decoder_cells = [CELL_CLASSES[cell](units, name=f"decoder_{cell}_cell_{index}")
                                  for index in range(num_layers)]
            self.attention_output = keras.layers.Dense(units, activation="tanh", name="attention_output")
        else:
            self.decoder_layers = [
                recurrent.CELLS[cell](units, return_sequences=True, return_state=True, name=f"decoder_{cell}_{index}")
                for index in range(num_layers)]
            self.decoder_dropouts = [keras.layers.Dropout(dropout, name=f"decoder_dropout_{index}")
                                     for index in range(1, num_layers)]
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_projection = keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")

    def build(self, input_shape=None):
        channels, units = self.image_encoder.channels, self.units
        self.image_encoder.build((None, self.image_size, self.image_size, 3))
        for layers in self.initial_state_layers:
            for layer in layers:
                layer.build((None, channels))
        self.token_embedding.build((None, None))
        if self.uses_attention:
            self.feature_projection.build((None, None, channels))
            self.location_embedding.build((None,))
            self.attention_layer.build((None, None, units), (None, None, units))
            self.context_gate.build((None, units))
            features = self.embedding_dim + units
            for cell in self.decoder_cells:
                cell.build((None, features))
                features = units
            self.attention_output.build((None, 2 * units))
        else:
            features = self.embedding_dim
            for layer in self.decoder_layers:
                layer.build((None, None, features))
                features = units
        self.output_projection.build((None, None, units))
        self.built = True

    # === Encoder ===

    def image_features(self, images, training=False):
        """Images uint8/float [batch, size, size, 3] (0..255) -> features [batch, locations, channels]."""
        return self.image_encoder(images, training=training)

    def encode(self, images, training=False):
        """Runs the CNN and prepares the decoder state; see `encode_features`."""
        return self.encode_features(self.image_features(images, training=training), training=training)

    def encode_features(self, image_features, training=False):
        """Prepares the decoder state from encoder features [batch, locations, channels].

        Returns:
            A dict of tensors with leading dimension batch: `decoder_states` (one list of recurrent
            states per layer, each (batch, units)) and, with attention, `features` (projected,
            (batch, locations, units)) and `attention_keys` (batch, locations, units).
        """
        pooled = self.feature_dropout(ops.mean(image_features, axis=1), training=training)  # (batch, channels)
        state = {"decoder_states": [[layer(pooled) for layer in layers] for layers in self.initial_state_layers]}
        if self.uses_attention:
            locations = self.location_embedding(ops.arange(self.image_encoder.locations))  # (locations, units)
            features = self.feature_projection(image_features) + locations[None]  # (batch, locations, units)
            state["features"] = features
            state["attention_keys"] = self.attention_layer.project_keys(features)
        return state

    # === Decoder ===

    def call(self, inputs, training=None):
        if "image_features" in inputs:
            state = self.encode_features(inputs["image_features"], training=training)
        else:
            state = self.encode(inputs["images"], training=training)
        embedded = self.embedding_dropout(self.token_embedding(inputs["decoder_token_ids"]), training=training)
        if self.uses_attention:
            outputs = self._attend_over_time(embedded, state, training)  # (batch, time, units)
        else:
            outputs = embedded
            for index, layer in enumerate(self.decoder_layers):
                if index > 0:
                    outputs = self.decoder_dropouts[index - 1](outputs, training=training)
                outputs = layer(outputs, initial_state=state["decoder_states"][index], training=training)[0]
        return self.output_projection(self.output_dropout(outputs, training=training))

    def _attend_over_time(self, embedded, state, training):
        """Teacher-forced attention decoder: a scan of `_attention_step` over the time axis."""
        def step(previous, embedded_step):
            _, decoder_states = previous
            output, new_states, _ = self._attention_step(embedded_step, decoder_states, state, training)
            return output, new_states

        first_states = state["decoder_states"]
        initial = (ops.zeros_like(first_states[0][0]), first_states)  # (output, states) of "step -1"
        # tf.scan rather than keras.ops.scan, which mishandles nested carries in Keras 3.15.
        outputs, _ = tf.scan(step, tf.transpose(embedded, (1, 0, 2)), initializer=initial)  # (time, batch, units)
        return tf.transpose(outputs, (1, 0, 2))  # (batch, time, units)

    def _attention_step(self, embedded, decoder_states, state, training=False):
        """One Show-Attend-and-Tell step: embedded (batch, embedding_dim) -> output (batch, units)."""
        query = decoder_states[-1][0]  # the top layer's previous hidden state, (batch, units)
        context, weights = self.attention_layer(query[:, None, :], state["features"],
                                                keys=state["attention_keys"])  # (batch, 1, units), (batch, 1, L)
        context = context[:, 0] * self.context_gate(query)  # (batch, units)
        inputs = ops.concatenate([embedded, context], axis=-1)
        new_states = []
        for cell, cell_state in zip(self.decoder_cells, decoder_states):
            inputs, layer_state = cell(inputs, list(cell_state), training=training)
            new_states.append(list(layer_state))
        output = self.attention_output(ops.concatenate([inputs, context], axis=-1))  # (batch, units)
        return output, new_states, weights[:, 0]

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
        """`decode_step` that also returns the attention weights [batch, locations] (None without attention)."""
        embedded = self.token_embedding(token_ids)  # (batch, embedding_dim)
        weights = None
        if self.uses_attention:
            outputs, decoder_states, weights = self._attention_step(embedded, state["decoder_states"], state)
        else:
            outputs, decoder_states = embedded, []
            for layer, layer_state in zip(self.decoder_layers, state["decoder_states"]):
                outputs, new_state = layer.cell(outputs, list(layer_state), training=False)
                decoder_states.append(list(new_state))
        logits = self.output_projection(outputs[:, None, :])[:, 0]  # (batch, vocabulary)
        return logits, dict(state, decoder_states=decoder_states), weights

    # === Config ===
    def get_config(self):
        return {
            "name": self.name,
            "vocabulary_size": self.vocabulary_size,
            "encoder": self.encoder_name,
            "image_size": self.image_size,
            "encoder_filters": list(self.encoder_filters),
            "encoder_trainable": self.encoder_trainable,
            "decoder": self.decoder,
            "embedding_dim": self.embedding_dim,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "attention": self.attention,
        }


def build_image_captioner(model_config: config_lib.CaptionerModelConfig, *, vocabulary_size: int) -> ImageCaptioner:
    """Builds the captioner from its config block (built, uncompiled; pretrained weights not loaded)."""
    encoder = model_config.encoder
    model = ImageCaptioner(
        vocabulary_size, encoder=encoder.name, image_size=encoder.image_size, encoder_filters=encoder.filters,
        encoder_trainable=encoder.trainable, decoder=model_config.decoder, embedding_dim=model_config.embedding_dim,
        cell=model_config.cell, units=model_config.units, num_layers=model_config.layers,
        dropout=model_config.dropout, attention=model_config.attention, name="image_captioner")
    model.build()
    return model
