"""Semi-supervised IMDB: pretrain the recurrent language model on unlabeled reviews, fine-tune it into the classifier.

Stages, each through `training.train` and timed on its own:
    1. language model   configs/lm_imdb.yaml: word-level GRU over the 50,000 unlabeled and the 25,000 training
                        reviews (sampled softmax); reused when its run directory already holds a finished run
                        (`--retrain-language-model` starts it again).
    2. IMDB classifier  configs/sentiment_imdb_pretrained.yaml: the language model's vocabulary, embedding and
                        GRU, fine-tuned; test accuracy on the official 25,000 test reviews.
    3. SST-2            on the official train/dev/test split, each variant trained with `--sst2-seeds` seeds
                        (`runtime.seed` 1..N; median, lowest and highest test accuracy; `--skip-sst2` leaves
                        this out):
                          imdb_encoder            configs/sentiment_sst2_pretrained.yaml: the embedding and GRU
                                                  of stage 2's classifier (the language model, then IMDB's labels)
                          language_model_encoder  the same config started from the language model itself
                          same_gru_from_scratch   the same config from random weights (same vocabulary)
                          from_scratch_config     configs/sentiment_sst2.yaml (BiLSTM 128, its own vocabulary)

Target (issue 20): IMDB test accuracy >= 0.925 (Dai & Le 2015, SA-LSTM: 0.9276) with pretraining plus
fine-tuning within 2 hours on the 2-core CPU, against 0.902 from scratch (benchmarks/imdb_accuracy.py);
SST-2 with the pretrained encoder above SST-2 from scratch (medians over the same seeds).

Usage (from the repository root):
    python benchmarks/imdb_pretrained.py [--set-lm KEY=VALUE ...] [--set KEY=VALUE ...] [--sst2-seeds N]
                                         [--skip-sst2]

The language model's run directory is runs/lm_imdb (the IMDB config's `model.initialize_from` and
`data.vocabulary_file` point there); the SST-2 runs start from the run directories this script trains (set
by overrides). The classifiers' run directories are cleared first; their exports go inside them.
"""

import argparse
import os

import harness

LANGUAGE_MODEL_CONFIG = "configs/lm_imdb.yaml"
IMDB_CONFIG = "configs/sentiment_imdb_pretrained.yaml"
SST2_PRETRAINED_CONFIG = "configs/sentiment_sst2_pretrained.yaml"
SST2_SCRATCH_CONFIG = "configs/sentiment_sst2.yaml"
FROM_SCRATCH_IMDB = 0.902  # benchmarks/imdb_accuracy.py, configs/sentiment_imdb_files.yaml (BiGRU 128)
REFERENCE_NAME = "Dai & Le 2015, SA-LSTM (LSTM 1024, pretrained on IMDB's unlabeled reviews), as published"
REFERENCE_TEST_ACCURACY = 0.9276
TARGET_ACCURACY = 0.925
TARGET_MINUTES = 120


def parse_arguments() -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set-lm", dest="language_model_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override of the language model's config, repeatable")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the IMDB classifier's config, repeatable")
    parser.add_argument("--retrain-language-model", action="store_true",
                        help="train the language model again even when runs/lm_imdb holds a finished run")
    parser.add_argument("--skip-sst2", action="store_true", help="leave out the SST-2 comparison")
    parser.add_argument("--sst2-seeds", type=int, default=5,
                        help="SST-2 runs per variant, seeds 1..N (default: %(default)s)")
    parser.add_argument("--results-dir", default="benchmarks/results/runs",
                        help="parent of the classifiers' run directories (default: %(default)s)")
    return parser.parse_args()


def language_model_stage(arguments) -> dict:
    """Trains (or reuses) the language model; returns its timings and validation perplexity."""
    from pipeline import config as config_lib
    from pipeline import run_files
    from pipeline import run_state

    config = config_lib.load_config([LANGUAGE_MODEL_CONFIG], arguments.language_model_overrides)
    finished = os.path.exists(os.path.join(config.run_dir, run_files.METRICS_FILE)) and run_state.load(
        config.run_dir).epochs_done >= config.train.epochs
    record = {"reused": bool(finished and not arguments.retrain_language_model)}
    if not record["reused"]:
        harness.clear_run_dir(config.run_dir)
        harness.progress(f"language model: training {LANGUAGE_MODEL_CONFIG} into {config.run_dir}")
        record.update(harness.run_training(config))
    metrics = run_files.load_metrics(config.run_dir)["validation"]
    history = harness.read_history(config.run_dir)
    record.update({"validation_perplexity": harness.rounded(metrics["perplexity"], 2), "epochs_run": len(history),
                   "epoch_seconds": [harness.rounded(value, 1) for value in record.get("epoch_seconds", [])],
                   "run_dir": config.run_dir})
    return record


