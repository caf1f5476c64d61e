"""Serving latency of the XLA-compiled signature (`export.jit_compile`) vs the plain one, called in-process.

Usage (from the repository root):
    python benchmarks/serving_xla.py [--export exports/NAME/VERSION] [--calls 400] [--throughput-rounds 15]

Two sentiment exports, each written with `export.jit_compile: true` by a process of its own (about a minute each,
see `harness.export_in_own_process`) and loaded here with `tf.saved_model.load`, as a server does:
    imdb  the configs/sentiment_imdb.yaml architecture (BiGRU 128) trained for a few steps on synthetic data, called
          with a 230-word review (the mean IMDB review length): the model a user ships, and the headline figure
    tiny  configs/tiny/sentiment.yaml (GRU 16) called with a 12-word sentence: its whole forward pass is shorter
          than the fixed cost (about 0.15 ms) of dispatching any signature call from Python, which bounds its ratio
--export measures that SavedModel (a `text` input, both signatures) as the imdb model instead.
Measured in one process, interleaved in rounds of 25 calls so that the shared machine's drift hits both alike:

    plain   signatures["serving_default"](text=...)       string ops, lookups and the model as one graph
    xla     signatures["serving_default_xla"](text=...)   the same, with the model call compiled by XLA

Figures per model: batch-1 p50 and p99 latency of each (target, on the imdb model: xla p50 / plain p50 <= 0.3)
and batch-64 throughput (examples per second, median over rounds). Both signatures see the same inputs after
one warm-up call each (the XLA compilation happens there, once per input shape).
"""

import argparse
import tempfile
import time

import numpy as np

import harness

TARGET_RATIO = 0.3
ROUND_SIZE = 25
THROUGHPUT_BATCH = 64
TEXT = harness.SHORT_TEXT
SIGNATURES = {"plain": "serving_default", "xla": "serving_default_xla"}
MODELS = {
    "imdb": f"configs/sentiment_imdb.yaml architecture (BiGRU 128), {harness.REVIEW_WORDS}-word review",
    "tiny": f"configs/tiny/sentiment.yaml (GRU 16), {len(TEXT.split())}-word sentence",
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", help="a SavedModel version folder with serving_default and serving_default_xla "
                        "taking `text`, measured as the imdb model (default: the configs/sentiment_imdb.yaml "
                        "architecture trained briefly here)")
    parser.add_argument("--calls", type=int, default=400, help="batch-1 calls per variant (default 400)")
    parser.add_argument("--throughput-rounds", type=int, default=15,
                        help="batch-64 calls per variant (default 15)")
    return parser.parse_args()


def compiled_exports(directory: str, imdb_export: str | None = None) -> dict[str, str]:
    """Model name -> export folder with both signatures, each trained by a process of its own."""
    jit = ["export.jit_compile=true"]
    return {
        "imdb": imdb_export or harness.imdb_size_sentiment_export(directory, jit),
        "tiny": harness.export_in_own_process(directory, "configs/tiny/sentiment.yaml",
                                              jit + ["export.self_check=false"]),
    }


def model_texts() -> dict[str, str]:
    """Model name -> the batch-1 input it is called with."""
    return {"imdb": harness.review_text(), "tiny": TEXT}


