"""Multi30k German -> English quality run: train configs/translation_multi30k_de_en.yaml, report test sacreBLEU.

Target: test_2016_flickr BLEU >= 32 with training done within 60 minutes on a 2-core CPU. Reference points,
quoted (not re-run): a GRU encoder-decoder with Bahdanau attention at 28.3 BLEU and a Transformer at 36.5 on the
same test set. BLEU is sacreBLEU's corpus BLEU (13a tokenization, case-insensitive because the config lower-cases)
on detokenized output against the raw references, for the configured beam search and for greedy decoding, both
from the same trained weights in the same evaluation pass.

Usage (from the repository root):
    python benchmarks/multi30k_bleu.py [--set key=value ...] [--run-dir DIR]
"""

import argparse
import json
import math
import os
import sys

import harness

CONFIG = "configs/translation_multi30k_de_en.yaml"
DATA_DIR = os.path.join(os.path.dirname(harness.REPOSITORY_ROOT), "shared", "data", "multi30k", "task1", "raw")
REFERENCES = {"GRU + Bahdanau attention (published)": 28.3, "Transformer (published)": 36.5}
TARGET_BLEU = 32.0
TARGET_MINUTES = 60


def parse_arguments() -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=CONFIG, help="config file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, repeatable")
    parser.add_argument("--run-dir", default="benchmarks/results/runs/multi30k",
                        help="run directory, cleared before training (default: %(default)s)")
    return parser.parse_args()


def require_data() -> None:
    """Exits with a readable message when the Multi30k files are not in ../shared/data."""
    if not os.path.isdir(DATA_DIR):
        sys.exit(f"error: Multi30k data not found in {DATA_DIR}; this benchmark needs ../shared/data/multi30k "
                 "(see ../shared/data/README.md)")


def summarize(config, overrides: list[str], record: dict, run_dir: str) -> dict:
    """Builds the JSON result from the timings, metrics.json and the history."""
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as stream:
        metrics = json.load(stream)
    history = harness.read_history(run_dir)
    test = metrics["test"]
    fit_minutes = record["fit_seconds"] / 60
    model = config.model
    return {
        "test_bleu": harness.rounded(test["bleu"], 2),
        "test_greedy_bleu": harness.rounded(test.get("greedy_bleu", test["bleu"]), 2),
        "test_chrf": harness.rounded(test["chrf"], 2),
        "test_greedy_chrf": harness.rounded(test.get("greedy_chrf", test["chrf"]), 2),
        "beam_minus_greedy_bleu": harness.rounded(test["bleu"] - test.get("greedy_bleu", test["bleu"]), 2),
        "validation_bleu": harness.rounded(metrics["validation"]["bleu"], 2),
        "decoding": f"{test['decoding']} (beam_size {model.beam_size}, length_penalty {model.length_penalty})",
        "train_wall_seconds": harness.rounded(record["train_wall_seconds"], 1),
        "fit_seconds": harness.rounded(record["fit_seconds"], 1),
        "epoch_seconds": [harness.rounded(value, 1) for value in record["epoch_seconds"]],
        "epochs_run": len(history),
        "val_loss_per_epoch": [harness.rounded(row.get("val_loss", math.nan)) for row in history],
        "baseline": {"name": "GRU + Bahdanau attention (published)", "bleu": 28.3, "measured_in_this_run": False},
        "references": REFERENCES,
        "ratio": harness.rounded(test["bleu"] / 28.3),
        "target": f"test BLEU >= {TARGET_BLEU} with training (model.fit) within {TARGET_MINUTES} min",
        "target_met": bool(test["bleu"] >= TARGET_BLEU and fit_minutes <= TARGET_MINUTES),
        "samples": test.get("samples", [])[:3],
        "overrides": overrides,
        "config": (f"{model.cell} {model.units}, layers {model.layers}, bidirectional {model.bidirectional}, "
                   f"embedding {model.embedding_dim}, attention {model.attention}, dropout {model.dropout}, "
                   f"label_smoothing {model.label_smoothing}, epochs {config.train.epochs}, "
                   f"batch {config.train.batch_size}, lr {config.train.learning_rate}"),
        "run_dir": run_dir,
    }


def main() -> None:
    """Runs the benchmark and prints its JSON line."""
    arguments = parse_arguments()
    require_data()
    harness.configure_logging()
    from pipeline import config as config_lib

    overrides = [f"runtime.run_dir={arguments.run_dir}", "export.on_train_end=false"] + arguments.overrides
    config = config_lib.load_config([arguments.config], overrides)
    harness.clear_run_dir(config.run_dir)
    harness.progress(f"training {arguments.config} with {overrides} into {config.run_dir}")
    record = harness.run_training(config)
    harness.progress(f"training and evaluation finished in {record['train_wall_seconds']:.0f} s")
    harness.report("multi30k_bleu", summarize(config, overrides, record, config.run_dir))


if __name__ == "__main__":
    main()