def classifier_stage(config_path: str, overrides: list[str], run_dir: str) -> dict:
    """Trains one classifier from a clean run directory; returns its test accuracy and timings."""
    from pipeline import config as config_lib
    from pipeline import run_files

    config = config_lib.load_config(
        [config_path], [f"runtime.run_dir={run_dir}", f"export.dir={os.path.join(run_dir, 'exports')}", *overrides])
    harness.clear_run_dir(config.run_dir)
    harness.progress(f"training {config_path} into {config.run_dir}")
    record = harness.run_training(config)
    metrics = run_files.load_metrics(config.run_dir)
    history = harness.read_history(config.run_dir)
    return {"test_accuracy": harness.rounded(metrics["test"]["accuracy"]),
            "validation_accuracy": harness.rounded(metrics["validation"]["accuracy"]),
            "val_accuracy_per_epoch": [harness.rounded(row["val_accuracy"]) for row in history],
            "train_wall_seconds": harness.rounded(record["train_wall_seconds"], 1),
            "fit_seconds": harness.rounded(record["fit_seconds"], 1),
            "epoch_seconds": [harness.rounded(value, 1) for value in record["epoch_seconds"]],
            "overrides": overrides, "run_dir": config.run_dir}


def sst2_variants(language_model_dir: str, imdb_dir: str) -> dict[str, tuple[str, list[str]]]:
    """Config and overrides of each SST-2 variant; the pretrained ones take their source's vocabulary."""
    from pipeline.data import text as text_lib
    from pipeline.tasks import base

    def vocabulary_of(run_dir: str) -> str:
        return f"data.vocabulary_file={os.path.join(run_dir, base.PREPROCESSING_DIR, text_lib.VOCABULARY_FILE)}"

    return {
        "imdb_encoder": (SST2_PRETRAINED_CONFIG, [f"model.initialize_from={imdb_dir}", vocabulary_of(imdb_dir)]),
        "language_model_encoder": (SST2_PRETRAINED_CONFIG, [f"model.initialize_from={language_model_dir}",
                                                            vocabulary_of(language_model_dir)]),
        "same_gru_from_scratch": (SST2_PRETRAINED_CONFIG, ["model.initialize_from=null",
                                                           vocabulary_of(language_model_dir)]),
        "from_scratch_config": (SST2_SCRATCH_CONFIG, []),
    }


def sst2_stage(arguments, language_model_dir: str, imdb_dir: str) -> dict:
    """Trains every SST-2 variant once per seed, the seeds interleaved; returns per-seed and median accuracy."""
    variants = sst2_variants(language_model_dir, imdb_dir)
    seeds = list(range(1, arguments.sst2_seeds + 1))
    runs = {name: [] for name in variants}
    for seed in seeds:
        for name, (config_path, overrides) in variants.items():
            run_dir = os.path.join(arguments.results_dir, f"sst2_{name}", f"seed_{seed}")
            runs[name].append(classifier_stage(config_path, [*overrides, f"runtime.seed={seed}"], run_dir))
    summary = {}
    for name, records in runs.items():
        accuracies = [record["test_accuracy"] for record in records]
        summary[name] = {"config": variants[name][0], "overrides": variants[name][1],
                         "median_test_accuracy": harness.rounded(harness.median(accuracies)),
                         "lowest": min(accuracies), "highest": max(accuracies), "test_accuracy_per_seed": accuracies,
                         "median_validation_accuracy": harness.rounded(
                             harness.median([record["validation_accuracy"] for record in records])),
                         "median_fit_seconds": harness.rounded(
                             harness.median([record["fit_seconds"] for record in records]), 1)}
    pretrained = summary["imdb_encoder"]["median_test_accuracy"]
    scratch = summary["from_scratch_config"]["median_test_accuracy"]
    summary.update({"seeds": seeds,
                    "ratio": harness.rounded(pretrained / scratch),
                    "target": "median SST-2 test accuracy: imdb_encoder above from_scratch_config",
                    "target_met": bool(pretrained > scratch)})
    return summary


def main() -> None:
    """Runs the stages and prints the JSON line."""
    arguments = parse_arguments()
    harness.require_imdb()
    harness.configure_logging()
    language_model = language_model_stage(arguments)
    imdb = classifier_stage(IMDB_CONFIG, arguments.overrides,
                            os.path.join(arguments.results_dir, "imdb_pretrained"))
    language_model_minutes = language_model.get("train_wall_seconds", 0.0) / 60
    total_minutes = language_model_minutes + imdb["train_wall_seconds"] / 60
    result = {
        "language_model": language_model,
        "imdb": imdb,
        "minutes": {"language_model": harness.rounded(language_model_minutes, 1),
                    "fine_tuning": harness.rounded(imdb["train_wall_seconds"] / 60, 1),
                    "total": harness.rounded(total_minutes, 1),
                    "language_model_reused": language_model["reused"]},
        "from_scratch_imdb_test_accuracy": FROM_SCRATCH_IMDB,
        "baseline": {"name": REFERENCE_NAME, "test_accuracy": REFERENCE_TEST_ACCURACY,
                     "measured_in_this_run": False},
        "ratio": harness.rounded(imdb["test_accuracy"] / REFERENCE_TEST_ACCURACY),
        "target": f"IMDB test_accuracy >= {TARGET_ACCURACY} within {TARGET_MINUTES} min of both stages",
        "target_met": bool(imdb["test_accuracy"] >= TARGET_ACCURACY and not language_model["reused"]
                           and total_minutes <= TARGET_MINUTES),
    }
    if not arguments.skip_sst2:
        result["sst2"] = sst2_stage(arguments, language_model["run_dir"], imdb["run_dir"])
    harness.report("imdb_pretrained", result)


if __name__ == "__main__":
    main()
