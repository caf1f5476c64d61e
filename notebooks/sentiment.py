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
# # Sentiment classification: a many-to-one recurrent network
#
# A recurrent network reads a sequence one element at a time and carries a hidden state from step to step.
# What it outputs depends on the task. Sentiment classification is **many-to-one**: the whole review goes in,
# one label comes out. Tagging (the tagging notebook) is **many-to-many**: one output per input token.
# Translation and captioning generate a new sequence of their own length.
#
# This notebook trains a GRU classifier end to end with the `pipeline` toolkit: one YAML config drives the
# data, the model, training, evaluation and a SavedModel that TensorFlow Serving serves as it is (raw text in,
# label out). By default it runs offline on generated reviews in about a minute on 2 CPU cores.
#
# The generated reviews are built so that a bag of words cannot classify them. Each review opens with one or
# two opinion clauses ("the acting was not very good") and ends with 10 to 40 words of neutral filler
# ("it was shown in the city"). *not* and *never* flip the adjective that follows, *very* doubles its weight,
# *slightly* halves it, and with two clauses the stronger one wins. The model has to read words in order and
# remember what it read across the filler.

# %% tags=["parameters"]
CONFIG = "configs/tiny/sentiment.yaml"  # real data: "configs/sentiment_imdb_files.yaml" (../shared/data/imdb)
#                                         or "configs/sentiment_imdb.yaml" (TFDS imdb_reviews, downloads)
# `--set`-style overrides. These grow the tiny config (sized for quick tests) until it learns the task;
# empty the list when CONFIG is a real config.
OVERRIDES = ["data.synthetic_examples=1500", "train.epochs=6", "model.units=32", "model.embedding_dim=24",
             "model.pooling=max"]
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
from pipeline.data import synthetic
from serving import launcher

config = config_lib.load_config([CONFIG], OVERRIDES)
print(f"{config.name}: {config.task}, run directory {config.run_dir}")
print(f"model: {config.model.cell} with {config.model.units} units, {config.model.embedding_dim}-dimensional "
      f"embeddings, {config.model.pooling} pooling; {config.train.epochs} epochs")

# %% [markdown]
# ## Data
# The task reads the splits the config names (here it generates them) and holds out a test split that
# training never sees. Next to each training review is the score of the rule that labelled it: the sum of
# its clauses' polarities, weighted by their modifiers and flipped by negations.

# %%
task = tasks.create_task(config)
splits = task.load_splits()
print({name: len(split) for name, split in splits.splits.items()}, "classes:", splits.label_names)
train_split = splits.splits["train"]
for text, label in list(zip(train_split.texts, train_split.labels))[:6]:
    print(f"{splits.label_names[label]:>9} {synthetic.sentiment_score(text):+5.1f}  {text[:90]}")

# %% [markdown]
# ## The model
# Four layers, each with a job:
#
# 1. **Embedding.** Every word in the vocabulary gets its own vector (`model.embedding_dim` numbers), a row
#    of a trainable table. At the start the rows are random; training moves words that play the same role
#    close together, so *great* and *superb* end up with similar vectors. A word id is a name; an embedding
#    is a description the network can compute with.
# 2. **GRU.** At step *t* the cell combines the word vector x_t with its previous state h_{t-1} into a new
#    state h_t. Its update gate decides how much of the old state to keep, which lets it hold "the acting was
#    not" until the adjective arrives, and keep the verdict through the filler. The same weights are used at
#    every step, so the network reads reviews of any length.
# 3. **Pooling.** Many-to-one needs one vector per review. `last` takes the final state h_T and leaves it to
#    the GRU to carry the opinion across up to 40 filler words. `max` (used here) takes, for each unit, the
#    largest value it reached at any step: a unit that fires on the opinion clause keeps its value however
#    long the filler. With `model.pooling=last` and the same settings, the model is still at chance after six
#    epochs.
# 4. **Dense softmax.** Turns the pooled vector into one probability per class.
#
# Training minimizes the cross-entropy of the true class. The gradient of that loss flows back through the
# pooling and the GRU steps to the embeddings: backpropagation through time (the RNN internals notebook shows
# what happens to it over many steps).

# %% [markdown]
# ## Train
# `training.train` fits with checkpoints (a second run resumes), logs and early stopping when configured,
# then evaluates the best model on the held-out splits and writes `metrics.json`. In the curves, look for
# the loss falling on both splits and validation accuracy leaving 0.5 (chance on balanced classes). A
# training loss that keeps falling while the validation loss rises would mean memorization (overfitting).

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "sentiment_training_curves.png")))

# %% [markdown]
# ## Evaluate
# Accuracy and macro-F1 on the test split. In the confusion matrix, rows are the true classes and columns
# the predicted ones: everything on the diagonal is right. A model stuck at chance puts almost everything
# into one column.

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print(f"{split_name}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} "
      f"on {metrics['examples']} reviews")
display.Image(plots.confusion_matrix(metrics["confusion_matrix"], splits.label_names,
                                     os.path.join(figures_dir, "sentiment_confusion_matrix.png"),
                                     title=f"{config.name} ({split_name})"))

# %% [markdown]
# ## What the embeddings learned
# Each word's row of the embedding table, compared by cosine similarity (1: same direction). Nobody told the
# model which words are adjectives or which are positive, yet the nearest neighbours of an opinion word are
# words of the same polarity, and the modifiers group together: the labels alone shaped the vectors.

# %%
model = run_files.load_trained_model(run_dir)
vocabulary = task.load_preprocessing(run_dir).vocabulary
table = model.get_layer("token_embedding").get_weights()[0]  # (vocabulary, embedding_dim)
unit_rows = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-9)
for word in ("good", "boring", "very", "not"):
    similarities = unit_rows @ unit_rows[vocabulary.index(word)]
    nearest = [index for index in np.argsort(-similarities) if vocabulary[index] != word][:5]
    print(f"{word:>7}: " + ", ".join(f"{vocabulary[index]} {similarities[index]:.2f}" for index in nearest))

# %% [markdown]
# ## Export and predict
# The export is a self-contained SavedModel (vocabulary and label names inside the graph), written
# atomically to `exports/<model_name>/<version>/`. The predictions below come from the export alone, next to
# the rule's verdict. The last review needs both negation and weighing: "slightly bad" (-0.5) loses to "not
# very bad" (+2).

# %%
export_path = export.export_run(run_dir)
texts = ["the acting was not very good", "the music was extremely good it was shown in the city",
         "the plot was never boring", "the ending was slightly bad but the cast was not very bad"]
for text, row in zip(texts, predict.predict_rows(predict.load_export(export_path), texts)):
    rule = synthetic.label_for_score(synthetic.sentiment_score(text))
    print(f"{row['label']:>9} {row['score']:.3f} (rule: {rule})  {text}")

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself.

# %% tags=["serve"]
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = rest.classify(texts)
for text, row in zip(texts, served):
    print(f"{row['label']:>9} {row['score']:.3f}  {text}")

# %% [markdown]
# ## Things to try
# - `model.pooling=last`: the final state alone must carry the opinion across the filler; see how many
#   epochs it needs, and compare `model.cell=lstm` and `model.cell=simple_rnn`.
# - Fewer examples (`data.synthetic_examples=500`): the model memorizes the training reviews, and the gap
#   between the training and validation curves opens.
# - A real corpus: set `CONFIG` to `configs/sentiment_imdb_files.yaml` and empty `OVERRIDES`. Real reviews
#   are longer and noisier; the README's sentiment section lists what the real configs reach.
