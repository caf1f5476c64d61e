"""Training step time of the IMDB sentiment model in float32, with XLA (`runtime.jit_compile`) and in mixed_bfloat16.

Usage (from the repository root):
    python benchmarks/precision_compile.py [--rounds 7] [--steps 5] [--length 256]

The model is the one configs/sentiment_imdb.yaml builds (BiGRU 128 per direction, 128-dim embedding of 20k
words, max pooling, dropout, Adam with clipping), trained on synthetic batches of the same shapes (64 reviews of
`--length` tokens, which the real bucketed batches average around). Three variants are built once each and then
timed in interleaved rounds of `--steps` training steps (`train_on_batch`, the same compiled step `fit` runs):

    float32          the default
    xla              `model.compile(jit_compile=True)` (runtime.jit_compile; needs runtime.deterministic: false)
    mixed_bfloat16   Keras' mixed_bfloat16 policy (runtime.mixed_precision); variables and softmax stay float32

Figures: median step time of each, and speed relative to float32 (float32 step time / variant step time; above
1 is faster). Op determinism stays off for all three, so the comparison is like for like.
"""

import argparse
import time

import numpy as np

import harness

CONFIG = "configs/sentiment_imdb.yaml"
VARIANTS = ("float32", "xla", "mixed_bfloat16")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per variant per round (default: %(default)s)")
    parser.add_argument("--length", type=int, default=256, help="tokens per review (default: %(default)s)")
    return parser.parse_args()


def build_variant(name: str, model_config, vocabulary_size: int, learning_rate: float, clipnorm: float):
    """A compiled sentiment classifier under the variant's dtype policy and compilation."""
    import keras
    from pipeline.models import sentiment_classifier

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if name == "mixed_bfloat16" else "float32")
    try:
        model = sentiment_classifier.build_sentiment_classifier(model_config, vocabulary_size=vocabulary_size,
                                                                num_classes=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=name == "xla")
    return model


def measure(rounds: int, steps: int, length: int, batch_size: int = 64) -> dict:
    """Step times of the three variants, interleaved in one process."""
    import keras
    from pipeline import config as config_lib

    config = config_lib.load_config([CONFIG], [])
    keras.utils.set_random_seed(config.runtime.seed)
    vocabulary_size = config.data.vocabulary_size
    random = np.random.default_rng(0)
    token_ids = random.integers(2, vocabulary_size, size=(batch_size, length), dtype=np.int32)
    lengths = random.integers(length // 4, length + 1, size=batch_size)
    token_ids[np.arange(length)[None, :] >= lengths[:, None]] = 0  # right padding, as the real batches have
    labels = random.integers(0, 2, size=batch_size)
    features = {"token_ids": token_ids}
    models = {name: build_variant(name, config.model, vocabulary_size, config.train.learning_rate,
                                  config.train.clipnorm) for name in VARIANTS}
    for name, model in models.items():
        started = time.perf_counter()
        for _ in range(2):
            model.train_on_batch(features, labels)  # traces and compiles
        harness.progress(f"{name}: built and warmed up in {time.perf_counter() - started:.1f} s "
                         f"(jit_compile={model.jit_compile})")
    times = {name: [] for name in VARIANTS}
    for round_index in range(rounds):
        order = VARIANTS[round_index % len(VARIANTS):] + VARIANTS[:round_index % len(VARIANTS)]
        for name in order:
            started = time.perf_counter()
            for _ in range(steps):
                loss = models[name].train_on_batch(features, labels)
            times[name].append((time.perf_counter() - started) / steps)
            if not np.isfinite(loss):
                raise RuntimeError(f"{name}: the loss is not finite ({loss})")
    medians = {name: harness.median(values) for name, values in times.items()}
    return {
        "step_ms": {name: harness.rounded(1000 * value, 2) for name, value in medians.items()},
        "speed_vs_float32": {name: harness.rounded(medians["float32"] / value, 3) for name, value in medians.items()},
        "xla_active": bool(models["xla"].jit_compile),
        "batch": f"{batch_size} x {length} tokens (synthetic, right-padded, 25-100% real)",
        "model": f"{CONFIG}: {config.model.cell} {config.model.units} bidirectional={config.model.bidirectional}, "
                 f"embedding {config.model.embedding_dim}, vocabulary {vocabulary_size}",
        "method": f"median over {rounds} interleaved rounds of {steps} train_on_batch steps per variant",
    }


def figures(quick: bool = False) -> list[dict]:
    """Precision and compilation figures for the speed suite, one dict per figure line."""
    result = measure(rounds=3, steps=2, length=64) if quick else measure(rounds=7, steps=5, length=256)
    return [{"figure": f"training_step_{name}_vs_float32", "value": result["step_ms"][name],
             "unit": "ms per training step", "baseline": result["step_ms"]["float32"],
             "baseline_is": "float32 ms per training step, same run", "ratio": result["speed_vs_float32"][name],
             "ratio_is": "speed relative to float32 (float32 step time / this step time)",
             "target": None, "target_met": None,
             "batch": result["batch"], "model": result["model"], "method": result["method"]}
            for name in ("xla", "mixed_bfloat16")]


def main() -> None:
    arguments = parse_arguments()
    harness.configure_logging()
    result = measure(arguments.rounds, arguments.steps, arguments.length)
    result.update({"baseline": "float32 step time, same run", "ratio": result["speed_vs_float32"]})
    harness.report("precision_compile", result)


if __name__ == "__main__":
    main()
