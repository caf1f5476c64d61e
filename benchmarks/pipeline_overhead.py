"""Pipeline overhead: the pipeline's training step time vs a bare `model.fit` of the same model on the same batches.

Usage (from the repository root):
    python benchmarks/pipeline_overhead.py [--set key=value ...] [--repetitions 5] [--steps 0]
    python benchmarks/speed_suite.py --only pipeline_vs_fit     (the same defaults, as a suite section)

Variants, interleaved in one process (the order rotates each repetition), each timed as one `model.fit` epoch:
    pipeline               `training.compile_model` (the run's optimizer, schedule, loss and metrics), fit on the
                           task's bucketed train dataset (cache, seeded shuffle, bucketing, prefetch) with the
                           callbacks of `training.make_callbacks` writing into a fresh temporary run directory.
    bare                   an identical model with the same starting weights, compiled with plain
                           `keras.optimizers.Adam(clipnorm=..., use_ema=...)` (weight averaging as the config
                           asks, since it is optimizer work either way), fit with no callbacks on an in-memory replay of
                           exactly the batches the pipeline variant saw in that repetition.
    pipeline_no_callbacks  diagnostic: the pipeline model and dataset without the callbacks, which splits the
                           overhead into input pipeline and callbacks.

Step time = epoch span / steps, the span running from the epoch's start to the end of every callback's
`on_epoch_end` (a timing callback placed last, with epoch hooks only, so Keras keeps its asynchronous batch
dispatch where it had it). Per-epoch costs (shuffle-buffer refill, checkpoint backup, CSV and TensorBoard logs)
are thus included; by default each timed epoch is a whole pass over the train split, so they weigh what they
weigh in a real run (`--steps 50` makes them weigh 7 times more: 0.90 against 0.985 on an idle AVX-512
machine). The whole `fit` call is reported too: in this process it sometimes ends with a stall after the last
callback (1-5 s on an AVX2 machine, about 19 s on an AVX-512 one; every variant), in C++ teardown, which would
swamp the step times; real training runs show none (their fit time is the sum of their epochs).
Target: ratio (the pipeline's throughput relative to bare: the median over repetitions of bare step seconds /
pipeline step seconds, each pair run back to back) >= 0.95.
"""

import argparse
import functools
import tempfile
import time

import numpy as np

import harness

# A smaller model than the IMDB run so that 3 variants x 5 whole epochs fit in about 6 minutes; smaller steps make
# any fixed per-step overhead weigh more, so the ratio is a conservative one (the IMDB model itself: 0.98).
BENCHMARK_OVERRIDES = (
    "model.units=32",
    "model.embedding_dim=64",
    "data.max_sequence_length=128",
)
VARIANTS = ("pipeline", "bare", "pipeline_no_callbacks")
TARGET_RATIO = 0.95
DEFAULT_STEPS = 0  # a whole epoch of the train split
DEFAULT_REPETITIONS = 5  # interleaved: the shared CPU's speed drifts by 2x over minutes
WARMUP_STEPS = 20  # enough distinct batch shapes that the train step settles on [None, None]
METHOD = (
    'Each repetition fits one epoch (a whole pass over the train split, or --steps steps) per variant, in rotating '
    'order; step time = epoch span (epoch '
    'start to the end of all on_epoch_end callbacks) / steps; medians over repetitions. ratio is the median of each'
    " repetition's own bare/pipeline ratio (runs next to each other in time, so robust to the shared machine's "
    'speed drifting between repetitions); ratio_of_medians is given beside it. Same batches: the bare replay is '
    'taken from a second train dataset built by the same task with the same seed, advanced in lockstep (the k-th '
    'pass over each yields identical batches), materialized as NumPy arrays and fed through a pure tf.data graph '
    "(from_tensor_slices over the stacked batches, a slice back to each batch's own shape, prefetch), so the bare "
    'side pays no Python generator and no per-batch fit call. Both caches are filled by one full pass first (a '
    "run's epochs 2+). Neither side gets validation data (the step time is the figure), so the pipeline's best-"
    'weights checkpoint and early stopping skip with a warning; its last-epoch backup, CSV and TensorBoard logs run'
    ' as in training.train. Both use verbose=2, as training.train does when stdout is not a terminal.'
)


