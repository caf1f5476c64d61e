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
# # Image captioning: a CNN encoder and a recurrent decoder
#
# Show-and-Tell or Show-Attend-and-Tell: an image encoder (a small CNN trained from scratch, or a frozen
# pretrained one) and a recurrent decoder that writes the caption word by word, attending over the image's
# feature grid. The tiny config draws coloured shapes, so captions such as "a red circle above a blue
# square" are learnable in a minute.

# %% tags=["parameters"]
CONFIG = "configs/tiny/captioning.yaml"  # real data: "configs/captioning_flickr8k.yaml" (../shared/data)
#                                          or "configs/captioning_coco_tfds.yaml" (TFDS, downloads)
OVERRIDES = []  # `--set`-style overrides, e.g. ["train.epochs=10", "model.decoder=show_and_tell"]
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
from pipeline import figures
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
print({name: len(split) for name, split in splits.splits.items()})
train_split = splits.splits["train"]
for captions in train_split.captions[:4]:
    print(" | ".join(captions))

# %% [markdown]
# ## Train

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "captioning_training_curves.png")))

# %% [markdown]
# ## Evaluate
# BLEU-1..4, CIDEr-D and exact match against all references of each image, beside a nearest-neighbour
# baseline (the caption of the most similar training image).

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print({key: round(value, 4) for key, value in metrics.items() if isinstance(value, float)})

# %% [markdown]
# ## Captions and attention
# A few validation images with their greedy captions, then where the decoder looked for each word.

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
# The export takes encoded image files (JPEG/PNG) and returns a caption and its score.

# %%
export_path = export.export_run(run_dir)
for row in predict.predict_rows(predict.load_export(export_path), images):
    print(json.dumps(row))

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself.

# %%
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = rest.rows({"image_bytes": images})  # bytes travel as {"b64": ...}
for row in served:
    print(f"{row['score']:7.2f}  {row['caption']}")
