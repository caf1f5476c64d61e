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
# # Sequence tagging: one tag per token
#
# A bidirectional recurrent tagger with character features labels every token (part of speech, or BIO
# spans for named entities). The tiny config uses generated sentences in which words such as *book* or
# *train* are nouns after a determiner and verbs after a pronoun, so only the context tells.

# %% tags=["parameters"]
CONFIG = "configs/tiny/tagging.yaml"  # real data: "configs/tagging_ud_en_ewt.yaml" (../shared/data/ud_english_ewt)
#                                       or "configs/tagging_ud_tfds.yaml" (TFDS universal_dependencies, downloads)
OVERRIDES = []  # `--set`-style overrides, e.g. ["train.epochs=5", "model.char_encoder=bilstm"]
FIGURES = None  # folder for the figures; None: <run_dir>/figures

# %% [markdown]
# ## Setup
# Paths in configs are relative to the repository root, so the notebook runs from there (as the command
# line does) when it was opened from `notebooks/`.

# %%
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

# %%
task = tasks.create_task(config)
splits = task.load_splits()
print({name: len(split) for name, split in splits.splits.items()}, "tags:", splits.tag_names)
train_split = splits.splits["train"]
for tokens, tag_ids in list(zip(train_split.tokens, train_split.tag_ids))[:4]:
    print(" ".join(f"{token}/{splits.tag_names[tag]}" for token, tag in zip(tokens, tag_ids)))

# %% [markdown]
# ## Train

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "tagging_training_curves.png")))

# %% [markdown]
# ## Evaluate
# Token accuracy, accuracy on words outside the training vocabulary, and per-tag scores.

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print({key: value for key, value in metrics.items() if isinstance(value, (int, float))})

# %% [markdown]
# ## Export and predict
# Predictions of the export on held-out sentences, next to the gold tags; wrong tags are red.

# %%
export_path = export.export_run(run_dir)
held_out = splits.splits[split_name]
texts = [" ".join(tokens) for tokens in held_out.tokens[:6]]
predicted = list(predict.predict_rows(predict.load_export(export_path), texts))
table = [{"tokens": row["tokens"], "predicted": row["tags"],
          "gold": [splits.tag_names[tag] for tag in tag_ids][:len(row["tags"])]}
         for row, tag_ids in zip(predicted, held_out.tag_ids)]
display.Image(plots.tagging_table(table, os.path.join(figures_dir, "tagging_predictions.png")))

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself.

# %%
sentences = ["we book the old train", "the duck can train the dog"]
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = rest.tag(sentences)
for row in served:
    print(" ".join(f"{token}/{tag}" for token, tag in zip(row["tokens"], row["tags"])))
