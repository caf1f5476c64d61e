# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Inside recurrent networks: vanishing gradients, memory, clipping, and an RNN wired by hand
#
# Four small experiments that show why gated cells (LSTM, GRU) replaced the plain RNN and why training
# recurrent models clips gradients. Each one is a function in `pipeline.diagnostics` that writes a PNG and a
# JSON file; `python -m pipeline diagnose <experiment>` runs the same code from the command line. The
# settings below are shrunk so the notebook runs in well under a minute; the command line's defaults are
# in the comments.

# %% tags=["parameters"]
FIGURES = None  # folder for the PNG and JSON files; None: runs/diagnostics
SEED = 0
CELLS = ["simple_rnn", "lstm", "gru"]
STEPS = 40  # vanishing gradients: T, the length of the read sequence (default 50)
TRAINED_RUNS = []  # language-model run directories to compare instead of fresh models, e.g. ["runs/lm_char"]
DISTRACTORS = [2, 10, 30]  # long-range probe: values of N (default 5 20 50)
PROBE_TRAIN_STEPS = 60  # long-range probe: Adam steps per model (default 120)
CLIPPING_STEPS = 150  # clipping: SGD steps per run

# %% [markdown]
# ## Setup

# %%
import json
import os
import pathlib
import sys

if pathlib.Path.cwd().name == "notebooks" and pathlib.Path("../pipeline").is_dir():
    os.chdir("..")
sys.path.insert(0, os.getcwd())

from IPython import display

from pipeline.diagnostics import clipping
from pipeline.diagnostics import hand_wired
from pipeline.diagnostics import long_range
from pipeline.diagnostics import vanishing_gradients

figures_dir = FIGURES or os.path.join("runs", "diagnostics")

# %% [markdown]
# ## Backpropagation through time
# A recurrent network applies the same cell at every step: h_t = f(W h_{t-1} + U x_t + b). To train it, the
# framework unrolls the loop into one long feed-forward graph, one copy of the cell per time step with
# shared weights, and runs ordinary backpropagation through it: backpropagation through time (BPTT). The
# gradient of a loss at step T with respect to an earlier state is a product of one Jacobian per step in
# between:
#
#     dL_T/dh_t = dL_T/dh_T · (dh_T/dh_{T-1}) · (dh_{T-1}/dh_{T-2}) ··· (dh_{t+1}/dh_t)
#
# For a plain tanh RNN each factor is diag(1 - h_k²) W. When these factors shrink vectors, the product
# decays geometrically with the distance T - t and the early steps receive almost no learning signal
# (*vanishing* gradients); when they stretch vectors, it grows geometrically and one update can throw the
# weights far away (*exploding* gradients). The weight gradient sums the contributions of all steps, so
# nothing fails loudly: the model just cannot learn dependencies longer than its gradients reach. The
# experiments below measure both failures and the standard remedies, gated cells and gradient clipping.

# %% [markdown]
# ## Vanishing gradients
# How much can the prediction at the last step T still teach the hidden state at step t? The plot shows
# the norm of dL_T/dh_t against t for fresh one-layer language models reading the same random tokens.
# Going back one step multiplies the gradient by the step's Jacobian; for a plain RNN that is the
# recurrent matrix (spectral norm 1 at initialization) times tanh's slope, below 1 once the inputs push
# tanh out of its linear range, so the norm falls geometrically. Fresh gated cells forget as fast: their
# gates start half open. What an LSTM or GRU keeps is learned; pass trained language-model runs in
# `TRAINED_RUNS` to compare them after training.

# %%
report = vanishing_gradients.run(figures_dir, runs=TRAINED_RUNS, cells=CELLS, steps=STEPS, seed=SEED)
for name, entry in report["results"].items():
    spectrum = entry.get("recurrent_matrix", {})
    print(f"{name:>12}: ||dL/dh_1|| / ||dL/dh_T|| = {entry['first_to_last_ratio']:.2e}",
          ", ".join(f"{key} {value:.2f}" for key, value in spectrum.items()))
