"""Pins the private TensorFlow/Keras behaviour behind each function of `pipeline.compat`.

One test per function. When an upgrade changes a private API (moves it, renames it, changes its parameters
or what it does), the test of the function that relies on it fails with a message naming what changed and
the function to fix.
"""

import contextlib
import inspect
import pathlib
import typing
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import compat


def _changed(what: str, function: str) -> str:
    return (f"TensorFlow {tf.__version__} / Keras {keras.__version__} changed: {what}; "
            f"fix pipeline.compat.{function}")


@contextlib.contextmanager
def _pinned(function: str) -> typing.Iterator[None]:
    """Turns a private symbol that moved, vanished or takes other arguments into the compat failure message."""
    try:
        yield
    except (ImportError, AttributeError, TypeError) as error:
        pytest.fail(_changed(f"{type(error).__name__}: {error}", function))


def _tiny_dense_model() -> keras.Model:
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def test_disable_op_determinism_lets_keras_compile_with_xla_again():
    model = _tiny_dense_model()
    tf.config.experimental.enable_op_determinism()
    try:
        with warnings.catch_warnings():  # Keras warns that it proceeds without XLA
            warnings.simplefilter("ignore")
            model.compile(loss="mse", jit_compile=True)
        refused = not model.jit_compile
        with _pinned("disable_op_determinism"):
            compat.disable_op_determinism()
        model.compile(loss="mse", jit_compile=True)
    finally:
        with contextlib.suppress(ImportError, AttributeError, TypeError):
            compat.disable_op_determinism()  # leaves the process as the other tests expect it

    assert refused, _changed("Keras now compiles with XLA while op determinism is on; disabling it may no longer "
                             "be needed before a non-deterministic run", "disable_op_determinism")
    assert model.jit_compile, _changed("op determinism is still on after disable_op_determinism (Keras refuses "
                                       "jit_compile=True)", "disable_op_determinism")


def test_compiling_with_xla_is_true_only_while_tracing_for_xla():
    seen = {}

    def record(name):
        def traced(value):
            seen[name] = compat.compiling_with_xla()
            return value + 1
        return traced

    with _pinned("compiling_with_xla"):
        seen["eager"] = compat.compiling_with_xla()
        tf.function(record("jit_compile"), jit_compile=True, autograph=False)(tf.constant(1))
        tf.function(record("graph"), autograph=False)(tf.constant(1))

    assert seen == {"jit_compile": True, "graph": False, "eager": False}, _changed(
        f"GraphOrParentsInXlaContext answers {seen}, expected True only inside tf.function(jit_compile=True)",
        "compiling_with_xla")


