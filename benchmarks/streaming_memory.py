"""Peak memory of streamed translation training (`data.cache: false`) on a small and a 10x larger corpus.

Generates two corpora of synthetic sentence pairs (dates in words -> digits; by default 200,000 and
2,000,000 pairs, as aligned gzip files), then trains the tiny translation model on SentencePiece subwords
for the same few hundred steps on each, every run in a fresh process, and reports the peak resident set size
(`ru_maxrss`) of each process. Training streams the pairs from the files; the SentencePiece model and the
bucket boundaries read bounded samples, so memory should not grow with the corpus.

Target (issue 17): peak RSS on the large corpus at most 1.2x that on the small one.

Usage (from the repository root):
    python benchmarks/streaming_memory.py [--sizes 200000 2000000] [--steps-per-epoch 100] [--epochs 3]
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile

import harness

TARGET_RATIO = 1.2
VALIDATION_PAIRS = 2000
CHUNK = 100_000

# Trains in a process of its own and prints its peak RSS: what one training run of that corpus costs.
_CHILD = """
import json, resource, sys, time
from pipeline import config as config_lib
from pipeline import training
config = config_lib.load_config([sys.argv[1]], json.loads(sys.argv[2]))
started = time.perf_counter()
training.train(config)
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "train_wall_seconds": time.perf_counter() - started}))
"""


def parse_arguments() -> argparse.Namespace:
    """Reads the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[200_000, 2_000_000], metavar=("SMALL", "LARGE"),
                        help="sentence pairs of the two corpora (default: %(default)s)")
    parser.add_argument("--steps-per-epoch", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--input-sentence-size", type=int, default=100_000,
                        help="data.sentencepiece.input_sentence_size: the bounded sample (default: %(default)s)")
    return parser.parse_args()


def write_corpus(directory: str, split: str, pairs: int, seed: int) -> None:
    """Writes `pairs` generated pairs as `<split>.words.gz` and `<split>.digits.gz`, a chunk at a time."""
    from pipeline.data import synthetic

    with gzip.open(os.path.join(directory, f"{split}.words.gz"), "wt", encoding="utf-8") as sources, \
            gzip.open(os.path.join(directory, f"{split}.digits.gz"), "wt", encoding="utf-8") as targets:
        for start in range(0, pairs, CHUNK):
            words, digits = synthetic.translation_examples(min(CHUNK, pairs - start), seed=seed + start)
            sources.write("".join(f"{text}\n" for text in words))
            targets.write("".join(f"{text}\n" for text in digits))


def train_on(directory: str, pairs: int, arguments: argparse.Namespace) -> dict:
    """Trains on a corpus of `pairs` pairs in a fresh process; returns its figures."""
    write_corpus(directory, "train", pairs, seed=1)
    write_corpus(directory, "validation", VALIDATION_PAIRS, seed=10**9)
    overrides = [
        "data.source=files", "data.file_format=aligned", "data.source_language=words",
        "data.target_language=digits", f"data.train={directory}/train.{{language}}.gz",
        f"data.validation={directory}/validation.{{language}}.gz", "data.test=null", "data.cache=false",
        "data.tokenizer=sentencepiece", "data.lowercase=false", "data.sentencepiece.byte_fallback=false",
        f"data.sentencepiece.input_sentence_size={arguments.input_sentence_size}",
        f"train.steps_per_epoch={arguments.steps_per_epoch}", f"train.epochs={arguments.epochs}",
        f"runtime.run_dir={directory}/run", "export.on_train_end=false",
    ]
    harness.progress(f"training on {pairs} pairs ({arguments.epochs} x {arguments.steps_per_epoch} steps)")
    process = subprocess.run([sys.executable, "-c", _CHILD, "configs/tiny/translation.yaml", json.dumps(overrides)],
                             capture_output=True, text=True, cwd=harness.REPOSITORY_ROOT,
                             env=dict(os.environ, PYTHONPATH=harness.REPOSITORY_ROOT))
    if process.returncode != 0:
        sys.exit(f"error: training on {pairs} pairs failed:\n{process.stderr[-3000:]}")
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    corpus_bytes = sum(os.path.getsize(os.path.join(directory, f"train.{side}.gz")) for side in ("words", "digits"))
    return {"pairs": pairs, "peak_rss_mb": harness.rounded(figures["peak_rss_mb"], 1),
            "train_wall_seconds": harness.rounded(figures["train_wall_seconds"], 1),
            "corpus_gzip_mb": harness.rounded(corpus_bytes / 2**20, 1), "overrides": overrides}


def main() -> None:
    """Runs the benchmark and prints its JSON line."""
    arguments = parse_arguments()
    harness.configure_logging()
    runs = []
    for pairs in arguments.sizes:
        with tempfile.TemporaryDirectory(prefix=f"streaming-{pairs}-") as directory:
            runs.append(train_on(directory, pairs, arguments))
    small, large = runs
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    harness.report("streaming_memory", {
        "large_corpus": large,
        "baseline": {"name": f"the same training on {small['pairs']} pairs", **small, "measured_in_this_run": True},
        "ratio": harness.rounded(ratio, 3),
        "target": f"peak RSS on {large['pairs']} pairs <= {TARGET_RATIO}x that on {small['pairs']}",
        "target_met": bool(ratio <= TARGET_RATIO),
        "steps": arguments.steps_per_epoch * arguments.epochs,
    })


if __name__ == "__main__":
    main()