display.Image(report["png"])

# %% [markdown]
# Input scale decides the regime: with Keras' default tiny embeddings tanh stays almost linear, and a fresh
# plain RNN, whose recurrent matrix starts orthogonal, keeps its gradients over many steps, until training
# grows the inputs.

# %%
small_inputs = vanishing_gradients.run(os.path.join(figures_dir, "small_inputs"), cells=CELLS, steps=STEPS,
                                       input_scale=0.03, seed=SEED)
print({name: f"{entry['first_to_last_ratio']:.2e}" for name, entry in small_inputs["results"].items()})

# %% [markdown]
# ## Long-range memory
# Each sequence is a key token followed by N random distractors; a model reads it all and must name the
# key. Gradient descent can teach a cell to keep the key only as far back as gradients reach: the plain
# RNN falls to chance as N grows, the gated cells hold on.

# %%
report = long_range.run(figures_dir, cells=CELLS, distractors=DISTRACTORS, train_steps=PROBE_TRAIN_STEPS,
                        seed=SEED)
for cell, accuracies in report["results"].items():
    print(f"{cell:>12}: " + ", ".join(f"N={count}: {accuracy:.2f}" for count, accuracy in zip(DISTRACTORS, accuracies)))
display.Image(report["png"])

# %% [markdown]
# ## Gradient clipping
# The opposite failure: a linear RNN whose recurrent matrix has gain above 1 multiplies its gradients at
# every step. Plain SGD then overflows within a few updates; clipping the gradient's global norm to 1
# (`train.clipnorm` in the configs) keeps the same run training.

# %%
report = clipping.run(figures_dir, steps=CLIPPING_STEPS, seed=SEED)
for name, record in report["results"].items():
    if record["diverged_at"]:
        print(f"{name:>16}: diverged at step {record['diverged_at']}")
    else:  # averages over ten steps: single SGD steps are noisy
        print(f"{name:>16}: loss {sum(record['loss'][:10]) / 10:.0f} -> {sum(record['loss'][-10:]) / 10:.0f} "
              f"(first and last ten steps), gradient norm {sum(record['gradient_norm'][:10]) / 10:.0f} -> "
              f"{sum(record['gradient_norm'][-10:]) / 10:.0f}")
display.Image(report["png"])

# %% [markdown]
# ## An RNN wired by hand
# No training: two SimpleRNN units with hand-set weights act as logic gates, `remember = x_t` and
# `both = x_t AND x_{t-1}`, so the network outputs exactly 1 when the last two inputs were 1. Checked on
# every binary sequence up to length 8.

# %%
report = hand_wired.run(figures_dir)
results = report["results"]
print(json.dumps(results["weights"]))
print(f"{results['sequences']} sequences, {results['steps']} outputs, {results['wrong_steps']} wrong, "
      f"largest error {results['max_abs_error']}")
for example in results["examples"]:
    print("inputs ", " ".join(str(bit) for bit in example["inputs"]))
    print("outputs", " ".join(f"{value:g}" for value in example["outputs"]))

# %% [markdown]
# ## What to take away
# - BPTT is ordinary backpropagation on the unrolled network; the trouble is the product of one Jacobian
#   per step, which shrinks or grows geometrically with the distance it covers.
# - Vanishing gradients limit what a plain RNN can *learn* to remember, not what it could represent: the
#   hand-wired network keeps a bit exactly, but gradient descent does not find such weights across many
#   steps. LSTM and GRU add gates and an additive path for the state, along which gradients survive, and
#   pass the long-range probe where the plain cell falls to chance.
# - Exploding gradients are the opposite failure and have a cheap remedy: clip the gradient's norm.
# - Truncated BPTT (the language model notebook) bounds the cost of long streams by cutting the unrolled
#   graph into windows, and with it how far back any gradient reaches.
