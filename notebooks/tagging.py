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
# # Sequence tagging: a many-to-many recurrent network
#
# The sentiment notebook's classifier is **many-to-one**: it reads a whole review and gives one label. A
# tagger is **many-to-many** with aligned outputs: it gives one label per input token, so the output sequence
# has exactly the input's length. Part-of-speech tagging (noun, verb, determiner, ...) and named-entity
# recognition (BIO spans such as `B-PER I-PER O`) are both tagging.
#
# Tagging looks like a lookup ("*dog* is a noun"), but many words are ambiguous. The generated sentences used
# here contain words such as *book*, *duck* or *train* that are nouns after a determiner ("the book") and
# verbs after a pronoun ("we book"). A tagger that looks at one word at a time can only guess; the tag is in
# the context. By default the notebook runs offline in well under a minute on 2 CPU cores.

# %% tags=["parameters"]
CONFIG = "configs/tiny/tagging.yaml"  # real data: "configs/tagging_ud_en_ewt.yaml" (../shared/data/ud_english_ewt)
#                                       or "configs/tagging_ud_tfds.yaml" (TFDS universal_dependencies, downloads)
OVERRIDES = []  # `--set`-style overrides, e.g. ["train.epochs=5", "model.char_encoder=bilstm"]
FIGURES = None  # folder for the figures; None: <run_dir>/figures

# %% [markdown]
# ## Setup
# Paths in configs are relative to the working directory; the notebook moves to the repository root when it
# was opened from `notebooks/`, as the command line would run there.

# %%
import collections
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
# Each example is a sentence split into tokens and one tag per token.

# %%
task = tasks.create_task(config)
splits = task.load_splits()
print({name: len(split) for name, split in splits.splits.items()}, "tags:", splits.tag_names)
train_split = splits.splits["train"]
for tokens, tag_ids in list(zip(train_split.tokens, train_split.tag_ids))[:4]:
    print(" ".join(f"{token}/{splits.tag_names[tag]}" for token, tag in zip(tokens, tag_ids)))

# %% [markdown]
# ## How far one word at a time gets
# The strongest tagger that ignores context gives every word the tag it most often had in training. Its
# accuracy on the test split is the baseline to beat: right on the unambiguous words, wrong whenever an
# ambiguous word has its rarer tag (most often the verb).

# %%
counts = collections.defaultdict(collections.Counter)
for tokens, tag_ids in zip(train_split.tokens, train_split.tag_ids):
    for token, tag in zip(tokens, tag_ids):
        counts[token][tag] += 1
test_split = splits.splits["test"]
pairs = [(counts[token].most_common(1)[0][0] if counts[token] else 0, tag)
         for tokens, tag_ids in zip(test_split.tokens, test_split.tag_ids) for token, tag in zip(tokens, tag_ids)]
baseline_accuracy = sum(guess == tag for guess, tag in pairs) / len(pairs)
print(f"most frequent tag per word: test accuracy {baseline_accuracy:.3f} over {len(pairs)} tokens")
for word in ("book", "duck", "train"):
    print(f"{word:>6} in training:", {splits.tag_names[tag]: count for tag, count in counts[word].items()})

# %% [markdown]
# ## The model
# - **Word embeddings** give every known word a trained vector. A **character encoder** (a small
#   convolution over each word's letters; `model.char_encoder=bilstm` makes it a recurrent network) builds a
#   second vector from the spelling, so a word never
#   seen in training still gets a useful description: suffixes such as *-ing* or *-ly* say a lot about the tag.
# - A **bidirectional** recurrent layer runs one GRU left to right and another right to left, and joins their
#   states at each position. The tag of token *t* can then depend on the words before it ("we" → verb) and
#   after it. A left-to-right network alone could not use the right context.
# - A **dense softmax at every position** turns each state into a distribution over tags. The loss is the
#   cross-entropy summed over real tokens: padding added to make sentences of a batch the same length is
#   masked out of the recurrent layers, the loss and the accuracy.

# %% [markdown]
# ## Train
# The curves show loss and token accuracy per epoch on the training and validation splits.

# %%
run_dir = training.train(config)
figures_dir = FIGURES or os.path.join(run_dir, "figures")
display.Image(plots.training_curves(os.path.join(run_dir, run_files.HISTORY),
                                    os.path.join(figures_dir, "tagging_training_curves.png")))

# %% [markdown]
# ## Evaluate
# Token accuracy, macro-F1 over the tags, and accuracy on words outside the training vocabulary (`oov_*`,
# absent when the test split has none). Compare the accuracy with the one-word-at-a-time baseline above:
# the baseline's errors are all ambiguous words, and what the tagger fixes of them is what context buys.

# %%
split_name, metrics = run_files.held_out_metrics(run_dir)
print({key: round(value, 4) for key, value in metrics.items() if isinstance(value, (int, float))})
print(f"{split_name}: accuracy {metrics['accuracy']:.3f} (most frequent tag per word: {baseline_accuracy:.3f})")

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
# `serving/client.py` works unchanged against it or TensorFlow Serving itself. The same words change tags
# with their neighbours: *book* and *train* in the first sentence, *train* in the second.

# %% tags=["serve"]
sentences = ["we book the old train", "the duck can train the dog"]
with launcher.ServerProcess.for_export(export_path) as server:
    rest = server.rest_client()
    print(rest.status())
    served = rest.tag(sentences)
for row in served:
    print(" ".join(f"{token}/{tag}" for token, tag in zip(row["tokens"], row["tags"])))

# %% [markdown]
# ## Things to try
# - `model.bidirectional=false`: the tagger loses the right context. Here the deciding word (a determiner or
#   a pronoun) comes before the ambiguous one, so left context is enough; on real text both sides matter.
# - A real treebank: set `CONFIG` to `configs/tagging_ud_en_ewt.yaml`. The README's notebook section shows a
#   shrunk run reaching about 0.92 UPOS accuracy in two epochs.
