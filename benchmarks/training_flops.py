"""Training FLOP/s of the IMDB classifier as a share of the machine's fp32 matmul peak.

Usage (from the repository root), as a section of the speed suite:
    python benchmarks/speed_suite.py --only training_flops [--quick]

Two models, each built by `pipeline.models` and compiled by `training.compile_model` (Adam with clipping and the
cosine schedule): the one `configs/sentiment_imdb.yaml` trains (embedding 128, bidirectional GRU 128, max pooling,
dropout, word dropout), and `configs/sentiment_imdb_bilstm.yaml`, the keras-io IMDB architecture (2-layer
bidirectional LSTM 64; full runs only). Each is fed synthetic batches of the config's batch size with every position a real token
(no padding, so every computed FLOP is a useful one). FLOPs are counted analytically (benchmarks/flops.py: the
recurrent and output layers' matrix products and biases, x3 for forward + backward; cross-checked against
TensorFlow's graph profiler in tests/test_speed_suite.py). Each repetition times one matmul-peak sample and then
`--steps` training steps (`model.fit` on the in-memory batches), back to back, so each ratio compares two
measurements taken seconds apart on this shared machine; the figure is the median of those ratios.

Full runs also measure the same model at a larger batch: per time step the recurrent layers run a handful of small
matrix products whose fixed per-op cost a larger batch spreads over more FLOPs.
"""

import time

import numpy as np

import flops
import harness
import matmul_peak

CONFIG = "configs/sentiment_imdb.yaml"
BILSTM_CONFIG = "configs/sentiment_imdb_bilstm.yaml"
NUM_CLASSES = 2
TARGET_SHARE = 0.25
TIME_STEPS = {"full": 256, "quick": 32}  # 256: near the median IMDB review length in tokens (about 230)
TOKENS_PER_REPETITION = {"full": 64 * 256 * 8, "quick": 64 * 32 * 2}
REPETITIONS = {"full": 5, "quick": 1}
LARGER_BATCH = 256
PEAK_SAMPLES = 3  # matmul samples per round (their median), taken just before the round's training steps


