"""A SimpleRNN wired by hand, no training: it outputs 1 exactly when the last two inputs were 1.

Two units with the `hard_sigmoid` activation, clip(z / 6 + 1/2, 0, 1), which is exactly 0 for z <= -3
and exactly 1 for z >= 3, so with weights of +-6 each unit is a logic gate and every value is exactly 0
or 1:

    remember_t = step(6 x_t - 3)                      = x_t          (the current input)
    both_t     = step(6 x_t + 6 remember_{t-1} - 9)   = x_t AND x_{t-1}
    output_t   = both_t                                (a Dense read-out with weights [0, 1], bias 0)

At t = 1 the previous state is 0, so the output is 0 until two inputs have been seen.
"""

import itertools
import os
import typing

import keras
import numpy as np

from pipeline.diagnostics import reports

GATE_WEIGHT = 6.0  # hard_sigmoid saturates exactly at pre-activations of +-3


def hand_wired_rnn() -> keras.Model:
    """Input [batch, time, 1] of 0/1 -> output [batch, time, 1], 1.0 exactly where x_t = x_{t-1} = 1."""
    model = keras.Sequential([
        keras.Input((None, 1)),
        keras.layers.SimpleRNN(2, activation="hard_sigmoid", return_sequences=True, name="gates"),
        keras.layers.Dense(1, name="read_out"),
    ], name="hand_wired_rnn")
    weight = GATE_WEIGHT
    model.get_layer("gates").set_weights([
        np.array([[weight, weight]], np.float32),  # input kernel (1, 2): x_t feeds both units
        np.array([[0.0, weight], [0.0, 0.0]], np.float32),  # recurrent kernel (2, 2): remember_{t-1} -> both_t
        np.array([-weight / 2, -1.5 * weight], np.float32),  # biases -3 and -9
    ])
    model.get_layer("read_out").set_weights([np.array([[0.0], [1.0]], np.float32), np.zeros([1], np.float32)])
    return model


def last_two_ones(bits: typing.Sequence[int]) -> list[int]:
    """The wanted output at every step: 1 where this input and the previous one are 1."""
    return [int(index > 0 and bits[index] == 1 and bits[index - 1] == 1) for index in range(len(bits))]


def check_all_sequences(model: keras.Model, max_length: int = 8) -> dict:
    """Runs every binary sequence of length 1..max_length and compares every step with `last_two_ones`.

    Returns:
        {"sequences": how many, "steps": outputs compared, "wrong_steps": outputs not exactly equal,
         "max_abs_error": the largest |output - wanted|, "examples": a few sequences with their outputs}.
    """
    totals = {"sequences": 0, "steps": 0, "wrong_steps": 0, "max_abs_error": 0.0, "examples": []}
    for length in range(1, max_length + 1):
        sequences = np.array(list(itertools.product((0, 1), repeat=length)), np.float32)  # (2^length, length)
        outputs = np.asarray(model(sequences[:, :, None]))[:, :, 0]  # (2^length, length)
        wanted = np.array([last_two_ones(row.astype(int)) for row in sequences], np.float32)
        totals["sequences"] += len(sequences)
        totals["steps"] += wanted.size
        totals["wrong_steps"] += int(np.sum(outputs != wanted))
        totals["max_abs_error"] = max(totals["max_abs_error"], float(np.max(np.abs(outputs - wanted))))
        if length == max_length:
            for row in (0, len(sequences) // 3, len(sequences) - 1):
                totals["examples"].append({"inputs": sequences[row].astype(int).tolist(),
                                           "outputs": outputs[row].tolist()})
    return totals


def run(output_dir: str, *, max_length: int = 8) -> dict:
    """Checks the hand-wired RNN on every binary sequence up to `max_length`; writes `hand_wired.json`.

    Returns:
        {"results": the check plus the weights, "json": path}.
    """
    model = hand_wired_rnn()
    results = check_all_sequences(model, max_length)
    input_kernel, recurrent_kernel, bias = model.get_layer("gates").get_weights()
    results["weights"] = {"input_kernel": input_kernel.tolist(), "recurrent_kernel": recurrent_kernel.tolist(),
                          "bias": bias.tolist(), "activation": "hard_sigmoid",
                          "read_out": model.get_layer("read_out").get_weights()[0][:, 0].tolist()}
    data = {"diagnosis": "hand-wired", "max_length": max_length, "results": results}
    return {"results": results, "json": reports.write_json(os.path.join(output_dir, "hand_wired.json"), data)}
