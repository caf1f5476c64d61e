"""Decoding speed: in-graph greedy search (one `tf.while_loop`) vs a Python loop over `decode_step`; beam-4 vs greedy.

Usage (from the repository root):
    python benchmarks/decoding_speed.py [--run-dir DIR] [--repetitions 7]

The translator comes from a trained run (default: the Multi30k benchmark's run directory); without one, an
untrained translator is built from configs/translation_multi30k_de_en.yaml with the vocabulary of its training
split (decoding then runs to the length limit, the same work for every variant). Inputs are the first source
sentences of the test split, at batch 1 and batch 64. Variants, interleaved in one process, medians over
repetitions:

    in_graph_greedy   `TranslationTask.decode(..., "greedy")` traced once: the whole search is one graph call
                      (rows that have ended leave the batch, see pipeline/decoding.py)
    python_loop       the same greedy search written as a Python loop: the encoder and one `decode_step` are
                      each a traced `tf.function`; Python picks the argmax, tracks finished rows and stops when
                      every row has ended (the tutorial way); its tokens are checked equal to in_graph_greedy's
    python_loop_dropping  python_loop that also drops ended rows and their state from the batch, as the
                      in-graph loop does: separates the gain of that from the gain of leaving Python
    in_graph_beam     beam search with beam size 4, traced once
    xla_greedy        in_graph_greedy compiled with XLA (`tf.function(jit_compile=True)`): encoder, decoder steps
                      and the loop fused into one compiled program (what `export.jit_compile` serves)
    xla_beam          in_graph_beam compiled with XLA

Figures: speedup = python_loop seconds / in_graph_greedy seconds (target >= 2x), the same for xla_greedy, the
speedup over python_loop_dropping, and beam-4 throughput relative to greedy (sentences per second), plain and XLA.

`figures(quick=True)` times an untrained translator built from configs/tiny/translation.yaml (seconds, no data
files) for the speed suite; `figures(quick=False)` the Multi30k run as `main` does.
"""

import argparse
import dataclasses
import os
import time

import numpy as np

import harness

CONFIG = "configs/translation_multi30k_de_en.yaml"
QUICK_CONFIG = "configs/tiny/translation.yaml"
TARGET_SPEEDUP = 2.0
BATCH_SIZES = (1, 64)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", default="benchmarks/results/runs/multi30k",
                        help="trained translation run (default: %(default)s)")
    parser.add_argument("--repetitions", type=int, default=7, help="timed calls per variant (default: %(default)s)")
    return parser.parse_args()


def load_translator(run_dir: str, config_path: str = CONFIG):
    """(task, preprocessing, model, trained) from a run directory, or an untrained translator from `config_path`."""
    from pipeline import config as config_lib
    from pipeline import run_files
    from pipeline import tasks

    if os.path.exists(os.path.join(run_dir, run_files.MODEL_FILE)):
        config = run_files.load_run_config(run_dir)
        task = tasks.create_task(config)
        return task, task.load_preprocessing(run_dir), run_files.load_trained_model(run_dir), True
    harness.progress(f"no trained model in {run_dir}: timing an untrained translator")
    task = tasks.create_task(config_lib.load_config([config_path], []))
    preprocessing = task.fit_preprocessing(task.load_splits())
    return task, preprocessing, task.build_model(preprocessing), False


