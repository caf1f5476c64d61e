"""A stack of recurrent layers (SimpleRNN, LSTM or GRU), optionally bidirectional, shared by every task."""

import keras

CELLS = {
    "simple_rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}


class RecurrentStack(keras.layers.Layer):
    """Stacked recurrent layers with dropout between them.

    Masking: the input mask (e.g. from `Embedding(mask_zero=True)`) is honoured by every layer, so padding
    never changes the result. With `return_sequences=True` the mask is passed on; otherwise the output is
    the state after the last unmasked step (for a bidirectional stack: the forward state at the last
    token concatenated with the backward state at the first token).

    The defaults (`tanh`, no recurrent dropout, no unrolling) keep LSTM and GRU eligible for cuDNN kernels
    on a GPU when the padding is on the right.

    Args:
        cell: `simple_rnn`, `lstm` or `gru`.
        units: Units per layer and direction.
        num_layers: Number of stacked layers.
        bidirectional: Run each layer in both directions and concatenate (output size `2 * units`).
        dropout: Dropout rate applied to each layer's input but the first.
        return_sequences: Return every time step (batch, time, features) instead of the final output.

    Example:
        >>> stack = RecurrentStack("gru", units=32, num_layers=2, bidirectional=True)
        >>> stack(keras.ops.ones((4, 10, 8))).shape
        (4, 64)
    """

    def __init__(self, cell="lstm", units=64, num_layers=1, bidirectional=False, dropout=0.0,
                 return_sequences=False, **kwargs):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell: {cell!r} is not one of {sorted(CELLS)}")
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.return_sequences = return_sequences
        self.supports_masking = True

        # === Layers ===
        self.recurrent_layers = []
        self.dropout_layers = []
        # Keras' Bidirectional serializes the layer it is given and rebuilds it. While `load_model` runs, its
        # object-sharing scope matches serialized objects by `id()`: a discarded template whose address is
        # reused by the next one can make a later layer come back as an earlier one. So the backward layer
        # is built here (one serialization per template, not two) and every template stays alive until this
        # constructor returns.
        templates = []
        for index in range(num_layers):
            is_last = index == num_layers - 1
            sequences = return_sequences or not is_last
            layer = CELLS[cell](units, return_sequences=sequences, name=f"{cell}_{index}")
            templates.append(layer)
            if bidirectional:
                backward = CELLS[cell](units, return_sequences=sequences, go_backwards=True,
                                       name=f"backward_{cell}_{index}")
                layer = keras.layers.Bidirectional(layer, backward_layer=backward,
                                                   name=f"bidirectional_{cell}_{index}")
            self.recurrent_layers.append(layer)
            self.dropout_layers.append(keras.layers.Dropout(dropout, name=f"dropout_{index}"))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for index, layer in enumerate(self.recurrent_layers):
            if index > 0:
                self.dropout_layers[index].build(shape)
            layer.build(shape)
            shape = shape[:-1] + (self.output_features,)
        self.built = True

    @property
    def output_features(self) -> int:
        return self.units * (2 if self.bidirectional else 1)

    def call(self, inputs, mask=None, training=None):
        outputs = inputs  # (batch, time, features)
        for index, layer in enumerate(self.recurrent_layers):
            if index > 0:
                outputs = self.dropout_layers[index](outputs, training=training)
            outputs = layer(outputs, mask=mask, training=training)  # (batch, time, output_features)
        return outputs

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return tuple(input_shape[:-1]) + (self.output_features,)
        return (input_shape[0], self.output_features)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "return_sequences": self.return_sequences,
        })
        return config


def encoder_layer_groups(model: keras.Model, embedding_layers: list, stack: RecurrentStack) -> dict[str, list]:
    """Layer groups of a model built around a `RecurrentStack`, bottom to top (the units of ULMFiT fine-tuning).

    Args:
        model: A functional model whose top-level layers include `embedding_layers` and `stack`.
        embedding_layers: The layers below the stack that have weights (token embedding, character encoder).
        stack: The model's recurrent stack.

    Returns:
        `embedding`: `embedding_layers`; `recurrent_<i>`: layer i of the stack (both directions of a
        bidirectional one); `head`: every other top-level layer with weights (pooling, attention, output).
    """
    groups = {"embedding": list(embedding_layers)}
    groups.update({f"recurrent_{index}": [layer] for index, layer in enumerate(stack.recurrent_layers)})
    placed = {id(layer) for layers in groups.values() for layer in layers} | {id(stack)}
    groups["head"] = [layer for layer in model.layers if id(layer) not in placed and layer.weights]
    return groups
