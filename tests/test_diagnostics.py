"""RNN internals: hand-wired RNN, vanishing gradients, long-range probe, clipping, and the diagnose verb."""

import json

import numpy as np
import pytest
import tensorflow as tf

import helpers
from pipeline.diagnostics import clipping
from pipeline.diagnostics import hand_wired
from pipeline.diagnostics import long_range
from pipeline.diagnostics import vanishing_gradients

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(8) == PNG_SIGNATURE


# === Hand-wired RNN ===


def test_hand_wired_rnn_is_exact_on_every_binary_sequence_up_to_length_8():
    model = hand_wired.hand_wired_rnn()

    result = hand_wired.check_all_sequences(model, max_length=8)

    assert result["sequences"] == 2 + 4 + 8 + 16 + 32 + 64 + 128 + 256
    assert result["wrong_steps"] == 0 and result["max_abs_error"] == 0.0
    input_kernel, recurrent_kernel, bias = model.get_layer("gates").get_weights()
    assert input_kernel.tolist() == [[6.0, 6.0]] and recurrent_kernel.tolist() == [[0.0, 6.0], [0.0, 0.0]]
    assert bias.tolist() == [-3.0, -9.0]
    outputs = np.asarray(model(np.array([[[1], [1], [0], [1], [1], [1]]], np.float32)))[0, :, 0]
    assert outputs.tolist() == [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]


def test_the_rule_itself():
    assert hand_wired.last_two_ones([1, 1, 1, 0, 1]) == [0, 1, 1, 0, 0]
    assert hand_wired.last_two_ones([1]) == [0]


# === Vanishing gradients ===


def test_last_step_gradient_matches_the_softmax_formula():
    model = vanishing_gradients.fresh_models(["gru"], units=8, seed=1)["gru"]
    token_ids, labels = vanishing_gradients.random_inputs(32, batch_size=3, steps=6, seed=1)

    norms = vanishing_gradients.hidden_state_gradient_norms(model, token_ids, labels)

    # dL_T/dh_T = W_out (softmax(logits_T) - onehot(label)) for the logits W_out^T h_T + b.
    logits = model.run(token_ids)[0][:, -1]
    residual = tf.nn.softmax(logits) - tf.one_hot(labels, 32)
    expected = tf.norm(tf.matmul(residual, model.output_projection.kernel, transpose_b=True), axis=-1)
    assert norms.shape == (6,)
    assert norms[-1] == pytest.approx(float(tf.reduce_mean(expected)), rel=1e-5)


def test_fresh_simple_rnn_gradients_vanish_faster_than_lstm_on_the_same_inputs():
    models = vanishing_gradients.fresh_models(units=16, seed=0)
    inputs = vanishing_gradients.random_inputs(32, batch_size=8, steps=30, seed=0)

    results = vanishing_gradients.vanishing_gradients(models, {name: inputs for name in models})

    simple, lstm = results["simple_rnn"], results["lstm"]
    assert simple["first_to_last_ratio"] < 1e-3  # geometric decay over 30 steps
    assert lstm["gradient_norms"][0] > 10 * simple["gradient_norms"][0]
    assert all(a >= b for a, b in zip(simple["gradient_norms"][1:], simple["gradient_norms"]))  # decays monotonically
    # Keras initializes the recurrent matrix orthogonally: all eigenvalues and singular values have modulus 1.
    assert simple["recurrent_matrix"]["spectral_radius"] == pytest.approx(1.0, abs=1e-4)
    assert simple["recurrent_matrix"]["spectral_norm"] == pytest.approx(1.0, abs=1e-4)


