"""Vanishing gradients: how strongly the loss at the last step reaches back to each earlier hidden state.

For a language model read one token at a time, L_T is the cross-entropy of the prediction made at the last
step T and h_t the top layer's hidden state after step t. The norm of dL_T/dh_t, plotted against t, shows
how much the last prediction can still learn from step t. Going back one step multiplies the gradient by
the transposed step Jacobian: for a SimpleRNN U^T diag(tanh'), whose norm is at most ||U|| (1 for
Keras' orthogonal initialization) times tanh's slope (below 1 as soon as the inputs push tanh out of its
linear range), so the norm shrinks geometrically. An LSTM's cell state is updated additively, scaled only
by the forget gate, so its gradients shrink more slowly; how slowly is what training learns.
"""

import os
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline import run_files
from pipeline import tasks as tasks_lib
from pipeline.tasks import language_model
from pipeline.diagnostics import reports
from pipeline.models import recurrent_language_model

CELLS = ("simple_rnn", "lstm", "gru")
_RESERVED_IDS = 3  # padding, out-of-vocabulary and line break are never drawn as random inputs


def hidden_state_gradient_norms(model: recurrent_language_model.RecurrentLanguageModel, token_ids: np.ndarray,
                                labels: np.ndarray) -> np.ndarray:
    """||dL_T/dh_t|| for t = 1..T, averaged over the batch rows.

    Args:
        model: A recurrent language model (fresh or trained).
        token_ids: int [batch, T] inputs.
        labels: int [batch]: the token to predict after the last input (L_T is its cross-entropy).

    Returns:
        float [T]: entry t - 1 is the mean over rows of the L2 norm of the gradient with respect to the
        top layer's hidden state after step t (for an LSTM its output h, not the cell state c).
    """
    token_ids = tf.convert_to_tensor(token_ids, tf.int32)
    state = model.initial_state(int(token_ids.shape[0]))
    hidden_states = []
    with tf.GradientTape() as tape:
        for step in range(int(token_ids.shape[1])):
            logits, state = model.decode_step(token_ids[:, step], state)
            hidden_states.append(state[-1][0])  # (batch, units)
        # Summed, not averaged, over rows: each row's gradient is then its own loss's gradient.
        loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    gradients = tape.gradient(loss, hidden_states)
    return np.array([float(tf.reduce_mean(tf.norm(gradient, axis=-1))) for gradient in gradients])


def recurrent_matrix_spectrum(model: recurrent_language_model.RecurrentLanguageModel) -> dict:
    """Spectral radius (largest |eigenvalue|) and spectral norm (largest singular value) of the first
    layer's recurrent matrix, for a SimpleRNN model: h_t = tanh(W x_t + U h_{t-1} + b), the matrix U.

    Backpropagation multiplies the gradient by U^T and tanh's slope (<= 1) at every step, so a spectral
    norm below 1 guarantees geometric vanishing; a spectral radius above 1 allows explosion.
    """
    matrix = np.asarray(model.recurrent_layers[0].cell.recurrent_kernel)  # (units, units)
    return {"spectral_radius": float(np.max(np.abs(np.linalg.eigvals(matrix)))),
            "spectral_norm": float(np.linalg.norm(matrix, ord=2))}


def fresh_models(cells: typing.Sequence[str] = CELLS, *, vocabulary_size: int = 32, embedding_dim: int = 16,
                 units: int = 32, input_scale: float = 1.0, seed: int = 0) -> dict:
    """Untrained one-layer language models, one per cell, with Keras' initializers but the same embeddings.

    Every model is built right after seeding with `seed`, then gets the same embedding table drawn from
    N(0, input_scale^2). Input scale decides the regime: with entries of scale ~1, as trained embeddings
    have, tanh works in its curved range and a fresh SimpleRNN's gradients vanish quickly; with Keras'
    default tiny embeddings (uniform +-0.05, `input_scale` ~0.03) tanh stays almost linear, and with its
    orthogonal recurrent matrix a fresh SimpleRNN then preserves gradient norms over dozens of steps,
    while fresh LSTM/GRU gates, half open at initialization, forget faster.
    """
    embeddings = np.random.default_rng(seed).normal(0.0, input_scale, size=(vocabulary_size, embedding_dim))
    models = {}
    for cell in cells:
        keras.utils.set_random_seed(seed)
        model = recurrent_language_model.RecurrentLanguageModel(
            vocabulary_size, embedding_dim=embedding_dim, cell=cell, units=units, name=f"fresh_{cell}")
        model.build()
        model.embedding.embeddings.assign(embeddings.astype(np.float32))
        models[cell] = model
    return models


