"""UPOS tagging accuracy on UD English EWT (official split), with and without character features.

    python benchmarks/ud_pos_accuracy.py [--variants chars,words] [--set key=value ...]

Trains `configs/tagging_ud_en_ewt.yaml` once per variant through `training.train` (`chars`: the config as
shipped, CNN character encoder; `words`: `model.char_encoder=none`) and prints one JSON line with the test
UPOS accuracy, OOV accuracy and wall time of each. Target: test accuracy >= 95.5 within 30 minutes of
training (UDPipe 1.2: 94.43; a BiLSTM tagger: 95.95, both on UD 2.6, as published).
"""

import argparse
import json
import os
import sys
import time

import harness

CONFIG = "configs/tagging_ud_en_ewt.yaml"
UD_DIR = os.path.join(os.path.dirname(harness.REPOSITORY_ROOT), "shared", "data", "ud_english_ewt")
VARIANTS = {"chars": [], "words": ["model.char_encoder=none"]}


def train_variant(name: str, overrides: list[str], run_root: str) -> dict:
    from pipeline import config as config_lib
    from pipeline import run_files
    from pipeline import training

    run_dir = os.path.join(run_root, name)
    config = config_lib.load_config([CONFIG], VARIANTS[name] + overrides + [
        f"runtime.run_dir={run_dir}", "export.on_train_end=false"])
    harness.progress(f"training variant {name!r} into {run_dir}")
    started = time.perf_counter()
    with harness.stdout_to_stderr():
        training.train(config)
    wall = time.perf_counter() - started
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        results = json.load(stream)
    with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
        epochs = sum(1 for _ in stream) - 1
    return {
        "test_upos_accuracy": harness.rounded(100 * results["test"]["accuracy"], 2),
        "test_oov_accuracy": harness.rounded(100 * (results["test"]["oov_accuracy"] or 0.0), 2),
        "test_oov_tokens": results["test"]["oov_tokens"],
        "validation_upos_accuracy": harness.rounded(100 * results["validation"]["accuracy"], 2),
        "train_wall_seconds": harness.rounded(wall, 1),
        "epochs_run": epochs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="chars,words", help="comma-separated: chars, words")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE")
    parser.add_argument("--run-root", default="benchmarks/results/runs/ud_pos")
    arguments = parser.parse_args()
    if not os.path.isdir(UD_DIR):
        sys.exit(f"error: {UD_DIR} not found; this benchmark needs ../shared/data/ud_english_ewt")
    harness.configure_logging()
    figures = {name: train_variant(name, arguments.overrides, arguments.run_root)
               for name in arguments.variants.split(",")}
    best = max(figures.values(), key=lambda figure: figure["test_upos_accuracy"])
    harness.report("ud_pos_accuracy", {
        "variants": figures,
        "baseline": {"name": "UDPipe 1.2 on UD 2.6 (published)", "test_upos_accuracy": 94.43},
        "reference": {"name": "BiLSTM tagger on UD 2.6 (published)", "test_upos_accuracy": 95.95},
        "ratio": harness.rounded(best["test_upos_accuracy"] / 94.43, 4),
        "target": "test UPOS accuracy >= 95.5 within 30 minutes of training",
        "target_met": best["test_upos_accuracy"] >= 95.5 and best["train_wall_seconds"] <= 1800,
    })


if __name__ == "__main__":
    main()