def build_model(batch_size: int | None, config_path: str = CONFIG):
    """A config's classifier, compiled as the pipeline compiles it; returns (config, model).

    Args:
        batch_size: Overrides `train.batch_size`; None keeps the config's.
        config_path: The sentiment config whose model and training settings are used.
    """
    from pipeline import config as config_lib
    from pipeline import tasks
    from pipeline import training
    from pipeline.models import sentiment_classifier

    overrides = [] if batch_size is None else [f"train.batch_size={batch_size}"]
    config = config_lib.load_config([config_path], overrides)
    training.configure_runtime(config.runtime)
    model = sentiment_classifier.build_sentiment_classifier(
        config.model, vocabulary_size=config.data.vocabulary_size, num_classes=NUM_CLASSES)
    training.compile_model(model, tasks.create_task(config), config,
                           steps_per_epoch=10_000 // config.train.epochs)
    return config, model


def synthetic_batches(batch_size: int, time_steps: int, vocabulary_size: int):
    """An endless tf.data dataset repeating one batch of random non-padding token ids and labels."""
    import tensorflow as tf

    generator = np.random.default_rng(0)
    token_ids = generator.integers(2, vocabulary_size, size=(batch_size, time_steps)).astype(np.int32)
    labels = generator.integers(0, NUM_CLASSES, size=(batch_size,)).astype(np.int32)
    return tf.data.Dataset.from_tensors(({"token_ids": token_ids}, labels)).repeat()


def time_training(model, dataset, steps: int) -> float:
    """Seconds per training step over one `fit` of `steps` steps."""
    started = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    return (time.perf_counter() - started) / steps


def measure_variant(batch_size: int | None, mode: str, peak_size: int, config_path: str = CONFIG) -> dict:
    """Interleaved peak samples and training timings of a config's classifier at one batch size (None: the
    config's)."""
    time_steps = TIME_STEPS[mode]
    config, model = build_model(batch_size, config_path)
    batch_size = config.train.batch_size
    dataset = synthetic_batches(batch_size, time_steps, config.data.vocabulary_size)
    steps = max(2, TOKENS_PER_REPETITION[mode] // (batch_size * time_steps))
    step_flops = flops.classifier_training_flops(config.model, NUM_CLASSES, batch_size, time_steps)
    time_training(model, dataset, 1)  # warm-up: tracing
    peaks, rates = [], []
    for repetition in range(REPETITIONS[mode]):
        peaks.append(harness.median(matmul_peak.measure(peak_size, PEAK_SAMPLES)))
        rates.append(step_flops / time_training(model, dataset, steps))
        harness.progress(f"training_flops {config_path} batch {batch_size} round {repetition + 1}/{REPETITIONS[mode]}: "
                         f"{rates[-1] / 1e9:.1f} GFLOP/s training, {peaks[-1] / 1e9:.1f} GFLOP/s matmul peak")
    return {"config": config, "config_path": config_path, "batch_size": batch_size, "time_steps": time_steps, "steps": steps,
            "step_flops": step_flops, "peaks": peaks, "rates": rates}


def figure_line(name: str, variant: dict, note: str) -> dict:
    """The JSON figure of one measured variant."""
    share = harness.median([rate / peak for rate, peak in zip(variant["rates"], variant["peaks"])])
    model = variant["config"].model
    return {
        "figure": name,
        "value": harness.rounded(harness.median(variant["rates"]) / 1e9, 2),
        "unit": "GFLOP/s",
        "baseline": harness.rounded(harness.median(variant["peaks"]) / 1e9, 2),
        "baseline_is": "fp32 matmul peak GFLOP/s, sampled between the training timings",
        "ratio": harness.rounded(share),
        "target": f"ratio (training FLOP/s / matmul peak) >= {TARGET_SHARE}",
        "target_met": bool(share >= TARGET_SHARE),
        "details": {
            "model": f"{variant['config_path']}: embedding {model.embedding_dim}, {model.cell} x{model.layers} "
                     f"units {model.units} bidirectional {model.bidirectional}, pooling {model.pooling}",
            "batch": [variant["batch_size"], variant["time_steps"]],
            "training_flops_per_step": variant["step_flops"],
            "steps_per_timing": variant["steps"],
            "paired_ratios": [harness.rounded(rate / peak) for rate, peak in zip(variant["rates"], variant["peaks"])],
            "flop_count": "analytic (benchmarks/flops.py): recurrent and output matmuls + biases, x3 for "
                          "forward+backward; elementwise gate ops, embedding, optimizer not counted",
            "note": note,
        },
    }


def figures(quick: bool) -> list[dict]:
    """`training_flops` at the IMDB config's batch size and, in full runs only, `training_flops_bilstm` (the
    keras-io BiLSTM config) and `training_flops_batch_256` beside it."""
    mode = "quick" if quick else "full"
    peak_size = matmul_peak.QUICK["size"] if quick else matmul_peak.FULL["size"]
    config_batch = measure_variant(None, mode, peak_size)
    lines = [figure_line("training_flops", config_batch,
                         f"the config's batch size (train.batch_size: {config_batch['batch_size']})")]
    if not quick:
        bilstm = measure_variant(None, mode, peak_size, BILSTM_CONFIG)
        lines.append(figure_line("training_flops_bilstm", bilstm,
                                 "the keras-io IMDB architecture (2-layer BiLSTM 64), the config's batch size"))
        larger_batch = measure_variant(LARGER_BATCH, mode, peak_size)
        lines.append(figure_line(
            f"training_flops_batch_{LARGER_BATCH}", larger_batch,
            f"train.batch_size={LARGER_BATCH}: more FLOPs per small per-step op; changes the optimization "
            "(fewer, larger steps), so not the config's default"))
    return lines
