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
# # Sentiment classification: train, evaluate, export, serve
#
# One YAML config drives everything: the data, a recurrent classifier, training, evaluation and a
# SavedModel that TensorFlow Serving serves as it is (raw text in, label out). The tiny config trains in
# seconds on synthetic reviews; switch `CONFIG` to a real one below.

# %% tags=["parameters"]
CONFIG = "configs/tiny/sentiment.yaml"  # real data: "configs/sentiment_imdb_files.yaml" (../shared/data/imdb)
#                                         or "configs/sentiment_imdb.yaml" (TFDS imdb_reviews, downloads)
OVERRIDES = []  # `--set`-style overrides, e.g. ["train.epochs=3", "model.cell=lstm"]
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
# The task reads the splits the config names; here are a few training examples.

# %%
task = tasks.create_task(config)
splits = task.load_splits()
print({name: len(split) for name, split in splits.splits.items()}, "classes:", splits.label_names)
train_split = splits.splits["train"]
for text, label in list(zip(train_split.texts, train_split.labels))[:5]:
    print(f"{splits.label_names[label]:>10}  {text[:100]}")

# %% [markdown]
# ## Train
# `training.train` fits with checkpoints (a second run resumes), early stopping and logs, then evaluates
# the best model on the held-out splits.

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "sentiment_training_curves.png")))

# %% [markdown]
# ## Evaluate

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print(f"{split_name}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}")
display.Image(plots.confusion_matrix(metrics["confusion_matrix"], splits.label_names,
                                     os.path.join(figures_dir, "sentiment_confusion_matrix.png"),
                                     title=f"{config.name} ({split_name})"))

# %% [markdown]
# ## Export and predict
# The export is a self-contained SavedModel (vocabulary and label names inside the graph), written
# atomically to `exports/<model_name>/<version>/`. Predictions below come from the export alone.

# %%
export_path = export.export_run(run_dir)
texts = ["the acting was not very good", "the music was extremely good", "a dull and boring film"]
for row in predict.predict_rows(predict.load_export(export_path), texts):
    print(json.dumps(row))

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself.

# %%
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = rest.classify(texts)
for text, row in zip(texts, served):
    print(f"{row['label']:>10} {row['score']:.3f}  {text}")