def parse_arguments() -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=harness.DEFAULT_CONFIG, help="config file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, repeatable; wins over the benchmark's own overrides")
    parser.add_argument("--repetitions", type=int, default=DEFAULT_REPETITIONS,
                        help="timed epochs per variant (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help="steps per timed fit; 0 runs a whole epoch of the train split (default: %(default)s)")
    return parser.parse_args()


class MirroredEpochs:
    """Hands out, batch for batch, the passes the pipeline's train dataset makes, read from an identical twin.

    Two datasets built by the same task with the same seed shuffle identically pass after pass, so the twin's
    k-th pass holds the batches the pipeline dataset's k-th pass (k-th `fit`) feeds. The twin can run ahead.

    Args:
        twin_dataset: A second `task.datasets(splits, preprocessing)["train"]`, built right after the one being fitted.
    """

    def __init__(self, twin_dataset):
        self.twin_dataset = twin_dataset
        self.twin_passes = 0
        self.pipeline_passes = 0

    def note_pipeline_pass(self) -> int:
        """Records that the pipeline dataset is about to be iterated once; returns that pass's index."""
        self.pipeline_passes += 1
        return self.pipeline_passes - 1

    def fill_cache(self) -> None:
        """Reads the twin's pass 0 to the end, which fills its cache (the pipeline dataset's pass 0 must too)."""
        if self.twin_passes != 0:
            raise ValueError("the twin's cache fills on its first pass only")
        for _ in self.twin_dataset:
            pass
        self.twin_passes = 1

    def batches(self, pass_index: int, steps: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """The (token_ids, labels) batches of the pipeline dataset's pass `pass_index` (the first `steps`)."""
        if pass_index < self.twin_passes:
            raise ValueError(f"pass {pass_index} was already skipped (the twin is at pass {self.twin_passes})")
        while self.twin_passes < pass_index:
            for _ in self.twin_dataset.take(1):  # a new pass; reading one batch is enough to advance the seed
                pass
            self.twin_passes += 1
        view = self.twin_dataset if steps is None else self.twin_dataset.take(steps)
        self.twin_passes += 1
        return [(features["token_ids"].numpy(), labels.numpy()) for features, labels in view]


def replay_dataset(batches: list[tuple[np.ndarray, np.ndarray]]):
    """A tf.data dataset yielding exactly `batches` (any shapes), from memory, with no Python per batch.

    The batches are stacked into one zero-padded array; a map slices each back to its own [batch, time].
    """
    import tensorflow as tf

    count = len(batches)
    widest_batch = max(token_ids.shape[0] for token_ids, _ in batches)
    longest = max(token_ids.shape[1] for token_ids, _ in batches)
    stacked_ids = np.zeros([count, widest_batch, longest], dtype=np.int32)  # (batches, batch, time)
    stacked_labels = np.zeros([count, widest_batch], dtype=batches[0][1].dtype)
    shapes = np.zeros([count, 2], dtype=np.int32)  # (batches, [batch size, time])
    for index, (token_ids, labels) in enumerate(batches):
        stacked_ids[index, :token_ids.shape[0], :token_ids.shape[1]] = token_ids
        stacked_labels[index, :labels.shape[0]] = labels
        shapes[index] = token_ids.shape

    def unstack(token_ids, labels, shape):
        return {"token_ids": token_ids[:shape[0], :shape[1]]}, labels[:shape[0]]

    dataset = tf.data.Dataset.from_tensor_slices((stacked_ids, stacked_labels, shapes))
    return dataset.map(unstack).prefetch(tf.data.AUTOTUNE)


@functools.cache
def epoch_span_class():
    """The Keras callback class timing an epoch (built on first use, after Keras is imported)."""
    import keras

    class EpochSpan(keras.callbacks.Callback):
        """Records the seconds from `on_epoch_begin` to `on_epoch_end`; epoch hooks only (no batch hooks)."""

        def __init__(self):
            super().__init__()
            self.seconds = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.started

    return EpochSpan


def timed_fit(model, dataset, callbacks: list, steps: int) -> dict:
    """Fits one epoch with an epoch timer placed after `callbacks`; returns the epoch span, fit time and steps."""
    span = epoch_span_class()()
    started = time.perf_counter()
    model.fit(dataset, epochs=1, callbacks=callbacks + [span], shuffle=False, verbose=2)
    return {"epoch_seconds": span.seconds, "fit_seconds": time.perf_counter() - started, "steps": steps}


class BenchmarkSetup:
    """The task, the two models and the datasets the variants are timed on."""

    def __init__(self, config, steps: int | None):
        import keras

        from pipeline import tasks
        from pipeline import training

        self.config = config
        self.steps = steps
        self.task = tasks.create_task(config)
        training.configure_runtime(config.runtime)
        splits = self.task.load_splits()
        preprocessing = self.task.fit_preprocessing(splits)
        self.train_dataset = self.task.datasets(splits, preprocessing)["train"]
        self.mirror = MirroredEpochs(self.task.datasets(splits, preprocessing)["train"])
        self.epoch_steps = self._fill_caches()
        self.pipeline_model = self.task.build_model(preprocessing)
        training.compile_model(self.pipeline_model, self.task, config, self.epoch_steps)
        self.bare_model = self.task.build_model(preprocessing)
        self.bare_model.set_weights(self.pipeline_model.get_weights())
        self.bare_model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.train.learning_rate,
                                            clipnorm=config.train.clipnorm,
                                            use_ema=config.train.ema_momentum is not None,
                                            ema_momentum=config.train.ema_momentum or 0.99),
            loss=keras.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])

    def _fill_caches(self) -> int:
        """One full pass over both datasets fills their caches (as epoch 1 of a run does); returns its steps."""
        self.mirror.note_pipeline_pass()
        steps = sum(1 for _ in self.train_dataset)
        self.mirror.fill_cache()
        return steps

    def pipeline_view(self, steps: int | None):
        """The pipeline's train dataset for one fit, and the index of the pass that fit makes."""
        view = self.train_dataset if steps is None else self.train_dataset.take(steps)
        return view, self.mirror.note_pipeline_pass()

    def fit_pipeline(self, steps: int | None, with_callbacks: bool) -> tuple[dict, int]:
        """One pipeline epoch, in a fresh temporary run directory; returns (timing, pass index)."""
        from pipeline import training

        view, pass_index = self.pipeline_view(steps)
        steps_run = self.epoch_steps if steps is None else min(steps, self.epoch_steps)
        with tempfile.TemporaryDirectory(prefix="pipeline_overhead_") as run_dir:
            callbacks = training.make_callbacks(self.config, run_dir) if with_callbacks else []
            timing = timed_fit(self.pipeline_model, view, callbacks, steps_run)
        return timing, pass_index

    def fit_bare(self, batches: list) -> dict:
        """One bare epoch over a replay of `batches`; returns its timing."""
        return timed_fit(self.bare_model, replay_dataset(batches), [], len(batches))


