"""Character-level bits per character on held-out English (Multi30k task 1, English side).

    python benchmarks/lm_char_perplexity.py [--variants simple_rnn,gru,lstm,lstm_independent] [--epochs 5]
                                            [--parameters-of lstm:128] [--set key=value ...]

Trains `configs/lm_char.yaml` (train.en: 1.8M characters; validation: val.en) once per variant through
`training.train`, with the units of each cell chosen so that every model has (nearly) the same number of
parameters as the reference (an LSTM of 128 units by default), and scores test_2016_flickr.en:

- `simple_rnn`, `gru`, `lstm`: truncated backpropagation through time (`train.carry_state: true`, chunks of
  `train.tbptt_steps` = 100 characters, state carried across batches);
- `lstm_independent`: the same LSTM trained on independent, shuffled 100-character windows from a zero state.

Each model is scored on the test text both ways: as one stream with the state carried from chunk to chunk
(`stream`, the model's real perplexity on running text) and as independent windows (`windows`). The baseline
is a unigram model (training character frequencies) scored on the same text. Prints one JSON line.
"""

import argparse
import collections
import json
import math
import os
import sys
import time

import harness

CONFIG = "configs/lm_char.yaml"
MULTI30K_DIR = os.path.join(os.path.dirname(harness.REPOSITORY_ROOT), "shared", "data", "multi30k", "task1", "raw")
VARIANTS = {
    "simple_rnn": ["model.cell=simple_rnn", "train.carry_state=true"],
    "gru": ["model.cell=gru", "train.carry_state=true"],
    "lstm": ["model.cell=lstm", "train.carry_state=true"],
    "lstm_independent": ["model.cell=lstm", "train.carry_state=false"],
}
_RECURRENT_WEIGHT_BLOCKS = {"simple_rnn": 1, "gru": 3, "lstm": 4}


def parameter_count(cell: str, units: int, vocabulary_size: int, embedding_dim: int) -> int:
    """Weights of a one-layer RecurrentLanguageModel (Keras GRU has two bias vectors: reset_after)."""
    blocks = _RECURRENT_WEIGHT_BLOCKS[cell]
    biases = 2 * blocks * units if cell == "gru" else blocks * units
    recurrent = blocks * (embedding_dim * units + units * units) + biases
    return vocabulary_size * embedding_dim + recurrent + units * vocabulary_size + vocabulary_size


def matching_units(cell: str, target: int, vocabulary_size: int, embedding_dim: int) -> int:
    """The units whose parameter count is closest to `target`."""
    return min(range(1, 2049), key=lambda units: abs(parameter_count(cell, units, vocabulary_size, embedding_dim)
                                                     - target))


def unigram_bits_per_character(train_text: str, test_text: str) -> float:
    """Cross-entropy of the test text under add-one-smoothed training character frequencies, in bits."""
    counts = collections.Counter(train_text)
    alphabet = set(counts) | set(test_text)
    total = sum(counts.values()) + len(alphabet)
    return -sum(math.log2((counts[character] + 1) / total) for character in test_text) / len(test_text)


def train_variant(name: str, units: int, overrides: list[str], run_root: str) -> dict:
    from pipeline import config as config_lib
    from pipeline import run_files
    from pipeline import tasks
    from pipeline import training

    run_dir = os.path.join(run_root, name)
    config = config_lib.load_config([CONFIG], VARIANTS[name] + [f"model.units={units}"] + overrides + [
        f"runtime.run_dir={run_dir}", "export.on_train_end=false"])
    harness.progress(f"training {name!r} ({config.model.cell}, {units} units) into {run_dir}")
    started = time.perf_counter()
    with harness.stdout_to_stderr():
        training.train(config)
    wall = time.perf_counter() - started
    task = tasks.create_task(config)
    preprocessing = task.load_preprocessing(run_dir)
    model = run_files.load_trained_model(run_dir)
    test_ids = task.token_ids(preprocessing, task.load_splits().splits["test"].text)
    scores = {}
    for layout, carry_state in (("stream", True), ("windows", False)):
        totals = task.score(model, task.batches(test_ids, carry_state=carry_state), carry_state=carry_state)
        scores[layout] = harness.rounded(totals["loss_sum"] / totals["tokens"] / math.log(2), 4)
    with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
        epochs = sum(1 for _ in stream) - 1
    return {"cell": config.model.cell, "units": units, "parameters": int(model.count_params()),
            "carry_state": config.train.carry_state, "test_bits_per_character": scores,
            "train_wall_seconds": harness.rounded(wall, 1), "epochs_run": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per variant (default 5)")
    parser.add_argument("--parameters-of", default="lstm:128", metavar="CELL:UNITS",
                        help="reference model whose parameter count every variant matches (default lstm:128)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--run-root", default="benchmarks/results/runs/lm_char")
    arguments = parser.parse_args()
    if not os.path.isdir(MULTI30K_DIR):
        sys.exit(f"error: {MULTI30K_DIR} not found; this benchmark needs ../shared/data/multi30k")
    harness.configure_logging()

    from pipeline import config as config_lib
    from pipeline import tasks

    overrides = [f"train.epochs={arguments.epochs}", "model.dropout=0.0", "train.early_stopping_patience=0",
                 *arguments.overrides]
    config = config_lib.load_config([CONFIG], overrides)
    task = tasks.create_task(config)
    splits = task.load_splits()
    vocabulary_size, embedding_dim = len(task.fit_preprocessing(splits).vocabulary), config.model.embedding_dim
    reference_cell, reference_units = arguments.parameters_of.split(":")
    target = parameter_count(reference_cell, int(reference_units), vocabulary_size, embedding_dim)

    figures = {}
    for name in arguments.variants.split(","):
        cell = VARIANTS[name][0].partition("=")[2]
        figures[name] = train_variant(name, matching_units(cell, target, vocabulary_size, embedding_dim), overrides,
                                      arguments.run_root)
        harness.progress(f"{name}: {json.dumps(figures[name])}")
    baseline = unigram_bits_per_character(splits.splits["train"].text, splits.splits["test"].text)
    best_name = min(figures, key=lambda name: figures[name]["test_bits_per_character"]["stream"])
    best = figures[best_name]["test_bits_per_character"]["stream"]
    harness.report("lm_char_perplexity", {
        "data": "Multi30k task 1 English: train.en (train), val.en (validation), test_2016_flickr.en (test)",
        "parameter_target": target,
        "variants": figures,
        "best": best_name,
        "test_bits_per_character": best,
        "baseline": {"name": "unigram character frequencies of train.en (same run)",
                     "test_bits_per_character": harness.rounded(baseline, 4)},
        "ratio": harness.rounded(best / baseline, 4),
    })


if __name__ == "__main__":
    main()
