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
# # Image captioning: a CNN encoder and a recurrent decoder that attends
#
# Captioning is translation from an image: the encoder is a convolutional network (CNN) instead of a
# recurrent one, and the decoder is the same kind of recurrent language model conditioned on what the encoder
# saw. Two classic designs are available. **Show and Tell** summarizes the image as one vector and starts the
# decoder from it. **Show, Attend and Tell** (used here) keeps the CNN's *grid* of feature vectors, one per
# image region, and lets the decoder attend over the regions before writing each word.
#
# The images here are drawn on the fly: one or two coloured shapes on a noisy background, captioned "a red
# circle on the left" or "a blue square left of a yellow triangle" (images with two shapes have both
# phrasings as references). A caption is right only if the colour, the shape and the position all are, so
# the decoder has to look at the right part of the image for each word. By default the notebook runs
# offline in about two minutes on 2 CPU cores.

# %% tags=["parameters"]
CONFIG = "configs/tiny/captioning.yaml"  # real data: "configs/captioning_flickr8k.yaml" (../shared/data)
#                                          or "configs/captioning_coco_tfds.yaml" (TFDS, downloads)
# `--set`-style overrides. These trade examples for epochs on the tiny config (fewer images to encode and
# decode, better captions); empty the list when CONFIG is a real config.
OVERRIDES = ["data.synthetic_examples=600", "train.epochs=8"]
FIGURES = None  # folder for the figures; None: <run_dir>/figures

# %% [markdown]
# ## Setup
# Paths in configs are relative to the working directory; the notebook moves to the repository root when it
# was opened from `notebooks/`, as the command line would run there.

# %%
import collections
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
from pipeline import figures
from pipeline import metrics as metrics_lib
from pipeline import plots
from pipeline import run_files
from pipeline import tasks
from pipeline import training
from serving import launcher

config = config_lib.load_config([CONFIG], OVERRIDES)
print(f"{config.name}: {config.task}, run directory {config.run_dir}")

# %% [markdown]
# ## Data
# The references of a few training images (two references for an image with two shapes).

# %%
task = tasks.create_task(config)
splits = task.load_splits()
print({name: len(split) for name, split in splits.splits.items()})
train_split = splits.splits["train"]
for captions in train_split.captions[:4]:
    print(" | ".join(captions))

# %% [markdown]
# ## The model
# - **Encoder.** A small CNN trained from scratch (`model.encoder.name: small_cnn`; real configs use a frozen
#   pretrained network) turns the 32×32 image into a 4×4 grid of feature vectors: 16 regions, each described
#   by what the filters found there.
# - **Decoder.** A GRU that reads the previous word's embedding and writes a distribution over the next word.
#   Before each word, Bahdanau attention scores the 16 regions against the decoder's state, normalizes the
#   scores with a softmax, and hands the decoder the weighted average of the region vectors.
# - **Training** uses teacher forcing, as in translation: the decoder reads the reference caption shifted
#   behind `[START]` and learns to predict each next word. Encoder and decoder train together, so the CNN
#   learns the features that captioning needs.
# - **Decoding** is beam search for the metrics and the export; the pictures below use greedy decoding.

# %% [markdown]
# ## Train

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "captioning_training_curves.png")))

# %% [markdown]
# ## Evaluate against two baselines
# BLEU-4 counts the caption's n-grams (up to four words) found in the references. CIDEr-D weights each
# n-gram by how rare it is across the images (TF-IDF), so "a" and "the" count little and "yellow triangle"
# counts a lot. It is reported ×100: good models score around 100 on real photographs, and on this toy
# data, where the same captions recur exactly, a right caption scores several hundred.
#
# Two baselines frame the scores. A *constant* caption, the most frequent one in training, shows what
# ignoring the image gets. *Nearest neighbour* retrieval, computed by the evaluation, gives each test image the
# caption of the training image whose pooled encoder features are most similar. It borrows the trained
# encoder, and with only 48 one-shape captions many test images have a training twin, so on this toy data it
# is a strong baseline. It can only return captions it has seen, where the decoder composes its captions
# word by word.

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
references = splits.splits[split_name].captions
most_frequent = collections.Counter(captions[0] for captions in train_split.captions).most_common(1)[0][0]
constant = metrics_lib.captioning_scores([most_frequent] * len(references), references)
print(f"{split_name} ({metrics['examples']} images):")
print(f"  model             BLEU-4 {metrics['bleu_4']:5.1f}  CIDEr-D {metrics['cider']:6.1f}  "
      f"exact match {metrics['exact_match']:.3f}")
print(f"  constant caption  BLEU-4 {constant['bleu_4']:5.1f}  CIDEr-D {constant['cider']:6.1f}  "
      f"exact match {constant['exact_match']:.3f}  ({most_frequent!r})")
print(f"  nearest neighbour BLEU-4 {metrics['nearest_neighbour_bleu_4']:5.1f}  CIDEr-D "
      f"{metrics['nearest_neighbour_cider']:6.1f}  exact match {metrics['nearest_neighbour_exact_match']:.3f}")

# %% [markdown]
# ## Captions and attention
# A few validation images with their greedy captions, then where the decoder looked for each word: the
# brighter a region, the more weight it got. Look for the colour and shape words lighting up the object's
# regions, and for the two objects taking turns in a caption such as "a red circle left of a blue square".
# Function words such as "a" have nothing to look at and spread their weight.

# %%
model = run_files.load_trained_model(run_dir)
preprocessing = task.load_preprocessing(run_dir)
images = [run_files.decode_sample_input(item) for item in run_files.load_sample_inputs(run_dir)]
rows = task.caption_with_attention(model, preprocessing, images)
grid = figures.render_caption_grid([dict(row, attention=None) for row in rows],
                                   os.path.join(figures_dir, "captioning_captions.png"), cell_size=96)
display.display(display.Image(grid))
display.Image(figures.render_caption_grid(rows[:2], os.path.join(figures_dir, "captioning_attention.png"),
                                          cell_size=96, max_words=6))

# %% [markdown]
# ## Export and predict
# The export takes encoded image files (JPEG/PNG) and returns a caption and its score (log-probability).

# %%
export_path = export.export_run(run_dir)
for row in predict.predict_rows(predict.load_export(export_path), images):
    print(json.dumps(row))

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself.

# %% tags=["serve"]
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = rest.rows({"image_bytes": images})  # bytes travel as {"b64": ...}
for row in served:
    print(f"{row['score']:7.2f}  {row['caption']}")

# %% [markdown]
# ## Things to try
# - `model.decoder=show_and_tell`: one image vector instead of a grid and no attention; the decoder must
#   carry both objects in its state, and the attention picture disappears.
# - `train.epochs=12`: train longer and see which captions of the grid change.
# - Real photographs: `configs/captioning_flickr8k.yaml` uses a frozen pretrained encoder.