def rotated(items: tuple, shift: int) -> list:
    """`items` starting at position `shift` (wrapping), so that no variant always runs first."""
    return [items[(index + shift) % len(items)] for index in range(len(items))]


def pipeline_pass_ahead(order: list, setup: BenchmarkSetup) -> int:
    """Index of the pass the `pipeline` variant will make in this repetition (it may run after others)."""
    ahead = 0
    for variant in order:
        if variant == "pipeline":
            return setup.mirror.pipeline_passes + ahead
        if variant == "pipeline_no_callbacks":
            ahead += 1
    raise ValueError("order has no pipeline variant")


def warm_up(setup: BenchmarkSetup, steps: int = WARMUP_STEPS) -> None:
    """Traces each model's train step on a few batches before anything is timed."""
    _, pass_index = setup.fit_pipeline(steps, with_callbacks=True)
    setup.fit_bare(setup.mirror.batches(pass_index, steps))
    setup.fit_pipeline(steps, with_callbacks=False)


def run_repetition(setup: BenchmarkSetup, order: list) -> dict[str, dict]:
    """Times one epoch of each variant in `order`; returns the timing by variant."""
    replay = setup.mirror.batches(pipeline_pass_ahead(order, setup), setup.steps)
    timings = {}
    for variant in order:
        if variant == "bare":
            timing = setup.fit_bare(replay)
        else:
            timing, _ = setup.fit_pipeline(setup.steps, with_callbacks=variant == "pipeline")
        timings[variant] = timing
        harness.progress(f"  {variant}: epoch {timing['epoch_seconds']:.2f} s for {timing['steps']} steps "
                         f"({1000 * timing['epoch_seconds'] / timing['steps']:.1f} ms/step); "
                         f"whole fit call {timing['fit_seconds']:.2f} s")
    return timings