def measure(export_path: str, text: str, calls: int, throughput_rounds: int) -> dict:
    """Batch-1 latencies on `text` and batch-64 throughput of both signatures, interleaved."""
    import tensorflow as tf

    loaded = tf.saved_model.load(export_path)
    functions = {name: loaded.signatures[signature] for name, signature in SIGNATURES.items()}
    single = tf.constant([text])
    batch = tf.constant([f"{text} {'and more ' * (index % 7)}" for index in range(THROUGHPUT_BATCH)])
    agreement = {}
    for name, function in functions.items():
        agreement[name] = function(text=batch)["probabilities"].numpy()  # warm-up; XLA compiles here
        function(text=single)
    latencies = {name: [] for name in functions}
    for round_index in range(max(1, calls // ROUND_SIZE)):
        for name in (list(functions) if round_index % 2 == 0 else list(functions)[::-1]):
            for _ in range(ROUND_SIZE):
                started = time.perf_counter()
                function_outputs = functions[name](text=single)
                function_outputs["probabilities"].numpy()
                latencies[name].append(time.perf_counter() - started)
    throughput = {name: [] for name in functions}
    for round_index in range(throughput_rounds):
        for name in (list(functions) if round_index % 2 == 0 else list(functions)[::-1]):
            started = time.perf_counter()
            functions[name](text=batch)["probabilities"].numpy()
            throughput[name].append(THROUGHPUT_BATCH / (time.perf_counter() - started))
    p50 = {name: float(np.percentile(values, 50)) for name, values in latencies.items()}
    p99 = {name: float(np.percentile(values, 99)) for name, values in latencies.items()}
    examples_per_second = {name: harness.median(values) for name, values in throughput.items()}
    return {
        "batch1_p50_ms": {name: harness.rounded(1000 * value, 3) for name, value in p50.items()},
        "batch1_p99_ms": {name: harness.rounded(1000 * value, 3) for name, value in p99.items()},
        "batch1_p50_xla_vs_plain": harness.rounded(p50["xla"] / p50["plain"], 3),
        "batch64_examples_per_second": {name: harness.rounded(value, 1) for name, value in examples_per_second.items()},
        "batch64_throughput_xla_vs_plain": harness.rounded(examples_per_second["xla"] / examples_per_second["plain"], 3),
        "outputs_agree": bool(np.allclose(agreement["plain"], agreement["xla"], rtol=1e-4, atol=1e-5)),
        "export": export_path,
        "method": f"{len(latencies['plain'])} batch-1 calls per signature in interleaved rounds of {ROUND_SIZE}; "
                  f"{throughput_rounds} batch-{THROUGHPUT_BATCH} calls each, interleaved",
    }


def measure_models(exports: dict[str, str], calls: int, throughput_rounds: int) -> dict[str, dict]:
    """`measure` for each model, on its own input."""
    texts = model_texts()
    results = {}
    for name, export_path in exports.items():
        harness.progress(f"serving_xla: {name} model")
        results[name] = measure(export_path, texts[name], calls, throughput_rounds)
    return results


def figures(quick: bool = False) -> list[dict]:
    """Serving figures for the speed suite, one dict per figure line (both signatures measured in one process)."""
    with tempfile.TemporaryDirectory() as directory:
        results = measure_models(compiled_exports(directory), calls=100 if quick else 400,
                                 throughput_rounds=5 if quick else 15)
    lines = []
    for name, result in results.items():
        suffix = "" if name == "imdb" else f"_{name}_model"
        model = f"{MODELS[name]}; in-process signature calls"
        latency_ratio = result["batch1_p50_xla_vs_plain"]
        lines += [
            {"figure": f"serving_batch1_p50_xla_vs_plain{suffix}", "value": result["batch1_p50_ms"]["xla"],
             "unit": "ms, batch-1 p50 of serving_default_xla", "baseline": result["batch1_p50_ms"]["plain"],
             "baseline_is": "ms, batch-1 p50 of serving_default, same run", "ratio": latency_ratio,
             "target": f"ratio <= {TARGET_RATIO}" if name == "imdb" else None,
             "target_met": bool(latency_ratio <= TARGET_RATIO) if name == "imdb" else None,
             "p50_ms": result["batch1_p50_ms"], "p99_ms": result["batch1_p99_ms"], "model": model},
            {"figure": f"serving_batch64_throughput_xla_vs_plain{suffix}",
             "value": result["batch64_examples_per_second"]["xla"],
             "unit": "examples per second at batch 64, serving_default_xla",
             "baseline": result["batch64_examples_per_second"]["plain"], "baseline_is": "serving_default, same run",
             "ratio": result["batch64_throughput_xla_vs_plain"], "target": None, "target_met": None,
             "examples_per_second": result["batch64_examples_per_second"], "model": model},
        ]
    return lines


def main() -> None:
    arguments = _arguments()
    harness.configure_logging()
    with tempfile.TemporaryDirectory() as directory:
        results = measure_models(compiled_exports(directory, arguments.export), arguments.calls,
                                 arguments.throughput_rounds)
    headline = results["imdb"]
    harness.report("serving_xla", {
        **headline,
        "model": MODELS["imdb"] if arguments.export is None else f"{arguments.export}, {harness.REVIEW_WORDS}-word review",
        "baseline": "plain serving_default, same process, same inputs",
        "ratio": headline["batch1_p50_xla_vs_plain"],
        "target": f"batch-1 p50 xla / plain <= {TARGET_RATIO} (imdb model)",
        "target_met": bool(headline["batch1_p50_xla_vs_plain"] <= TARGET_RATIO),
        "tiny_model": {**results["tiny"], "model": MODELS["tiny"]},
    })


if __name__ == "__main__":
    main()
