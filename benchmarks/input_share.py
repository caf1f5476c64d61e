"""Input pipeline share: the time the task's tf.data pipeline takes to produce a batch, relative to a training step.

Usage (from the repository root), as a section of the speed suite:
    python benchmarks/speed_suite.py --only input_share [--quick]

It reuses the pipeline_vs_fit section's setup (benchmarks/pipeline_overhead.py: the IMDB files config with its
smaller model, so a conservative share; the cached, bucketed, shuffled train dataset of `SentimentTask`). Each
repetition first iterates one whole epoch of that dataset with no model attached (seconds per batch: everything
the input pipeline does for one batch, its per-epoch work and Python iterator included), then fits `steps`
pipeline training steps (seconds per step, callbacks included). share = input seconds per batch / step seconds,
the median over repetitions. This is an upper bound on the step's wait for input: with prefetching, the input
work overlaps the previous step, and only the part that competes for the CPU cores (two here) can slow the step
down.
"""

import time

import harness
import pipeline_overhead

TARGET_SHARE = 0.05
REPETITIONS = {False: 7, True: 1}


def time_input(setup) -> float:
    """Seconds per batch to iterate one whole epoch of the pipeline's train dataset alone.

    A whole epoch, as in a run: the per-epoch work (the shuffled batch plan, a new iterator) is spread over
    the epoch's batches, not over a short timing window.
    """
    view, _ = setup.pipeline_view(None)
    started = time.perf_counter()
    batches = sum(1 for _ in view)
    return (time.perf_counter() - started) / batches


def figures(quick: bool) -> list[dict]:
    """The `input_share` figure."""
    setup, overrides = pipeline_overhead.suite_setup(quick)
    steps = setup.steps
    input_seconds, step_seconds = [], []
    for repetition in range(REPETITIONS[quick]):
        input_seconds.append(time_input(setup))
        timing, _ = setup.fit_pipeline(steps, with_callbacks=True)
        step_seconds.append(timing["epoch_seconds"] / timing["steps"])
        harness.progress(f"input_share round {repetition + 1}/{REPETITIONS[quick]}: input "
                         f"{1000 * input_seconds[-1]:.2f} ms/batch, training step {1000 * step_seconds[-1]:.1f} ms")
    shares = [batch / step for batch, step in zip(input_seconds, step_seconds)]
    share = harness.median(shares)
    model = setup.config.model
    return [{
        "figure": "input_share",
        "value": harness.rounded(harness.median(input_seconds), 6),
        "unit": "seconds per batch (input pipeline alone)",
        "baseline": harness.rounded(harness.median(step_seconds), 5),
        "baseline_is": "seconds per pipeline training step (model.fit with the run's callbacks)",
        "ratio": harness.rounded(share),
        "target": f"ratio (input seconds per batch / training step seconds) <= {TARGET_SHARE}",
        "target_met": bool(share <= TARGET_SHARE),
        "details": {
            "config": pipeline_overhead.SUITE_SETTINGS[quick]["config"],
            "overrides": overrides,
            "model": f"{model.cell} x{model.layers}, units {model.units}, bidirectional {model.bidirectional}, "
                     f"embedding {model.embedding_dim}, batch {setup.config.train.batch_size}, "
                     f"max_sequence_length {setup.config.data.max_sequence_length}",
            "steps_per_timing": steps,
            "paired_shares": [harness.rounded(value) for value in shares],
            "method": "per repetition: iterate one epoch of the train dataset alone, then fit steps_per_timing "
                      "pipeline steps; share = input s/batch / step s; median. An upper bound on the step's "
                      "wait for input (prefetch overlaps the two).",
        },
    }]