def per_step(timings: list[dict], key: str) -> list[float]:
    """Seconds per step of each timing, from its `key` (`epoch_seconds` or `fit_seconds`)."""
    return [timing[key] / timing["steps"] for timing in timings]


def summarize(setup: BenchmarkSetup, timings: dict[str, list[dict]], overrides: list[str]) -> dict:
    """Builds the JSON result from the measurements."""
    step_seconds = {variant: per_step(values, "epoch_seconds") for variant, values in timings.items()}
    medians = {variant: harness.median(values) for variant, values in step_seconds.items()}
    fit_medians = {variant: harness.median(per_step(values, "fit_seconds")) for variant, values in timings.items()}
    steps = timings["pipeline"][0]["steps"]
    paired_ratios = [bare / pipeline for bare, pipeline in zip(step_seconds["bare"], step_seconds["pipeline"])]
    ratio = harness.median(paired_ratios)
    model = setup.config.model
    return {
        "pipeline_step_seconds": harness.rounded(medians["pipeline"], 5),
        "bare_step_seconds": harness.rounded(medians["bare"], 5),
        "baseline": "bare model.fit (bare_step_seconds), measured in this run",
        "ratio": harness.rounded(ratio),
        "target": f"ratio = median over repetitions of bare / pipeline step seconds >= {TARGET_RATIO}",
        "target_met": bool(ratio >= TARGET_RATIO),
        "ratio_of_medians": harness.rounded(medians["bare"] / medians["pipeline"]),
        "paired_ratios": [harness.rounded(value) for value in paired_ratios],
        "pipeline_no_callbacks_step_seconds": harness.rounded(medians["pipeline_no_callbacks"], 5),
        "callbacks_seconds_per_epoch": harness.rounded(
            (medians["pipeline"] - medians["pipeline_no_callbacks"]) * steps, 3),
        "input_pipeline_seconds_per_epoch": harness.rounded(
            (medians["pipeline_no_callbacks"] - medians["bare"]) * steps, 3),
        "whole_fit_call_step_seconds": {variant: harness.rounded(value, 5) for variant, value in fit_medians.items()},
        "steps_per_fit": steps,
        "train_split_steps_per_epoch": setup.epoch_steps,
        "repetitions": len(timings["pipeline"]),
        "step_seconds_per_repetition": {variant: [harness.rounded(value, 5) for value in values]
                                        for variant, values in step_seconds.items()},
        "model": f"{model.cell} x{model.layers}, units {model.units}, bidirectional {model.bidirectional}, "
                 f"embedding {model.embedding_dim}, pooling {model.pooling}, batch {setup.config.train.batch_size}, "
                 f"max_sequence_length {setup.config.data.max_sequence_length}",
        "overrides": overrides,
        "method": METHOD,
    }


