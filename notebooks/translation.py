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
# # Translation: an encoder-decoder with attention
#
# Sentiment maps a sequence to one label and tagging maps it to one label per token. Translation maps a
# sequence to **another sequence of a different length**, so one recurrent network is not enough: an
# **encoder** reads the source sentence into a sequence of states, and a **decoder** writes the target one
# token at a time, each token conditioned on the source and on the tokens written so far.
#
# The data here are dates written in words, translated into digits with the fields in the opposite order:
# "twenty three of may nineteen eighty four" → "1 9 8 4 - 0 5 - 2 3". The year comes last in the source and
# first in the target, so the decoder cannot copy from left to right; it has to find the right source words
# for each output digit. Attention lets it do that, and its weights can be drawn as a picture. By default the
# notebook runs offline in about a minute on 2 CPU cores.

# %% tags=["parameters"]
CONFIG = "configs/tiny/translation.yaml"  # real data: "configs/translation_multi30k_de_en.yaml" (../shared/data)
#                                           or "configs/translation_ted_tfds.yaml" (TFDS, downloads)
# `--set`-style overrides. These trade examples for epochs on the tiny config, which learns the dates either
# way; empty the list when CONFIG is a real config.
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

import sacrebleu
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
# ## Baselines
# BLEU compares n-grams of the output with the reference (0 to 100). To know what a score means, score two
# systems that do not translate at all: one that always writes the most frequent training target, and one
# that copies the source. A model that learned the task must be far above both.

# %%
test_split = splits.splits["test"]
most_frequent = collections.Counter(train_split.targets).most_common(1)[0][0]
baselines = {"constant": sacrebleu.corpus_bleu([most_frequent] * len(test_split.targets), [test_split.targets]).score,
             "copy": sacrebleu.corpus_bleu(test_split.sources, [test_split.targets]).score}
print({name: round(score, 1) for name, score in baselines.items()})

# %% [markdown]
# ## The model and teacher forcing
# The encoder is a GRU over the source embeddings (`model.bidirectional=true` reads both ways); it produces
# one state per source token.
# The decoder is a GRU that, at output step *i*, reads the previous target token and returns a
# distribution over the next one.
#
# **Attention** (Bahdanau's additive form here): before predicting token *i*, the decoder scores every encoder
# state against its own state, turns the scores into weights that sum to 1 with a softmax, and takes the
# weighted average of the encoder states as its *context* vector. The decoder no longer has to squeeze the
# whole sentence into one fixed vector; it looks up what it needs at each step.
#
# **Teacher forcing** is how such a decoder is trained. The decoder's input at step *i* is the *reference*
# token *i - 1*, not the token the model itself predicted, and the label is reference token *i*. The
# inputs are the reference shifted right behind a `[START]` token, the labels the reference followed by
# `[END]`:

# %%
reference = train_split.targets[0].split()
print("decoder input:", " ".join(["[START]"] + reference))
print("label:        ", " ".join(reference + ["[END]"]))

# %% [markdown]
# All steps of a sentence then train in parallel in one pass, and an early mistake cannot derail the rest
# of the sentence during training. At inference there is no reference: the decoder is fed its own
# predictions (autoregressive decoding), a setting it never saw in training ("exposure bias"). Greedy
# decoding takes the likeliest token at each step, beam search keeps the *k* best partial outputs, and
# sampling draws each token from the distribution, sharpened or flattened by a temperature.

# %% [markdown]
# ## Train
# The loss is the teacher-forced cross-entropy per target token; the accuracy is per target token too.

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "translation_training_curves.png")))

# %% [markdown]
# ## Evaluate
# Evaluation decodes every test source without the reference (beam search here, greedy as `greedy_*`) and
# scores the output with sacreBLEU's BLEU and chrF and the exact-match rate, next to the baselines.

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print({key: round(value, 4) for key, value in metrics.items() if isinstance(value, float)})
print(f"{split_name}: BLEU {metrics['bleu']:.1f} (constant {baselines['constant']:.1f}, copy "
      f"{baselines['copy']:.1f}), exact match {metrics['exact_match']:.3f}")
for sample in metrics["samples"][:3]:
    print(f"{sample['source']}\n  reference:   {sample['reference']}\n  translation: {sample['translation']}")

# %% [markdown]
# ## Attention as a picture
# Row *i* shows the weights the decoder put on each source word (columns) while writing output token *i*
# (greedy decoding). Look for the crossing: the year's digits at the top attend to the year words at the end
# of the source, the day's digits at the bottom to the first words, and the month's digits to the month
# name. The dashes, which no source word explains, look at the words of a neighbouring field.

# %%
model = run_files.load_trained_model(run_dir)
preprocessing = task.load_preprocessing(run_dir)
examples = test_split.sources[:2]
alignments = task.translate_with_attention(model, preprocessing, examples)
display.Image(plots.attention_heatmaps(alignments, os.path.join(figures_dir, "translation_attention.png")))

# %% [markdown]
# ## Export and predict
# The export holds the vocabularies and the decoding loops (a `tf.while_loop` inside the SavedModel), so it
# takes raw text and returns text, with named signatures for each decoding mode.

# %%
export_path = export.export_run(run_dir)
for signature in ("greedy", "beam"):
    for row in predict.predict_rows(predict.load_export(export_path, signature), examples):
        print(signature, json.dumps(row, ensure_ascii=False))

# %% [markdown]
# ## Serve
# `serving/server.py` speaks TensorFlow Serving's REST and gRPC APIs over the export folder;
# `serving/client.py` works unchanged against it or TensorFlow Serving itself. The score is the output's
# log-probability: near 0 for a confident model. Sampling at temperature 0.7 mostly agrees with greedy on a
# task this certain; higher temperatures let it wander.

# %% tags=["serve"]
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = {mode: rest.translate(examples, mode=mode) for mode in ("beam", "greedy")}
    served["sample"] = rest.translate(examples, mode="sample", temperature=0.7)
for mode, rows in served.items():
    for text, row in zip(examples, rows):
        print(f"{mode:>6}: {text} -> {row['translation']} ({row['score']:.2f})")

# %% [markdown]
# ## Things to try
# - `model.attention=none`: the decoder sees only the encoder's final state, which must hold the whole date,
#   and has to remember the day across the whole output; it needs more epochs. `luong` swaps in
#   multiplicative attention.
# - Fewer epochs (`train.epochs=2`): compare the attention maps and the sample translations with this run's.
# - A real corpus: `configs/translation_multi30k_de_en.yaml` (German to English image descriptions).