def random_inputs(vocabulary_size: int, *, batch_size: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random token ids [batch, steps] and next-token labels [batch] (reserved ids left out)."""
    generator = np.random.default_rng(seed)
    tokens = generator.integers(_RESERVED_IDS, vocabulary_size, size=(batch_size, steps + 1)).astype(np.int32)
    return tokens[:, :-1], tokens[:, -1]


def text_inputs(run_dir: str, *, batch_size: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows of a trained run's validation text as [batch, steps] inputs and [batch] labels.

    Raises:
        ValueError: The run is not a language model, or its validation text is too short.
    """
    config = run_files.load_run_config(run_dir)
    task = tasks_lib.create_task(config)
    if not isinstance(task, language_model.LanguageModelTask):
        raise ValueError(f"{run_dir}: a {config.task} run; vanishing-gradients needs language_model runs")
    token_ids = task.token_ids(task.load_preprocessing(run_dir), task.load_splits().splits["validation"].text)
    needed = batch_size * (steps + 1)
    if len(token_ids) < needed:
        raise ValueError(f"{run_dir}: the validation text has {len(token_ids)} tokens; "
                         f"{batch_size} windows of {steps + 1} need {needed} (lower --batch-size or --steps)")
    windows = token_ids[:needed].reshape(batch_size, steps + 1)
    return windows[:, :-1], windows[:, -1]


def vanishing_gradients(models: dict, inputs: dict) -> dict:
    """Gradient norms per model, plus the recurrent-matrix spectrum of SimpleRNN models.

    Args:
        models: Name -> language model.
        inputs: Name -> (token_ids [batch, T], labels [batch]); the same arrays for every fresh model.

    Returns:
        JSON-ready results: per name the `cell`, `gradient_norms` (t = 1..T), their ratio first/last
        (`first_to_last_ratio`, below 1 when gradients vanish going back), and for SimpleRNN the spectrum.
    """
    results = {}
    for name, model in models.items():
        token_ids, labels = inputs[name]
        norms = hidden_state_gradient_norms(model, token_ids, labels)
        entry = {"cell": model.cell, "gradient_norms": [reports.finite_or_none(value) for value in norms],
                 "first_to_last_ratio": reports.finite_or_none(norms[0] / norms[-1])}
        if model.cell == "simple_rnn":
            entry["recurrent_matrix"] = recurrent_matrix_spectrum(model)
        results[name] = entry
    return results


def run(output_dir: str, *, runs: typing.Sequence[str] = (), cells: typing.Sequence[str] = CELLS, steps: int = 50,
        batch_size: int = 16, units: int = 32, embedding_dim: int = 16, vocabulary_size: int = 32,
        input_scale: float = 1.0, seed: int = 0) -> dict:
    """Computes the gradient norms (fresh models of `cells`, or the trained `runs`) and writes a PNG and JSON.

    Returns:
        {"results": ..., "json": path, "png": path}.
    """
    if runs:
        models = {os.path.basename(os.path.normpath(run_dir)): run_files.load_trained_model(run_dir) for run_dir in runs}
        inputs = {name: text_inputs(run_dir, batch_size=batch_size, steps=steps)
                  for name, run_dir in zip(models, runs)}
    else:
        models = fresh_models(cells, vocabulary_size=vocabulary_size, embedding_dim=embedding_dim, units=units,
                              input_scale=input_scale, seed=seed)
        shared = random_inputs(vocabulary_size, batch_size=batch_size, steps=steps, seed=seed)
        inputs = {name: shared for name in models}
    results = vanishing_gradients(models, inputs)
    settings = {"steps": steps, "batch_size": batch_size, "seed": seed, "models": "trained" if runs else "fresh"}
    if not runs:
        settings.update(units=units, embedding_dim=embedding_dim, vocabulary_size=vocabulary_size,
                        input_scale=input_scale)
    data = {"diagnosis": "vanishing-gradients", "settings": settings, "results": results}
    time_axis = list(range(1, steps + 1))
    png = reports.line_plot(
        os.path.join(output_dir, "vanishing_gradients.png"),
        {name: (time_axis, entry["gradient_norms"]) for name, entry in results.items()},
        title=f"||dL_T/dh_t|| for T = {steps} ({settings['models']} models)", xlabel="step t",
        ylabel="gradient norm (log scale)", log_y=True)
    return {"results": results, "json": reports.write_json(os.path.join(output_dir, "vanishing_gradients.json"), data),
            "png": png}
