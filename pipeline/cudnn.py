"""Which recurrent layers can run on cuDNN kernels on a GPU, and why a config or a model cannot.

Keras' LSTM and GRU switch to the fused cuDNN kernel on a GPU only when the layer keeps cuDNN's own
equations: `activation="tanh"`, `recurrent_activation="sigmoid"`, `recurrent_dropout=0`, `unroll=False`,
`use_bias=True`, for GRU `reset_after=True`, and `use_cudnn` not false; masks must be right-padded (this
package always pads on the right). Otherwise they fall back to the generic loop, several times slower.
SimpleRNN has no cuDNN kernel, and a bare cell (`LSTMCell`, `GRUCell`) stepped by a decoding loop never uses
one. The layers of this package keep the Keras defaults, so only a few config keys decide eligibility.
"""

import keras

from pipeline import compat
from pipeline import config as config_lib

_GENERIC_LOOP = "runs the generic recurrent loop instead of cuDNN on a GPU"


def config_reasons(model_config: config_lib.RecurrentConfig) -> list[str]:
    """Reasons why a recurrent model config's layers would not use cuDNN kernels on a GPU.

    Only the settings every recurrent model shares are checked here; a task adds its own
    (`Task.cudnn_reasons`).

    Args:
        model_config: A resolved `model` block.

    Returns:
        Readable reasons naming the config key; empty when the shared settings are eligible.
    """
    if model_config.cell == "simple_rnn":
        return [f"model.cell: simple_rnn has no cuDNN kernel ({_GENERIC_LOOP}); lstm and gru have one"]
    return []


def model_reasons(model: keras.Layer) -> list[str]:
    """Reasons, one per layer, why recurrent layers of a built model would not use cuDNN kernels on a GPU.

    Args:
        model: Any Keras layer or model; its nested layers are inspected.

    Returns:
        Readable reasons naming the layer; empty when every LSTM and GRU layer is eligible.
    """
    layers = compat.flatten_layers(model)
    owned_cells = {id(layer.cell) for layer in layers if isinstance(layer, keras.layers.RNN)}
    reasons = []
    for layer in layers:
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            broken = _broken_settings(layer)
            if broken:
                reasons.append(f"layer {layer.name!r}: {', '.join(broken)} ({_GENERIC_LOOP})")
        elif isinstance(layer, keras.layers.SimpleRNN):
            reasons.append(f"layer {layer.name!r}: SimpleRNN has no cuDNN kernel")
        elif isinstance(layer, keras.layers.RNN):
            reasons.append(f"layer {layer.name!r}: a generic RNN layer over {type(layer.cell).__name__}; only the "
                           "LSTM and GRU layers use cuDNN")
        elif (isinstance(layer, (keras.layers.LSTMCell, keras.layers.GRUCell, keras.layers.SimpleRNNCell))
              and id(layer) not in owned_cells):
            reasons.append(f"layer {layer.name!r}: a bare {type(layer).__name__} stepped one token at a time "
                           "never uses cuDNN")
    return reasons


def _broken_settings(layer: keras.layers.RNN) -> list[str]:
    """The settings of an LSTM or GRU layer that differ from what cuDNN needs."""
    cell = layer.cell
    broken = []
    if keras.activations.serialize(cell.activation) != "tanh":
        broken.append(f"activation={keras.activations.serialize(cell.activation)!r} (needs 'tanh')")
    if keras.activations.serialize(cell.recurrent_activation) != "sigmoid":
        broken.append(f"recurrent_activation={keras.activations.serialize(cell.recurrent_activation)!r} "
                      "(needs 'sigmoid')")
    if cell.recurrent_dropout:
        broken.append(f"recurrent_dropout={cell.recurrent_dropout} (needs 0)")
    if layer.unroll:
        broken.append("unroll=True (needs False)")
    if not cell.use_bias:
        broken.append("use_bias=False (needs True)")
    if isinstance(layer, keras.layers.GRU) and not cell.reset_after:
        broken.append("reset_after=False (needs True)")
    if getattr(layer, "use_cudnn", "auto") is False:
        broken.append("use_cudnn=False")
    return broken
