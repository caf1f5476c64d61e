"""Bucketing: real (non-padding) training tokens/s on IMDB with length buckets vs fixed padding to max length.

Usage (from the repository root):
    python benchmarks/bucketing.py [--set key=value ...] [--repetitions 5] [--steps 20]
    python benchmarks/speed_suite.py --only bucketing     (the same defaults, as a suite section)

Variants, all training the same model (one model, one compiled train step) on the task's shuffled train split:
    bucketed               `data.bucketing: true`: the task's dataset, batches of similar lengths.
    padded_to_longest      `data.bucketing: false`: the task's dataset, each batch padded to its longest text.
    padded_to_max_length   the `data.bucketing: false` dataset mapped to pad every batch to
                           `data.max_sequence_length` (fixed-shape batches, the usual baseline).
Each repetition runs `--steps` training steps of each variant in rotating order (input pipeline included, caches
filled beforehand); tokens/s = real tokens in those batches / their wall time; medians over repetitions.
Target: ratio = bucketed / padded_to_max_length tokens/s >= 1.8.
"""

import argparse
import tempfile
import time

import numpy as np

import harness

BENCHMARK_OVERRIDES = ()  # the config's own model and max_sequence_length
VARIANTS = ("bucketed", "padded_to_longest", "padded_to_max_length")
TARGET_RATIO = 1.8
WARMUP_STEPS = 3


def parse_arguments() -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=harness.DEFAULT_CONFIG, help="config file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, repeatable; wins over the benchmark's own overrides")
    parser.add_argument("--repetitions", type=int, default=5, help="timed rounds per variant (default: 5)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per variant and round (default: 20)")
    return parser.parse_args()


def pad_to_length(length: int):
    """A dataset map function padding `token_ids` [batch, time] with zeros to [batch, length]."""
    import tensorflow as tf

    def pad(features, labels):
        token_ids = features["token_ids"]  # (batch, time), time <= length
        padded = tf.pad(token_ids, [[0, 0], [0, length - tf.shape(token_ids)[1]]])
        return {**features, "token_ids": tf.ensure_shape(padded, [None, length])}, labels

    return pad


def build_datasets(config_lib, overrides: list[str], config_path: str):
    """The three variants' train datasets, sharing one vocabulary, plus the task and config for the model.

    Returns:
        (task, preprocessing, config, {variant: dataset}).
    """
    import tensorflow as tf

    from pipeline import tasks
    from pipeline import training

    bucketed_config = config_lib.load_config([config_path], overrides + ["data.bucketing=true"])
    padded_config = config_lib.load_config([config_path], overrides + ["data.bucketing=false"])
    task = tasks.create_task(bucketed_config)
    training.configure_runtime(bucketed_config.runtime)
    splits = task.load_splits()
    preprocessing = task.fit_preprocessing(splits)
    padded_task = tasks.create_task(padded_config)
    with tempfile.TemporaryDirectory(prefix="bucketing_") as run_dir:
        task.save_preprocessing(preprocessing, run_dir)
        padded_preprocessing = padded_task.load_preprocessing(run_dir)
    max_length = bucketed_config.data.max_sequence_length
    datasets = {
        "bucketed": task.datasets(splits, preprocessing)["train"],
        "padded_to_longest": padded_task.datasets(splits, padded_preprocessing)["train"],
        "padded_to_max_length": padded_task.datasets(splits, padded_preprocessing)["train"].map(pad_to_length(max_length)).prefetch(
            tf.data.AUTOTUNE),
    }
    return task, preprocessing, bucketed_config, datasets


def endless_iterators(datasets: dict) -> dict:
    """Fills each dataset's cache with one full pass, then returns an iterator over it repeated forever."""
    iterators = {}
    for variant, dataset in datasets.items():
        batches = sum(1 for _ in dataset)
        harness.progress(f"{variant}: {batches} batches per epoch (cache filled)")
        iterators[variant] = iter(dataset.repeat())
    return iterators


def time_steps(model, iterator, steps: int) -> dict:
    """Runs `steps` training steps from `iterator`; returns seconds and the real and padded token counts."""
    token_batches = []
    started = time.perf_counter()
    for _ in range(steps):
        features, labels = next(iterator)
        model.train_on_batch(features, labels)
        token_batches.append(features["token_ids"])
    seconds = time.perf_counter() - started
    token_arrays = [token_ids.numpy() for token_ids in token_batches]
    return {
        "seconds": seconds,
        "real_tokens": int(sum(np.count_nonzero(token_ids) for token_ids in token_arrays)),
        "padded_tokens": int(sum(token_ids.size for token_ids in token_arrays)),
        "time_steps": [token_ids.shape[1] for token_ids in token_arrays],
    }


def rotated(items: tuple, shift: int) -> list:
    """`items` starting at position `shift` (wrapping), so that no variant always runs first."""
    return [items[(index + shift) % len(items)] for index in range(len(items))]


def measure(model, iterators: dict, repetitions: int, steps: int) -> dict[str, list[dict]]:
    """Warms up each variant, then times `steps` steps of each variant per repetition, interleaved."""
    for variant, iterator in iterators.items():
        time_steps(model, iterator, WARMUP_STEPS)
    rounds = {variant: [] for variant in iterators}
    for repetition in range(repetitions):
        for variant in rotated(tuple(iterators), repetition):
            result = time_steps(model, iterators[variant], steps)
            rounds[variant].append(result)
            harness.progress(f"round {repetition + 1}/{repetitions} {variant}: "
                             f"{result['real_tokens'] / result['seconds']:.0f} real tokens/s, "
                             f"{1000 * result['seconds'] / steps:.0f} ms/step, "
                             f"mean time steps {np.mean(result['time_steps']):.0f}")
    return rounds


