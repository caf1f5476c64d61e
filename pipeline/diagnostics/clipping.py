"""Gradient clipping shown on an exploding setup: the global gradient norm per step with and without clipnorm.

The setup explodes by construction: a linear SimpleRNN whose recurrent matrix is orthogonal times
`gain` > 1 multiplies its state, and its gradients, by up to `gain` per step, so over 40 steps the
gradient norm is in the thousands. Plain SGD then takes steps so large that the weights overflow within
a few updates; with Keras' `clipnorm` each gradient is rescaled to at most that norm before the update,
and the same run trains.
"""

import math
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline.diagnostics import reports

_FEATURES = 4


def exploding_rnn(*, units: int, gain: float, sequence_length: int) -> keras.Model:
    """A linear SimpleRNN (recurrent matrix: orthogonal x `gain`) and a linear read-out."""
    return keras.Sequential([
        keras.Input((sequence_length, _FEATURES)),
        keras.layers.SimpleRNN(units, activation="linear",
                               recurrent_initializer=keras.initializers.Orthogonal(gain=gain)),
        keras.layers.Dense(1),
    ], name="exploding_rnn")


def adding_data(count: int, sequence_length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs [count, time, features]; the target is the sum of the first feature over time."""
    inputs = np.random.default_rng(seed).normal(size=(count, sequence_length, _FEATURES)).astype(np.float32)
    return inputs, inputs[:, :, 0].sum(axis=1, keepdims=True)


def train_and_record(clipnorm: typing.Optional[float], *, steps: int = 150, sequence_length: int = 40,
                     units: int = 32, gain: float = 1.05, learning_rate: float = 0.003, batch_size: int = 16,
                     seed: int = 0) -> dict:
    """SGD on the adding task, recording per step the loss and the global norm of the raw gradients.

    Returns:
        {"clipnorm", "loss": [...], "gradient_norm": [...], "diverged_at": the first step whose loss or
        gradient is not finite (None when training stayed finite)}. Recording stops at divergence.
    """
    keras.utils.set_random_seed(seed)
    model = exploding_rnn(units=units, gain=gain, sequence_length=sequence_length)
    optimizer = keras.optimizers.SGD(learning_rate, clipnorm=clipnorm)
    optimizer.build(model.trainable_variables)
    inputs, targets = adding_data(steps * batch_size, sequence_length, seed)

    @tf.function
    def train_step(batch_inputs, batch_targets):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch_inputs, training=True) - batch_targets))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)  # clips each gradient first when clipnorm is set
        return loss, tf.linalg.global_norm(gradients)

    record = {"clipnorm": clipnorm, "loss": [], "gradient_norm": [], "diverged_at": None}
    for step in range(steps):
        rows = slice(step * batch_size, (step + 1) * batch_size)
        loss, norm = (float(value) for value in train_step(inputs[rows], targets[rows]))
        record["loss"].append(reports.finite_or_none(loss))
        record["gradient_norm"].append(reports.finite_or_none(norm))
        if not (math.isfinite(loss) and math.isfinite(norm)):
            record["diverged_at"] = step + 1
            break
    return record


def gradient_clipping(clipnorm: float = 1.0, **settings) -> dict:
    """The same run without and with `clipnorm`: {"without_clipping": record, "with_clipnorm": record}."""
    return {"without_clipping": train_and_record(None, **settings),
            "with_clipnorm": train_and_record(clipnorm, **settings)}


def run(output_dir: str, *, clipnorm: float = 1.0, steps: int = 150, sequence_length: int = 40, units: int = 32,
        gain: float = 1.05, learning_rate: float = 0.003, batch_size: int = 16, seed: int = 0) -> dict:
    """Runs both trainings and writes `clipping.png` (gradient norm and loss per step) and `clipping.json`.

    Returns:
        {"results": ..., "json": path, "png": path}.
    """
    settings = {"steps": steps, "sequence_length": sequence_length, "units": units, "gain": gain,
                "learning_rate": learning_rate, "batch_size": batch_size, "seed": seed}
    results = gradient_clipping(clipnorm, **settings)
    names = {"without_clipping": "no clipping", "with_clipnorm": f"clipnorm={clipnorm:g}"}

    def series(key):
        return {f"{names[run_name]}" + (f" (diverged at step {record['diverged_at']})" if record["diverged_at"] else ""):
                (list(range(1, len(record[key]) + 1)), record[key]) for run_name, record in results.items()}

    png = reports.line_plot(
        os.path.join(output_dir, "clipping.png"), series("gradient_norm"),
        title=f"Global gradient norm before clipping (linear SimpleRNN, gain {gain:g}, SGD)", xlabel="step",
        ylabel="gradient norm (log scale)", log_y=True,
        subplots=[{"series": series("loss"), "title": "Training loss (mean squared error)", "xlabel": "step",
                   "ylabel": "loss (log scale)", "log_y": True}])
    data = {"diagnosis": "clipping", "settings": {**settings, "clipnorm": clipnorm}, "results": results}
    return {"results": results, "json": reports.write_json(os.path.join(output_dir, "clipping.json"), data),
            "png": png}