def python_loop_decoder(task, model, drop_finished: bool = False):
    """Greedy decoding driven from Python, one traced `decode_step` call per generated token.

    Args:
        drop_finished: Also remove ended rows (and their state) from the batch before the next step, as the
            in-graph loop does; False feeds every row until all have ended (the tutorial way).
    """
    import tensorflow as tf
    from pipeline.data import sequence_text

    encode = tf.function(model.encode)
    step = tf.function(model.decode_step, reduce_retracing=True)

    def decode(encoder_token_ids):
        state = encode(encoder_token_ids)
        batch = int(encoder_token_ids.shape[0])
        tokens = tf.fill([batch], sequence_text.START_ID)
        live_rows = np.arange(batch)
        finished = np.zeros(batch, bool)
        outputs = np.zeros((batch, task.max_decode_length), np.int32)
        for position in range(task.max_decode_length):
            logits, state = step(tokens, state)
            tokens = tf.argmax(logits, axis=-1, output_type=tf.int32)
            chosen = tokens.numpy()
            ended = chosen == sequence_text.END_ID
            writing = ~finished[live_rows] & ~ended
            outputs[live_rows[writing], position] = chosen[writing]  # as in-graph: no end token, 0 after it
            finished[live_rows[ended]] = True
            if finished.all():
                return outputs[:, :position + 1]
            if drop_finished and ended.any():
                keep = np.flatnonzero(~ended)
                live_rows, tokens = live_rows[keep], tf.gather(tokens, keep)
                state = tf.nest.map_structure(lambda tensor: tf.gather(tensor, keep), state)
        return outputs

    return decode


def in_graph_decoder(task, model, mode: str, jit_compile: bool = False):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], jit_compile=jit_compile)
    def decode(encoder_token_ids):
        return task.decode(model, None, encoder_token_ids, mode).token_ids

    return lambda encoder_token_ids: decode(encoder_token_ids).numpy()


def same_tokens(loop_tokens: np.ndarray, graph_tokens: np.ndarray) -> bool:
    """Whether two token matrices agree up to trailing padding."""
    width = max(loop_tokens.shape[1], graph_tokens.shape[1])
    pad = lambda tokens: np.pad(tokens, [(0, 0), (0, width - tokens.shape[1])])  # noqa: E731
    return bool(np.array_equal(pad(loop_tokens), pad(graph_tokens)))


def measure(run_dir: str, repetitions: int, config_path: str = CONFIG) -> dict:
    """Times every variant at each batch size, interleaved in one process; returns the result dict."""
    import tensorflow as tf

    task, preprocessing, model, trained = load_translator(run_dir, config_path)
    splits = task.load_splits().splits
    sources = (splits["test"] if "test" in splits else splits["validation"]).sources
    task.config = dataclasses.replace(task.config, model=dataclasses.replace(task.config.model, beam_size=4))
    variants = {"in_graph_greedy": in_graph_decoder(task, model, "greedy"),
                "python_loop": python_loop_decoder(task, model),
                "python_loop_dropping": python_loop_decoder(task, model, drop_finished=True),
                "in_graph_beam": in_graph_decoder(task, model, "beam"),
                "xla_greedy": in_graph_decoder(task, model, "greedy", jit_compile=True),
                "xla_beam": in_graph_decoder(task, model, "beam", jit_compile=True)}
    result = {"trained_model": trained, "max_decode_length": task.max_decode_length, "batches": {}}
    for batch_size in BATCH_SIZES:
        inputs = task.numeric_inputs(preprocessing, tf.constant((list(sources) * batch_size)[:batch_size]))
        outputs = {name: decode(inputs) for name, decode in variants.items()}  # traces, compiles, warms up
        times = {name: [] for name in variants}
        for repetition in range(repetitions):
            names = list(variants)
            for name in names[repetition % len(names):] + names[:repetition % len(names)]:
                started = time.perf_counter()
                variants[name](inputs)
                times[name].append(time.perf_counter() - started)
        medians = {name: harness.median(values) for name, values in times.items()}
        result["batches"][str(batch_size)] = {
            "median_seconds": {name: harness.rounded(value, 5) for name, value in medians.items()},
            "sentences_per_second": {name: harness.rounded(batch_size / value, 1) for name, value in medians.items()},
            "speedup_in_graph_vs_python_loop": harness.rounded(medians["python_loop"] / medians["in_graph_greedy"], 3),
            "speedup_xla_vs_python_loop": harness.rounded(medians["python_loop"] / medians["xla_greedy"], 3),
            "speedup_in_graph_vs_python_loop_dropping": harness.rounded(
                medians["python_loop_dropping"] / medians["in_graph_greedy"], 3),
            "speedup_xla_vs_in_graph": harness.rounded(medians["in_graph_greedy"] / medians["xla_greedy"], 3),
            "beam4_throughput_vs_greedy": harness.rounded(medians["in_graph_greedy"] / medians["in_graph_beam"], 3),
            "xla_beam4_throughput_vs_xla_greedy": harness.rounded(medians["xla_greedy"] / medians["xla_beam"], 3),
            "python_loop_tokens_equal_in_graph": same_tokens(outputs["python_loop"], outputs["in_graph_greedy"]),
            "python_loop_dropping_tokens_equal_in_graph": same_tokens(outputs["python_loop_dropping"],
                                                                      outputs["in_graph_greedy"]),
            "xla_tokens_equal_in_graph": same_tokens(outputs["xla_greedy"], outputs["in_graph_greedy"]),
            "generated_steps": int(outputs["in_graph_greedy"].shape[1]),
        }
        harness.progress(f"batch {batch_size}: {result['batches'][str(batch_size)]}")
    best = [max(entry["speedup_in_graph_vs_python_loop"], entry["speedup_xla_vs_python_loop"])
            for entry in result["batches"].values()]
    result.update({
        "baseline": "python_loop (greedy, a traced decode_step per token), measured in this run",
        "ratio": min(best),
        "target": f"in-graph greedy (plain or XLA) >= {TARGET_SPEEDUP}x the Python loop at batch 1 and 64",
        "target_met": bool(min(best) >= TARGET_SPEEDUP),
        "method": "medians over interleaved calls per variant, after one warm-up (and XLA compile) call each",
        "run_dir": run_dir if trained else f"untrained, {config_path}",
    })
    return result