def variant_summary(results: list[dict], steps: int) -> dict:
    """Median tokens/s and step time, padding efficiency and mean padded length of one variant."""
    real = sum(result["real_tokens"] for result in results)
    padded = sum(result["padded_tokens"] for result in results)
    return {
        "tokens_per_second": harness.rounded(
            harness.median([result["real_tokens"] / result["seconds"] for result in results]), 1),
        "step_seconds": harness.rounded(harness.median([result["seconds"] / steps for result in results]), 4),
        "padding_efficiency": harness.rounded(real / padded),
        "mean_time_steps": harness.rounded(float(np.mean([length for result in results
                                                          for length in result["time_steps"]])), 1),
    }


def summarize(config, rounds: dict, steps: int, overrides: list[str]) -> dict:
    """Builds the JSON result from the measurements."""
    variants = {variant: variant_summary(results, steps) for variant, results in rounds.items()}
    bucketed = variants["bucketed"]["tokens_per_second"]
    ratio = bucketed / variants["padded_to_max_length"]["tokens_per_second"]
    model = config.model
    return {
        "bucketed_tokens_per_second": bucketed,
        "padded_to_max_length_tokens_per_second": variants["padded_to_max_length"]["tokens_per_second"],
        "padded_to_longest_tokens_per_second": variants["padded_to_longest"]["tokens_per_second"],
        "baseline": "padded_to_max_length (fixed [batch, max_sequence_length] batches), measured in this run",
        "ratio": harness.rounded(ratio),
        "ratio_vs_padded_to_longest": harness.rounded(
            bucketed / variants["padded_to_longest"]["tokens_per_second"]),
        "target": f"ratio = bucketed / padded_to_max_length tokens/s >= {TARGET_RATIO}",
        "target_met": bool(ratio >= TARGET_RATIO),
        "variants": variants,
        "steps_per_round": steps,
        "repetitions": len(rounds["bucketed"]),
        "model": f"{model.cell} x{model.layers}, units {model.units}, bidirectional {model.bidirectional}, "
                 f"embedding {model.embedding_dim}, pooling {model.pooling}, batch {config.train.batch_size}, "
                 f"max_sequence_length {config.data.max_sequence_length}, num_buckets {config.data.num_buckets}",
        "overrides": overrides,
        "method": "One model and one compiled train step (train_on_batch) for all variants; each round runs "
                  "--steps steps per variant in rotating order from endless iterators over the repeated train "
                  "datasets (caches filled first, so epochs 2+ of a run); wall time includes fetching each "
                  "batch; real tokens = non-zero token ids; medians of per-round tokens/s.",
    }


def run(config_path: str, overrides: list[str], repetitions: int, steps: int) -> dict:
    """Measures the variants on `config_path` and returns the summary (the benchmark's JSON result)."""
    from pipeline import config as config_lib
    from pipeline import training

    task, preprocessing, config, datasets = build_datasets(config_lib, overrides, config_path)
    model = task.build_model(preprocessing)
    training.compile_model(model, task, config, steps_per_epoch=10_000 // config.train.epochs)
    iterators = endless_iterators(datasets)
    rounds = measure(model, iterators, repetitions, steps)
    return summarize(config, rounds, steps, overrides)


# The speed suite's settings: the full run is this script's defaults; the quick one a smoke run on the tiny
# synthetic config (its figures are not for reporting).
SUITE_SETTINGS = {
    False: {"config": harness.DEFAULT_CONFIG, "repetitions": 5, "steps": 20},
    True: {"config": "configs/tiny/sentiment.yaml", "repetitions": 1, "steps": 2},
}


def figures(quick: bool) -> list[dict]:
    """The speed suite's `bucketing` figure: real tokens/s with length buckets vs padding to max length."""
    settings = SUITE_SETTINGS[quick]
    if settings["config"] == harness.DEFAULT_CONFIG:
        harness.require_imdb()
    result = run(settings["config"], list(BENCHMARK_OVERRIDES), settings["repetitions"], settings["steps"])
    details = {key: value for key, value in result.items()
               if key not in ("bucketed_tokens_per_second", "padded_to_max_length_tokens_per_second", "baseline",
                              "ratio", "target", "target_met")}
    return [{
        "figure": "bucketing",
        "value": result["bucketed_tokens_per_second"],
        "unit": "real (non-padding) tokens per second, bucketed",
        "baseline": result["padded_to_max_length_tokens_per_second"],
        "baseline_is": "real tokens per second with every batch padded to data.max_sequence_length",
        "ratio": result["ratio"],
        "target": result["target"],
        "target_met": result["target_met"],
        "details": {"config": settings["config"], **details},
    }]


def main() -> None:
    """Runs the benchmark and prints its JSON line."""
    arguments = parse_arguments()
    harness.require_imdb()
    harness.configure_logging()
    overrides = list(BENCHMARK_OVERRIDES) + arguments.overrides
    with harness.stdout_to_stderr():
        result = run(arguments.config, overrides, arguments.repetitions, arguments.steps)
    harness.report("bucketing", result)

if __name__ == "__main__":
    main()
