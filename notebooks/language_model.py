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
# A recurrent language model reads text one character (or word) at a time and predicts the next one;
# trained with truncated backpropagation through time over the text as one stream, it is scored by
# perplexity and bits per character, and writes text by sampling its own predictions. The tiny config
# trains on generated story lines ("anna has four shells . at the market she gives one to tom . now anna
# has three shells .") whose pronouns and counts take memory to get right.

# %% tags=["parameters"]
CONFIG = "configs/tiny/lm.yaml"  # real data: "configs/lm_char.yaml" (English captions of ../shared/data/multi30k)
OVERRIDES = []  # `--set`-style overrides, e.g. ["train.epochs=2", "model.cell=lstm"]
FIGURES = None  # folder for the figures; None: <run_dir>/figures

# %% [markdown]
# ## Setup
# Paths in configs are relative to the repository root, so the notebook runs from there (as the command
# line does) when it was opened from `notebooks/`.

# %%
import json
import os
import pathlib
import sys

if pathlib.Path.cwd().name == "notebooks" and pathlib.Path("../pipeline").is_dir():
    os.chdir("..")
sys.path.insert(0, os.getcwd())

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
# ## Train
# Each batch row continues where the same row of the previous batch stopped, and the state is carried
# over (`train.carry_state`), so the model learns from contexts longer than one window.

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "language_model_training_curves.png")))

# %% [markdown]
# ## Evaluate
# Perplexity is the model's average branching factor: a model that knows nothing scores the vocabulary
# size (`uniform_perplexity`). Bits per character is the same figure on a log scale.

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print(f"{split_name}: perplexity {metrics['perplexity']:.2f} (uniform {metrics['uniform_perplexity']:.0f}), "
      f"{metrics['bits_per_token']:.3f} bits per {metrics['level']}, next-{metrics['level']} accuracy "
      f"{metrics['accuracy']:.3f} over {metrics['tokens']:,} {metrics['level']}s")

# %% [markdown]
# ## Export and write
# The export carries the vocabulary and the decoding loop; its `greedy`, `beam` and `sample` signatures
# take raw prompts. Low temperatures pick the likeliest characters (safe, repetitive), high ones take
# more risks.

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

# %%
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = {"default": rest.generate(prompts), "sample": rest.generate(prompts, mode="sample", temperature=0.8)}
for mode, rows in served.items():
    for row in rows:
        print(f"{mode:>7} {row['score']:7.2f}  {json.dumps(row['text'])}")
