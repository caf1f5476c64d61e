"""The TensorFlow ops each task's export uses: what a TF Serving build must link to run it.

Usage (from the repository root):
    python benchmarks/export_ops.py [--export NAME=PATH ...]

By default each task's tiny config (configs/tiny/*.yaml, sentiment_sst2 left out: the same task as sentiment)
is trained for a moment and exported by a process of its own, with `export.jit_compile: true` where the task
has XLA signatures (the export then holds the plain signatures too). Each export's saved_model.pb is read as a
protocol buffer (no TensorFlow load): the op of every node of the graph and of every function in its library
(calls to the library's own functions are not ops). Prints one JSON line: op names per export, their union,
and the ops only some exports use.
"""

import argparse
import json
import os
import tempfile

import harness

TINY_CONFIGS = {
    "sentiment": ("configs/tiny/sentiment.yaml", True),
    "tagging": ("configs/tiny/tagging.yaml", True),
    "translation": ("configs/tiny/translation.yaml", True),
    "captioning": ("configs/tiny/captioning.yaml", True),
    "language_model": ("configs/tiny/lm.yaml", False),
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", action="append", default=[], metavar="NAME=PATH",
                        help="a SavedModel version folder to read instead of the tiny exports (repeatable)")
    return parser.parse_args()


def export_ops(export_path: str) -> set[str]:
    """Op names used by the SavedModel's graphs and function library (every meta graph)."""
    from pipeline import graph_ops

    return graph_ops.saved_model_ops(export_path)


def tiny_exports(directory: str) -> dict[str, str]:
    """Task name -> export folder of its tiny config."""
    exports = {}
    for name, (config_path, compiles) in TINY_CONFIGS.items():
        harness.progress(f"exporting {config_path}")
        overrides = ["export.self_check=false", "train.epochs=1"] + (["export.jit_compile=true"] if compiles else [])
        exports[name] = harness.export_in_own_process(os.path.join(directory, name), config_path, overrides)
    return exports


def main() -> None:
    arguments = _arguments()
    with tempfile.TemporaryDirectory() as directory:
        if arguments.export:
            exports = dict(item.split("=", 1) for item in arguments.export)
        else:
            exports = tiny_exports(directory)
        ops = {name: sorted(export_ops(path)) for name, path in exports.items()}
    union = sorted(set().union(*map(set, ops.values())))
    common = set.intersection(*map(set, ops.values()))
    print(json.dumps({
        "ops_per_export": ops,
        "all_ops": union,
        "count": len(union),
        "only_in_some": {op: [name for name, names in ops.items() if op in names] for op in union if op not in common},
        "jit_compile": {name: TINY_CONFIGS.get(name, (None, None))[1] for name in exports},
        "machine": harness.machine_description(),
        "command": harness.command_line(),
    }), flush=True)


if __name__ == "__main__":
    main()