def figures(quick: bool = False) -> list[dict]:
    """The decoding figures for the speed suite, one dict per figure line (ratios measured in one process)."""
    if quick:
        result = measure("/nonexistent-run", repetitions=5, config_path=QUICK_CONFIG)
    else:
        result = measure("benchmarks/results/runs/multi30k", repetitions=7)
    lines = []
    for batch_size, entry in result["batches"].items():
        common = {"batch_size": int(batch_size), "model": result["run_dir"],
                  "generated_steps": entry["generated_steps"], "sentences_per_second": entry["sentences_per_second"]}
        python_loop = entry["sentences_per_second"]["python_loop"]
        for variant, figure, speedup in (
                ("in_graph_greedy", "decoding_in_graph_greedy_vs_python_loop", entry["speedup_in_graph_vs_python_loop"]),
                ("xla_greedy", "decoding_xla_greedy_vs_python_loop", entry["speedup_xla_vs_python_loop"])):
            lines.append({"figure": figure, "value": entry["sentences_per_second"][variant],
                          "unit": "sentences per second", "baseline": python_loop,
                          "baseline_is": "python_loop sentences per second, same tokens", "ratio": speedup,
                          "target": f"ratio >= {TARGET_SPEEDUP}", "target_met": bool(speedup >= TARGET_SPEEDUP),
                          **common})
        lines[-2]["speedup_vs_python_loop_dropping"] = entry["speedup_in_graph_vs_python_loop_dropping"]
        lines[-1]["tokens_equal"] = entry["xla_tokens_equal_in_graph"]
        lines.append({"figure": "decoding_beam4_vs_greedy_throughput",
                      "value": entry["sentences_per_second"]["in_graph_beam"], "unit": "sentences per second",
                      "baseline": entry["sentences_per_second"]["in_graph_greedy"],
                      "baseline_is": "in_graph_greedy sentences per second", "ratio": entry["beam4_throughput_vs_greedy"],
                      "target": None, "target_met": None,
                      "xla_ratio": entry["xla_beam4_throughput_vs_xla_greedy"], **common})
    return lines


def main() -> None:
    arguments = parse_arguments()
    harness.configure_logging()
    result = measure(arguments.run_dir, arguments.repetitions)
    result["run_dir"] = arguments.run_dir
    harness.report("decoding_speed", result)


if __name__ == "__main__":
    main()
