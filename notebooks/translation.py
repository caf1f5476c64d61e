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
# # Translation: sequence to sequence with attention
#
# A recurrent encoder-decoder with attention, trained with teacher forcing; greedy, sampling and beam
# search run inside the exported SavedModel. The tiny config translates dates written in words into
# digits in another field order, so the model must reorder and the attention shows how.

# %% tags=["parameters"]
CONFIG = "configs/tiny/translation.yaml"  # real data: "configs/translation_multi30k_de_en.yaml" (../shared/data)
#                                           or "configs/translation_ted_tfds.yaml" (TFDS, downloads)
OVERRIDES = []  # `--set`-style overrides, e.g. ["train.epochs=10", "model.attention=luong"]
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

# %%
task = tasks.create_task(config)
splits = task.load_splits()
print({name: len(split) for name, split in splits.splits.items()})
train_split = splits.splits["train"]
for source, target in list(zip(train_split.sources, train_split.targets))[:5]:
    print(f"{source}  ->  {target}")

# %% [markdown]
# ## Train

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "translation_training_curves.png")))

# %% [markdown]
# ## Evaluate
# Teacher-forced loss and accuracy, and sacreBLEU BLEU/chrF and exact match of the decoded output.

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print({key: round(value, 4) for key, value in metrics.items() if isinstance(value, float)})
for sample in metrics["samples"][:5]:
    print(f"{sample['source']}\n  reference:   {sample['reference']}\n  translation: {sample['translation']}")

# %% [markdown]
# ## Attention
# Row *i* shows where the decoder looked while writing output token *i* (greedy decoding).

# %%
model = run_files.load_trained_model(run_dir)
preprocessing = task.load_preprocessing(run_dir)
examples = splits.splits[split_name].sources[:2]
alignments = task.translate_with_attention(model, preprocessing, examples)
display.Image(plots.attention_heatmaps(alignments, os.path.join(figures_dir, "translation_attention.png")))

# %% [markdown]
# ## Export and predict

# %%
export_path = export.export_run(run_dir)
for signature in ("greedy", "beam"):
    for row in predict.predict_rows(predict.load_export(export_path, signature), examples):
        print(signature, json.dumps(row, ensure_ascii=False))

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself.

# %%
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = {mode: rest.translate(examples, mode=mode) for mode in ("beam", "greedy")}
    served["sample"] = rest.translate(examples, mode="sample", temperature=0.7)
for mode, rows in served.items():
    for text, row in zip(examples, rows):
        print(f"{mode:>6}: {text} -> {row['translation']} ({row['score']:.2f})")