def prepared_setup(config, steps: int | None, warmup_steps: int = WARMUP_STEPS) -> BenchmarkSetup:
    """The models and datasets for `config`, with every variant's train step traced."""
    setup = BenchmarkSetup(config, steps)
    harness.progress(f"{setup.epoch_steps} steps per epoch; warming up")
    warm_up(setup, warmup_steps)
    return setup


def measure(setup: BenchmarkSetup, repetitions: int) -> dict[str, list[dict]]:
    """Times every variant `repetitions` times, interleaved in rotating order; returns timings by variant."""
    timings = {variant: [] for variant in VARIANTS}
    for repetition in range(repetitions):
        order = rotated(VARIANTS, repetition)
        harness.progress(f"repetition {repetition + 1}/{repetitions}: {', '.join(order)}")
        for variant, timing in run_repetition(setup, order).items():
            timings[variant].append(timing)
    return timings


# The speed suite's settings: the full run is this script's defaults; the quick one a smoke run on the tiny
# synthetic config (its figures are not for reporting).
SUITE_SETTINGS = {
    False: {"config": harness.DEFAULT_CONFIG, "overrides": BENCHMARK_OVERRIDES, "steps": DEFAULT_STEPS or None,
            "repetitions": DEFAULT_REPETITIONS, "warmup_steps": WARMUP_STEPS},
    True: {"config": "configs/tiny/sentiment.yaml", "overrides": (), "steps": 4, "repetitions": 1, "warmup_steps": 2},
}


@functools.cache
def suite_setup(quick: bool) -> tuple[BenchmarkSetup, list[str]]:
    """The setup of the suite's pipeline_vs_fit section, built once per process (input_share reuses it)."""
    from pipeline import config as config_lib

    settings = SUITE_SETTINGS[quick]
    if settings["config"] == harness.DEFAULT_CONFIG:
        harness.require_imdb()
    overrides = list(settings["overrides"])
    config = config_lib.load_config([settings["config"]], overrides)
    return prepared_setup(config, settings["steps"], settings["warmup_steps"]), overrides


def figures(quick: bool) -> list[dict]:
    """The speed suite's `pipeline_vs_fit` figure: pipeline step vs bare `model.fit` step on the same batches."""
    setup, overrides = suite_setup(quick)
    result = summarize(setup, measure(setup, SUITE_SETTINGS[quick]["repetitions"]), overrides)
    details = {key: value for key, value in result.items()
               if key not in ("pipeline_step_seconds", "bare_step_seconds", "baseline", "ratio", "target",
                              "target_met")}
    return [{
        "figure": "pipeline_vs_fit",
        "value": result["pipeline_step_seconds"],
        "unit": "seconds per training step (pipeline)",
        "baseline": result["bare_step_seconds"],
        "baseline_is": "seconds per training step of a bare model.fit on the same batches",
        "ratio": result["ratio"],
        "target": result["target"],
        "target_met": result["target_met"],
        "details": {"config": SUITE_SETTINGS[quick]["config"], **details},
    }]


def main() -> None:
    """Runs the benchmark and prints its JSON line."""
    arguments = parse_arguments()
    harness.require_imdb()
    harness.configure_logging()
    from pipeline import config as config_lib

    overrides = list(BENCHMARK_OVERRIDES) + arguments.overrides
    config = config_lib.load_config([arguments.config], overrides)
    with harness.stdout_to_stderr():
        setup = prepared_setup(config, arguments.steps or None)
        timings = measure(setup, arguments.repetitions)
    harness.report("pipeline_overhead", summarize(setup, timings, overrides))

if __name__ == "__main__":
    main()
