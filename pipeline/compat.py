"""Every private TensorFlow/Keras API this project uses, each behind one small function.

TensorFlow and Keras may change anything outside their public API in any release. Keeping each private use
here, named after what it does and pinned by a test in `tests/test_compat.py`, means an upgrade that breaks
one fails in that test, with a message naming the function below to fix, instead of somewhere deep in a
training run. Each docstring says what private thing it touches, why, and which public API is missing.

Imports are inside the functions: importing this module costs nothing, and a broken private import fails
only the feature that needs it. This module imports nothing from `pipeline`.
"""

import contextlib
import typing


def disable_op_determinism() -> None:
    """Turns TensorFlow's op determinism off again after `tf.config.experimental.enable_op_determinism()`.

    Private: `tensorflow.python.framework.config.disable_op_determinism`.
    Why: determinism is process-wide; once a run in this process enabled it, a later non-deterministic run
    would inherit it, and Keras refuses XLA (`jit_compile`) while it is on.
    Missing publicly: TensorFlow exports `enable_op_determinism` but no way to turn it back off.
    """
    from tensorflow.python.framework import config as framework_config  # pylint: disable=g-direct-tensorflow-import

    framework_config.disable_op_determinism()


def compiling_with_xla() -> bool:
    """Whether the graph being traced now is compiled by XLA (inside `tf.function(jit_compile=True)`).

    Private: `tensorflow.python.ops.control_flow_util.GraphOrParentsInXlaContext`, the check TensorFlow's
    own ops use.
    Why: decoding loops keep shapes fixed under XLA (it cannot compile shapes that change per iteration)
    and shrink the batch as rows finish everywhere else.
    Missing publicly: no public API tells traced code whether it is being compiled with XLA.
    """
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util  # pylint: disable=g-direct-tensorflow-import

    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def flatten_layers(layer) -> list:
    """The layer itself and every layer nested in it, at any depth (recurrent layers' cells included).

    Private: `keras.Layer._flatten_layers(include_self=True, recursive=True)`.
    Why: finding every recurrent layer and cell of a model, including those held as attributes of
    subclassed layers and models, to check cuDNN eligibility and precision.
    Missing publicly: `Model.layers` lists direct children only, and Keras 3 has no recursive walk.
    """
    return list(layer._flatten_layers(include_self=True, recursive=True))  # pylint: disable=protected-access


def forget_creation_strategy(model) -> None:
    """Makes a Keras model forget the `tf.distribute` strategy it was created under.

    Private: the attribute `_distribute_strategy` of Keras' TensorFlow trainer
    (`keras.src.backend.tensorflow.trainer.TensorFlowTrainer`).
    Why: with a strategy recorded, `fit` first averages one distributed batch across replicas to build the
    model symbolically, which fails on dict inputs and on bucketed batches whose padded length differs
    between replicas (keras-team/keras#20585). Without it, Keras builds while tracing the train step, and
    `fit` still runs under the strategy because it is called in the strategy's scope.
    Missing publicly: no switch to skip the symbolic build, nor a setter for `Model.distribute_strategy`.
    """
    model._distribute_strategy = None  # pylint: disable=protected-access


@contextlib.contextmanager
def replaced_reduce_per_replica(
        make_replacement: typing.Callable[[typing.Callable], typing.Callable]) -> typing.Iterator[None]:
    """Replaces, for the duration of the block, how Keras' train and test steps reduce per-replica outputs.

    Private: the module function `keras.src.backend.tensorflow.trainer.reduce_per_replica(values, strategy,
    reduction)`, which the trainer's step functions look up by name when traced; it is monkeypatched here
    and restored on exit.
    Why: under `MultiWorkerMirroredStrategy` across workers Keras averages each logged scalar with
    `strategy.reduce(MEAN, value, axis=0)`, which fails on scalars (keras-team/keras#20329).
    Missing publicly: no hook to choose how step outputs are reduced across replicas.

    Args:
        make_replacement: Called with Keras' own function; returns the function used instead, with the
            same parameters `(values, strategy, reduction)`.
    """
    from keras.src.backend.tensorflow import trainer as keras_trainer

    original = keras_trainer.reduce_per_replica
    keras_trainer.reduce_per_replica = make_replacement(original)
    try:
        yield
    finally:
        keras_trainer.reduce_per_replica = original


def read_profiler_trace(path: str):
    """Parses a profiler trace file (`*.xplane.pb`) into TensorFlow's `XSpace` protobuf message.

    Private: `tensorflow.tsl.profiler.protobuf.xplane_pb2`, the protobuf classes TensorFlow ships for its
    trace format.
    Why: summarizing where a `train --profile` trace spent its time without TensorBoard.
    Missing publicly: TensorFlow writes these traces but exports no reader for them.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-direct-tensorflow-import

    space = xplane_pb2.XSpace()
    with open(path, "rb") as stream:
        space.ParseFromString(stream.read())
    return space


def mark_averaged_weights_in_model(swap_callback) -> None:
    """Tells a `keras.callbacks.SwapEMAWeights` that the model holds the averaged weights right now.

    Private: the attribute `_ema_weights_in_model` of `keras.callbacks.SwapEMAWeights`.
    Why: with `swap_on_epoch=True` the model holds the averaged weights (and the optimizer the raw ones)
    from the end of an epoch to the start of the next, which is when the last checkpoint is saved. A run
    resumed from it has to swap them back at the next epoch's start, as the uninterrupted run does; the
    callback swaps only when this flag says the averaged weights are in.
    Missing publicly: no way to tell the callback which weights a restored model holds.
    """
    swap_callback._ema_weights_in_model = True  # pylint: disable=protected-access


def loss_tracker(model):
    """The metric in which a compiled Keras model averages its training loss over an epoch (logged as `loss`).

    Private: the attribute `_loss_tracker` of Keras' `Trainer`, which its own `train_step` and `test_step`
    update.
    Why: a custom `train_step` (the language model's sampled softmax) has to report its loss where `fit`,
    `evaluate` and the epoch-start metric reset expect it; a tracker of its own would be logged twice.
    Missing publicly: `Model.metrics` lists the tracker, but nothing names it as the loss's.
    """
    return model._loss_tracker  # pylint: disable=protected-access