def test_a_contracting_recurrent_matrix_has_a_small_spectral_radius_and_faster_vanishing():
    models = vanishing_gradients.fresh_models(["simple_rnn"], units=16, seed=0, input_scale=0.03)
    model = models["simple_rnn"]
    inputs = vanishing_gradients.random_inputs(32, batch_size=4, steps=20, seed=0)
    near_linear = vanishing_gradients.vanishing_gradients(models, {"simple_rnn": inputs})["simple_rnn"]

    kernel = model.recurrent_layers[0].cell.recurrent_kernel
    kernel.assign(0.5 * kernel)
    contracted = vanishing_gradients.vanishing_gradients(models, {"simple_rnn": inputs})["simple_rnn"]

    assert near_linear["first_to_last_ratio"] > 0.1  # tiny inputs, orthogonal matrix: gradients barely shrink
    assert contracted["recurrent_matrix"]["spectral_radius"] == pytest.approx(0.5, abs=1e-4)
    assert contracted["first_to_last_ratio"] < 0.5 ** 18  # each step multiplies by at most 0.5


def test_vanishing_gradients_run_writes_png_and_json(tmp_path):
    report = vanishing_gradients.run(str(tmp_path), steps=8, batch_size=2, units=8)

    data = json.loads(open(report["json"]).read())
    assert set(data["results"]) == {"simple_rnn", "lstm", "gru"} and _is_png(report["png"])
    assert all(len(entry["gradient_norms"]) == 8 for entry in data["results"].values())
    assert "spectral_radius" in data["results"]["simple_rnn"]["recurrent_matrix"]


# === Long-range probe ===


def test_distractor_sequences_put_the_key_first_and_pad_short_rows_on_the_left():
    inputs, labels = long_range.distractor_sequences(6, 50, seed=0, mixed_lengths=True)

    assert inputs.shape == (50, 7)
    for row, label in zip(inputs, labels):
        real = row[row > 0]
        assert real[0] == label + 1 and np.all(real[1:] > long_range.KEYS)
        assert np.all(row[:len(row) - len(real)] == 0)  # padding only on the left


@pytest.mark.slow
def test_long_range_probe_simple_rnn_fails_far_back_while_gated_cells_hold(tmp_path):
    report = long_range.run(str(tmp_path), cells=["simple_rnn"], distractors=[2], train_steps=100)
    far = {cell: long_range.probe_accuracy(cell, 40, train_steps=100) for cell in ("simple_rnn", "lstm", "gru")}

    assert report["results"]["simple_rnn"][0] >= 0.9  # a short lag is learned
    assert far["simple_rnn"] < 0.6  # chance is 0.25
    assert far["lstm"] >= 0.9 and far["gru"] >= 0.9
    assert _is_png(report["png"]) and json.loads(open(report["json"]).read())["chance"] == 0.25


# === Gradient clipping ===


def test_clipping_keeps_an_exploding_rnn_training_that_diverges_without_it(tmp_path):
    report = clipping.run(str(tmp_path), steps=60)

    without, clipped = report["results"]["without_clipping"], report["results"]["with_clipnorm"]
    assert without["diverged_at"] is not None and without["diverged_at"] <= 10
    assert without["gradient_norm"][0] > 100  # the exploding setup: huge gradients from the first step
    assert clipped["diverged_at"] is None and len(clipped["loss"]) == 60
    assert np.mean(clipped["loss"][-10:]) < np.mean(clipped["loss"][:10])
    assert _is_png(report["png"])


# === The diagnose verb ===


def test_diagnose_hand_wired_verb_prints_a_summary_and_writes_json(tmp_path):
    process = helpers.run_cli("diagnose", "hand-wired", "--max-length", "5", "--output", str(tmp_path))

    assert process.returncode == 0, process.stderr[-2000:]
    summary = json.loads(process.stdout.splitlines()[0])
    assert summary == {"sequences": 62, "steps": 258, "wrong_steps": 0, "max_abs_error": 0.0}
    assert process.stdout.splitlines()[1] == str(tmp_path / "hand_wired.json")


def test_diagnose_rejects_bad_options_and_run_directories_with_one_line(tmp_path):
    bad_value = helpers.run_cli("diagnose", "long-range", "--distractors", "0")
    not_a_run = helpers.run_cli("diagnose", "vanishing-gradients", "--runs", str(tmp_path))

    assert bad_value.returncode == 2 and "--distractors: must be a positive integer" in bad_value.stderr
    assert not_a_run.returncode == 2
    assert not_a_run.stderr.strip().splitlines()[-1] == f"error: {tmp_path}: not a run directory (no config.yaml); train first"
