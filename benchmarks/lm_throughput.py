"""Language-model training throughput in real tokens/s: sampled softmax vs full softmax over a 20,000-word vocabulary.

Usage (from the repository root):
    python benchmarks/lm_throughput.py [--rounds 5] [--steps 2] [--batch-size N] [--sampled N]

The model is the one configs/lm_imdb.yaml builds (word-level GRU 256, 128-dim embedding, dropout, carried
state, `data.vocabulary_size` 20000 outputs), compiled as `train` compiles it (the task's loss and metrics,
Adam with clipping). Both variants train on the same synthetic batches of `batch_size` rows of `tbptt_steps`
token ids drawn from a Zipf distribution over the vocabulary (word frequencies in text fall about so; no
data is read), so every token is a real one: the stream layout has no padding. Each variant is built once,
warmed up (tracing), then timed in interleaved rounds of `--steps` training steps (`train_on_batch`, the
step `fit` runs, the carried state flowing from step to step):

    sampled   `train.sampled_softmax` classes per step (the config's value), log-uniformly drawn
    full      `train.sampled_softmax: 0`: the full softmax, and the training metrics over its logits

Figures: median real tokens/s of each and their ratio (sampled / full; above 1 is faster). Op determinism
is on for both, as in a run.
"""

import argparse
import time

import numpy as np

import harness

CONFIG = "configs/lm_imdb.yaml"
VARIANTS = ("sampled", "full")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=2, help="training steps per variant per round (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=None, help="rows per batch (default: the config's)")
    parser.add_argument("--sampled", type=int, default=None,
                        help="classes sampled per step (default: the config's train.sampled_softmax)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="config override, e.g. --set model.units=128 (repeatable)")
    return parser.parse_args()


def zipf_token_ids(rows: int, steps: int, vocabulary_size: int, seed: int = 0) -> np.ndarray:
    """int32 [rows, steps + 1] ids in 3..vocabulary_size-1 (no padding, unknown or line break), Zipf-distributed."""
    ranks = np.arange(1, vocabulary_size - 2)
    probabilities = 1.0 / ranks
    probabilities /= probabilities.sum()
    draws = np.random.default_rng(seed).choice(len(ranks), size=(rows, steps + 1), p=probabilities)
    return (draws + 3).astype(np.int32)


def build_variant(name: str, config, sampled: int, vocabulary_size: int, total_steps: int):
    """The language model of the config, compiled as a run compiles it, with or without the sampled softmax."""
    from pipeline import config as config_lib
    from pipeline import tasks
    from pipeline import training
    from pipeline.data import language_model as text_stream
    from pipeline.tasks import language_model

    tree = config_lib.to_tree(config)
    tree["train"]["sampled_softmax"] = sampled if name == "sampled" else 0
    variant_config = config_lib.from_tree(tree)
    task = tasks.create_task(variant_config)
    vocabulary = list(text_stream.RESERVED) + [f"word{index}" for index in range(vocabulary_size - 3)]
    model = task.build_model(language_model.LanguageModelPreprocessing(vocabulary))
    training.compile_model(model, task, variant_config, max(total_steps // variant_config.train.epochs, 1))
    return model


def measure(rounds: int, steps: int, batch_size=None, sampled=None, overrides=()) -> dict:
    """Real tokens/s of both variants, interleaved in one process."""
    from pipeline import config as config_lib
    from pipeline import training

    config = config_lib.load_config([CONFIG], list(overrides))
    training.configure_runtime(config.runtime)
    batch_size = batch_size or config.train.batch_size
    sampled = config.train.sampled_softmax if sampled is None else sampled
    vocabulary_size, tbptt_steps = config.data.vocabulary_size, config.train.tbptt_steps
    total_steps = 2 + rounds * steps
    token_ids = [zipf_token_ids(batch_size, tbptt_steps, vocabulary_size, seed) for seed in range(total_steps)]
    batches = [({"token_ids": ids[:, :-1]}, ids[:, 1:]) for ids in token_ids]
    models = {name: build_variant(name, config, sampled, vocabulary_size, total_steps) for name in VARIANTS}
    position = {name: 0 for name in VARIANTS}

    def train_steps(name: str, count: int) -> float:
        for _ in range(count):
            features, labels = batches[position[name]]
            logs = models[name].train_on_batch(features, labels, return_dict=True)
            position[name] += 1
        if not np.isfinite(logs["loss"]):
            raise RuntimeError(f"{name}: the loss is not finite ({logs['loss']})")
        return logs["loss"]

    for name in VARIANTS:
        started = time.perf_counter()
        train_steps(name, 2)  # traces
        harness.progress(f"{name}: built and warmed up in {time.perf_counter() - started:.1f} s")
    seconds = {name: [] for name in VARIANTS}
    for round_index in range(rounds):
        order = VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]
        for name in order:
            started = time.perf_counter()
            train_steps(name, steps)
            seconds[name].append((time.perf_counter() - started) / steps)
        harness.progress(f"round {round_index + 1}: " + ", ".join(
            f"{name} {batch_size * tbptt_steps / seconds[name][-1]:.0f} tokens/s" for name in VARIANTS))
    tokens_per_step = batch_size * tbptt_steps
    rates = {name: tokens_per_step / harness.median(values) for name, values in seconds.items()}
    return {
        "tokens_per_second": {name: harness.rounded(rate, 1) for name, rate in rates.items()},
        "step_ms": {name: harness.rounded(1000 * harness.median(values), 1) for name, values in seconds.items()},
        "ratio": harness.rounded(rates["sampled"] / rates["full"], 3),
        "ratio_is": "sampled-softmax tokens/s / full-softmax tokens/s (above 1: the sampled softmax is faster)",
        "baseline": "full softmax over the whole vocabulary, same run, interleaved",
        "batch": f"{batch_size} rows x {tbptt_steps} tokens, every token real (synthetic Zipf-distributed ids)",
        "model": f"{CONFIG}: {config.model.cell} {config.model.units}, embedding {config.model.embedding_dim}, "
                 f"{config.model.layers} layer(s), vocabulary {vocabulary_size}, sampled softmax {sampled}",
        "method": f"median over {rounds} interleaved rounds of {steps} train_on_batch steps per variant, after "
                  "2 warm-up steps each",
    }


def main() -> None:
    arguments = parse_arguments()
    harness.configure_logging()
    with harness.stdout_to_stderr():
        result = measure(arguments.rounds, arguments.steps, arguments.batch_size, arguments.sampled,
                         arguments.overrides)
    harness.report("lm_throughput", result)


if __name__ == "__main__":
    main()
