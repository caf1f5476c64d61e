"""Matmul peak: the machine's fp32 FLOP/s on a large square `tf.matmul`, the denominator of the training_flops figure.

Usage (from the repository root), as a section of the speed suite:
    python benchmarks/speed_suite.py --only matmul_peak [--quick]

One traced `tf.matmul` of two [size, size] float32 matrices (2 * size**3 FLOPs), timed to the end of the
computation; the figure is the median over repetitions after a warm-up call. It runs on every core TensorFlow
uses (all of them by default), as the training step does.
"""

import functools
import time

import harness

FULL = {"size": 2048, "repetitions": 9}
QUICK = {"size": 1024, "repetitions": 5}


@functools.cache
def _matmul_inputs(size: int):
    """The traced product and its two random operands (built once per size)."""
    import tensorflow as tf

    generator = tf.random.Generator.from_seed(0)
    left = generator.normal([size, size])
    right = generator.normal([size, size])
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))  # the sum forces the whole product
    product(left, right).numpy()  # warm-up: tracing and thread-pool start
    return product, left, right


def measure_once(size: int) -> float:
    """FLOP/s of one [size, size] x [size, size] float32 product."""
    product, left, right = _matmul_inputs(size)
    started = time.perf_counter()
    product(left, right).numpy()
    return 2 * size ** 3 / (time.perf_counter() - started)


def measure(size: int, repetitions: int) -> list[float]:
    """FLOP/s of `repetitions` products, one after the other."""
    return [measure_once(size) for _ in range(repetitions)]


def figures(quick: bool) -> list[dict]:
    """The `matmul_peak` figure: median fp32 matmul FLOP/s (no baseline: it is the baseline of others)."""
    settings = QUICK if quick else FULL
    samples = measure(settings["size"], settings["repetitions"])
    peak = harness.median(samples)
    harness.progress(f"matmul peak: {peak / 1e9:.1f} GFLOP/s ({settings['size']}x{settings['size']} fp32)")
    return [{
        "figure": "matmul_peak",
        "value": harness.rounded(peak / 1e9, 2),
        "unit": "GFLOP/s",
        "baseline": None,
        "ratio": None,
        "target": None,
        "target_met": None,
        "details": {
            "matrix_size": settings["size"],
            "repetitions": settings["repetitions"],
            "samples_gflops": [harness.rounded(sample / 1e9, 2) for sample in samples],
            "method": "median of tf.matmul float32 [n, n] x [n, n] calls (2 n^3 FLOPs each) after a warm-up",
        },
    }]

