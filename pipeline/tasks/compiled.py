"""XLA-compiled serving signatures (`export.jit_compile`): the numeric core compiled, string work outside.

String ops (splitting, vocabulary lookups, joining) have no XLA kernels, so a whole signature cannot be
compiled. Each compiled signature runs the same string preprocessing and postprocessing as its plain twin
and calls the numeric core (the model, or the whole decoding loop) through a `tf.function(jit_compile=True)`.
Such a function is stored in the SavedModel with XLA's must-compile mark and compiled on its first call for
each input shape; time axes are therefore padded up to a multiple of `LENGTH_MULTIPLE` (padding is masked,
so results do not change) to bound the number of compilations per batch size.
"""

import functools
import typing

import tensorflow as tf

from pipeline import decoding

SUFFIX = "_xla"
LENGTH_MULTIPLE = 16
# Sampling's `tf.random.stateless_categorical` with int64 seeds has no XLA kernel; greedy and beam compile.
COMPILED_MODES = ("greedy", "beam")


def pad_axis(tensor: tf.Tensor, axis: int, multiple: int = LENGTH_MULTIPLE) -> tf.Tensor:
    """Pads `axis` of an integer tensor with zeros (padding) up to the next multiple of `multiple`."""
    length = tf.shape(tensor)[axis]
    missing = (multiple - length % multiple) % multiple
    rank = tensor.shape.rank
    after = tf.one_hot(axis, rank, dtype=tf.int32) * missing  # (rank,)
    return tf.pad(tensor, tf.stack([tf.zeros([rank], tf.int32), after], axis=1))


class CompiledModel:
    """Calls a Keras model through one XLA-compiled function, on inputs padded to length buckets.

    Stands in for the model in a task's `serving_functions`: integer inputs of rank 2 or more have their
    axis 1 (time) and, for rank 3, axis 2 (characters) padded to multiples of `LENGTH_MULTIPLE`; outputs
    of rank 3 (one vector per time step) are cut back to the original time length.

    Args:
        model: A Keras model taking a dict of integer tensors.
    """

    def __init__(self, model):
        self.model = model
        self._forward = tf.function(lambda features: model(features, training=False), jit_compile=True)

    def __call__(self, features: dict, training: bool = False):
        del training  # serving is always inference
        time_steps = None
        padded = {}
        for key, tensor in features.items():
            if tensor.dtype.is_integer and tensor.shape.rank >= 2:
                time_steps = tf.shape(tensor)[1] if time_steps is None else time_steps
                for axis in range(1, tensor.shape.rank):
                    tensor = pad_axis(tensor, axis)
            padded[key] = tensor
        outputs = self._forward(padded)
        if time_steps is None:
            return outputs
        return tf.nest.map_structure(lambda output: output[:, :time_steps] if output.shape.rank == 3 else output,
                                     outputs)


def model_signatures(serving_functions: typing.Callable[[typing.Any], dict], model) -> dict:
    """`<name>_xla` for each signature of `serving_functions(model)`, with the model call compiled."""
    return {f"{name}{SUFFIX}": function for name, function in serving_functions(CompiledModel(model)).items()}


def decoding_signatures(input_spec: tf.TensorSpec, *, prepare: typing.Callable[[tf.Tensor], typing.Any],
                        decode: typing.Callable[[typing.Any, str], decoding.DecodeResult],
                        finish: typing.Callable[[tf.Tensor, decoding.DecodeResult], dict],
                        default_mode: str) -> dict[str, typing.Callable]:
    """`greedy_xla`, `beam_xla`, and `serving_default_xla` when the configured decoding compiles.

    Args:
        input_spec: The raw input, a named string [batch] spec, as in the plain signatures.
        prepare: Raw inputs -> the numeric inputs of `decode` (tokenization, image decoding), not compiled.
        decode: `(numeric inputs, mode) -> DecodeResult`: encoder and decoding loop, compiled with XLA.
        finish: `(raw inputs, DecodeResult) -> the signature's outputs` (detokenization), not compiled.
        default_mode: The decoding of the plain `serving_default`.
    """
    compiled = {mode: tf.function(functools.partial(_decode_arrays, decode, mode=mode), jit_compile=True)
                for mode in COMPILED_MODES}

    def signature(mode):
        @tf.function(input_signature=[input_spec])
        def serve(inputs):
            token_ids, lengths, scores = compiled[mode](prepare(inputs))
            return finish(inputs, decoding.DecodeResult(token_ids=token_ids, lengths=lengths, scores=scores))
        return serve

    functions = {f"{mode}{SUFFIX}": signature(mode) for mode in COMPILED_MODES}
    if default_mode in COMPILED_MODES:
        functions[f"serving_default{SUFFIX}"] = functions[f"{default_mode}{SUFFIX}"]  # one compilation for both
    return functions


def _decode_arrays(decode, numeric_inputs, mode):
    result = decode(numeric_inputs, mode)
    return result.token_ids, result.lengths, result.scores
