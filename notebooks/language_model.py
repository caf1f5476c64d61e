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
# # Language model: predict the next character, then write
#
# A language model reads text one token (here: one character) at a time and, at every position, predicts
# the next one. It is a many-to-many network whose labels are its own inputs shifted by one step, so any text
# is training data and no labelling is needed. Trained, it scores text (how surprised is it?) and writes
# text, by sampling its own predictions one character after another.
#
# The generated story lines used here take memory to get right: "anna has four shells . at the market she
# gives one to tom . now anna has three shells ." The pronoun must match the name, the place must be one
# of a few, and the final count must be the first count minus one, thirty characters later. By default the
# notebook runs offline in well under a minute on 2 CPU cores.

# %% tags=["parameters"]
CONFIG = "configs/tiny/lm.yaml"  # real data: "configs/lm_char.yaml" (English captions of ../shared/data/multi30k)
OVERRIDES = []  # `--set`-style overrides, e.g. ["train.epochs=2", "model.cell=lstm"]
FIGURES = None  # folder for the figures; None: <run_dir>/figures

# %% [markdown]
# ## Setup
# Paths in configs are relative to the working directory; the notebook moves to the repository root when it
# was opened from `notebooks/`, as the command line would run there.

# %%
import json
import os
import pathlib
import sys

if pathlib.Path.cwd().name == "notebooks" and pathlib.Path("../pipeline").is_dir():
    os.chdir("..")
sys.path.insert(0, os.getcwd())

import numpy as np
from IPython import display

from pipeline import predict
from pipeline import config as config_lib
from pipeline import export
from pipeline import plots
from pipeline import run_files
from pipeline import tasks
from pipeline import training
from serving import launcher

config = config_lib.load_config([CONFIG], OVERRIDES)
print(f"{config.name}: {config.task}, run directory {config.run_dir}")

# %% [markdown]
# ## Data
# The text of each split is one stream; the vocabulary (characters here) comes from the training text.

# %%
task = tasks.create_task(config)
splits = task.load_splits()
print({name: f"{len(split):,} characters" for name, split in splits.splits.items()})
print("\n".join(splits.splits["train"].text.splitlines()[:4]))

# %% [markdown]
# ## Training through time, truncated
# The model is an embedding, a GRU and a softmax over the characters, applied at every position. The loss
# at step *t* depends on every earlier input through the chain of hidden states, so its gradient has to flow
# back through all of them: **backpropagation through time** (BPTT) unrolls the network over the sequence
# and runs ordinary backpropagation through the unrolled graph. Each step back multiplies the gradient by
# that step's Jacobian, which is why it tends to shrink (vanish) or grow (explode) over long spans; the RNN
# internals notebook measures this.
#
# A stream of a hundred thousand characters cannot be unrolled whole. **Truncated BPTT** cuts it into windows
# of `train.tbptt_steps` characters (50 here) and backpropagates within each window only. With
# `train.carry_state` each batch row continues where the same row of the previous batch stopped, and the
# final state of one window becomes the initial state of the next: the forward pass sees unlimited context,
# while gradients reach back at most one window. A story line is shorter than a window, so the count can be
# learned.

# %% [markdown]
# ## Train

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "language_model_training_curves.png")))

# %% [markdown]
# ## Evaluate
# Perplexity is exp(mean cross-entropy): the model's average branching factor, the number of characters it is
# as unsure between as if it picked uniformly among them. A model that knows nothing scores the vocabulary
# size (`uniform_perplexity`); 1 would be perfect prediction. Bits per character is the same figure on a log
# scale, log2(perplexity).

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print(f"{split_name}: perplexity {metrics['perplexity']:.2f} (uniform {metrics['uniform_perplexity']:.0f}), "
      f"{metrics['bits_per_token']:.3f} bits per {metrics['level']}, next-{metrics['level']} accuracy "
      f"{metrics['accuracy']:.3f} over {metrics['tokens']:,} {metrics['level']}s")

# %% [markdown]
# ## Sampling temperature
# To write, the model turns its logits z into probabilities with a softmax and draws the next character.
# Dividing the logits by a temperature T first, softmax(z / T), reshapes the distribution: T < 1 sharpens it
# towards the likeliest character (T → 0 is greedy decoding), T = 1 samples the model's own distribution, and
# T > 1 flattens it towards uniform. Below, the model has read a story up to the count it must compute
# (four minus one: *three*) and gives its five likeliest next characters at three temperatures. Look at the
# weight on 't', the right answer, against the first letters of the other numbers, and at how the
# temperature moves weight between them.

# %%
model = run_files.load_trained_model(run_dir)
preprocessing = task.load_preprocessing(run_dir)
prompt = "anna has four shells . at the market she gives one to tom . now anna has "
token_ids = task.token_ids(preprocessing, prompt)
state = model.encode(token_ids[None, :-1])
logits = np.asarray(model.decode_step(token_ids[-1:], state)[0])[0]  # (vocabulary,)
print(f"after {prompt!r}:")
for temperature in (0.5, 1.0, 2.0):
    scaled = logits / temperature
    probabilities = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
    top = np.argsort(-probabilities)[:5]
    print(f"  T = {temperature}: " + ", ".join(f"{preprocessing.vocabulary[index]!r} {probabilities[index]:.3f}"
                                               for index in top))

# %% [markdown]
# ## Export and write
# The export carries the vocabulary and the decoding loop; its `greedy`, `beam` and `sample` signatures
# take raw prompts. Greedy decoding is safe but can repeat itself; low temperatures stay close to it, and
# high ones take more risks, until spelling and story fall apart.

# %%
export_path = export.export_run(run_dir)
sample_inputs = run_files.load_sample_inputs(run_dir)  # "", openings of validation lines, demo prompts
prompts = sample_inputs[:1] + sample_inputs[-3:]
continuations = {"greedy": [row["continuation"] for row in predict.predict_rows(predict.load_export(export_path, "greedy"),
                                                                             prompts)]}
sample = predict.load_export(export_path, "sample")
for temperature in (0.5, 1.0, 1.5):
    continuations[f"T = {temperature}"] = [row["continuation"]
                                           for row in predict.predict_rows(sample, prompts, temperature=temperature)]
display.Image(plots.generated_text_table(prompts, continuations,
                                         os.path.join(figures_dir, "language_model_samples.png")))

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself.

# %% tags=["serve"]
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = {"default": rest.generate(prompts), "sample": rest.generate(prompts, mode="sample", temperature=0.8)}
for mode, rows in served.items():
    for row in rows:
        print(f"{mode:>7} {row['score']:7.2f}  {json.dumps(row['text'])}")

# %% [markdown]
# ## Things to try
# - `train.carry_state=false`: every window starts from a zero state, so a line cut by a window boundary
#   loses its beginning.
# - `model.cell=simple_rnn` or `model.cell=lstm`: compare the perplexity and the counts in the samples.
# - Real text: `configs/lm_char.yaml` trains on English image descriptions.