class _Holder(keras.layers.Layer):
    """A subclassed layer holding a recurrent layer and a bare cell as attributes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.encoder = keras.layers.Bidirectional(keras.layers.LSTM(2, return_sequences=True), name="encoder")
        self.cell = keras.layers.GRUCell(2, name="bare_cell")

    def build(self, input_shape):
        self.encoder.build(input_shape)

    def call(self, inputs):
        return self.encoder(inputs)


def test_flatten_layers_yields_self_and_every_nested_layer_and_cell():
    holder = _Holder(name="holder")
    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(holder(inputs)), name="model")

    with _pinned("flatten_layers"):
        layers = compat.flatten_layers(model)

    names = {layer.name for layer in layers}
    cells = [layer for layer in layers if isinstance(layer, keras.layers.LSTMCell)]
    wrapped = [layer for layer in layers if isinstance(layer, keras.layers.LSTM)]
    assert {"model", "holder", "encoder", "head", "bare_cell"} <= names, _changed(
        f"Layer._flatten_layers(include_self=True, recursive=True) yields {sorted(names)}", "flatten_layers")
    assert len(wrapped) == 2 and {id(layer.cell) for layer in wrapped} == {id(cell) for cell in cells}, _changed(
        "Layer._flatten_layers no longer yields the forward and backward LSTM layers of a Bidirectional wrapper "
        "together with their cells", "flatten_layers")


def test_forget_creation_strategy_leaves_the_strategy_of_the_surrounding_scope():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = _tiny_dense_model()

    recorded = getattr(model, "_distribute_strategy", "missing") is strategy
    compat.forget_creation_strategy(model)

    assert recorded, _changed("a Keras model no longer records the strategy it was created under in "
                              "`_distribute_strategy`", "forget_creation_strategy")
    assert model.distribute_strategy is tf.distribute.get_strategy(), _changed(
        "a model without a recorded strategy no longer falls back to the current one", "forget_creation_strategy")
    with strategy.scope():
        assert model.distribute_strategy is strategy, _changed(
            "a model without a recorded strategy no longer uses the strategy whose scope it is called in",
            "forget_creation_strategy")


def test_replaced_reduce_per_replica_wraps_what_the_train_step_calls():
    with _pinned("replaced_reduce_per_replica"):
        from keras.src.backend.tensorflow import trainer as keras_trainer

        original = keras_trainer.reduce_per_replica
    parameters = list(inspect.signature(original).parameters)
    calls = []

    def recording(wrapped):
        def reduce_per_replica(values, strategy, reduction):
            calls.append(reduction)
            return wrapped(values, strategy, reduction)
        return reduce_per_replica

    model = _tiny_dense_model()
    model.compile(loss="mse", optimizer="sgd")
    with compat.replaced_reduce_per_replica(recording):
        loss = model.train_on_batch(np.ones((2, 3), np.float32), np.zeros((2, 1), np.float32))

    assert parameters == ["values", "strategy", "reduction"], _changed(
        f"keras.src.backend.tensorflow.trainer.reduce_per_replica takes {parameters}", "replaced_reduce_per_replica")
    assert "auto" in calls and np.isfinite(loss), _changed(
        f"the train step no longer calls the module's reduce_per_replica with reduction='auto' (calls: {calls})",
        "replaced_reduce_per_replica")
    assert keras_trainer.reduce_per_replica is original, "replaced_reduce_per_replica did not restore Keras' function"


def test_read_profiler_trace_parses_a_trace_tensorflow_wrote(tmp_path):
    tf.profiler.experimental.start(str(tmp_path))
    try:
        tf.matmul(tf.ones((8, 8)), tf.ones((8, 8))).numpy()
    finally:
        tf.profiler.experimental.stop()
    traces = sorted(pathlib.Path(tmp_path).rglob("*.xplane.pb"))

    with _pinned("read_profiler_trace"):
        space = compat.read_profiler_trace(str(traces[0]))

    plane_names = [plane.name for plane in space.planes]
    assert any(plane.lines for plane in space.planes), _changed(
        f"a profiler trace parses into planes {plane_names} without any lines (events)", "read_profiler_trace")


def test_mark_averaged_weights_in_model_makes_the_next_epoch_swap_them_back():
    model = _tiny_dense_model()
    model.compile(optimizer=keras.optimizers.SGD(use_ema=True), loss="mse")
    model.optimizer.build(model.trainable_variables)
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    swap.set_model(model)
    kernel = model.trainable_variables[0]
    kernel.assign(np.ones(kernel.shape, "float32"))  # the raw weights differ from the average (zeros)

    with _pinned("mark_averaged_weights_in_model"):
        compat.mark_averaged_weights_in_model(swap)
    swap.on_epoch_begin(0)

    assert not np.any(kernel.numpy()), _changed("SwapEMAWeights no longer swaps back at the epoch's start after "
                                                "being told the averaged weights are in the model",
                                                "mark_averaged_weights_in_model")


def test_loss_tracker_is_the_metric_fit_and_evaluate_log_as_loss():
    model = _tiny_dense_model()
    model.compile(optimizer="sgd", loss="mse")
    features, targets = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")

    with _pinned("loss_tracker"):
        tracker = compat.loss_tracker(model)
    logged = model.evaluate(features, targets, verbose=0, return_dict=True)

    assert tracker is not None and tracker.name == "loss", _changed("the loss tracker is gone or renamed",
                                                                    "loss_tracker")
    assert float(tracker.result()) == pytest.approx(logged["loss"]), _changed(
        "evaluate no longer logs the loss tracker's mean as `loss`", "loss_tracker")
    assert any(metric is tracker for metric in model.metrics), _changed(
        "the loss tracker is no longer one of Model.metrics (reset at every epoch)", "loss_tracker")
