"""Shared plumbing for the benchmarks: repository paths, the machine line, medians and the one-line JSON result.

Every benchmark is run from anywhere as `python benchmarks/<name>.py`; importing this module puts the
repository root on `sys.path` (so `import pipeline` works without installing it) and makes it the working
directory (so config paths such as `configs/...` and `../shared/data/...` resolve as in the README).

Stdout carries exactly one line, the JSON result, printed by `report`; everything else (progress, Keras
progress bars, TensorFlow logs) goes to stderr.
"""

import contextlib
import csv
import json
import logging
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import typing

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(REPOSITORY_ROOT, "benchmarks", "results")
IMDB_DIR = os.path.join(os.path.dirname(REPOSITORY_ROOT), "shared", "data", "imdb")
IMDB_FILES = ("imdb_train.tsv.gz", "imdb_test.tsv.gz")
DEFAULT_CONFIG = "configs/sentiment_imdb_files.yaml"

if REPOSITORY_ROOT not in sys.path:
    sys.path.insert(0, REPOSITORY_ROOT)
os.chdir(REPOSITORY_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's info chatter, before TF is imported


def configure_logging() -> None:
    """Sends the pipeline's and the benchmark's log lines to stderr with timestamps."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def progress(message: str) -> None:
    """Prints one progress line to stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def require_imdb() -> None:
    """Exits with a readable message when the IMDB TSV files are not in ../shared/data/imdb."""
    missing = [name for name in IMDB_FILES if not os.path.exists(os.path.join(IMDB_DIR, name))]
    if missing:
        sys.exit(f"error: IMDB data not found (missing {', '.join(os.path.join(IMDB_DIR, name) for name in missing)}); "
                 "these benchmarks need ../shared/data/imdb (see ../shared/data/README.md)")


def machine_description() -> str:
    """One line naming the machine: architecture, CPU cores and vector units, TensorFlow version, GPU presence."""
    import tensorflow as tf  # Imported here so that `--help` stays fast.

    gpus = tf.config.list_physical_devices("GPU")
    gpu_text = f"{len(gpus)} GPU" if gpus else "no GPU"
    vector_units = cpu_vector_units()
    cores = f"{os.cpu_count()} CPU cores" + (f" ({vector_units})" if vector_units else "")
    return f"{platform.machine()}, {cores}, TF {tf.__version__}, {gpu_text}"


def cpu_vector_units(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU's widest float vector units, e.g. "AVX-512, AMX" or "AVX2"; "" where unknown (not Linux).

    Matmul peaks differ about 3x between AVX2 and AVX-512 machines of the same core count, so every figure
    names them.
    """
    try:
        with open(cpuinfo_path, encoding="utf-8") as stream:
            flags = next((line.split(":", 1)[1].split() for line in stream if line.startswith("flags")), [])
    except OSError:
        return ""
    units = ["AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else ""]
    units.append("AMX" if "amx_tile" in flags else "")
    return ", ".join(unit for unit in units if unit)


def command_line() -> str:
    """The command that started this process, as it would be typed from the repository root."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPOSITORY_ROOT)
    return " ".join(["python", shlex.quote(script)] + [shlex.quote(argument) for argument in sys.argv[1:]])


def median(values: typing.Sequence[float]) -> float:
    """The median of a non-empty list of numbers."""
    return float(statistics.median(values))


def rounded(value: float, digits: int = 4) -> float:
    """Rounds a figure for the JSON line (enough digits to compare runs, no float noise)."""
    return float(round(value, digits))


@contextlib.contextmanager
def stdout_to_stderr():
    """Sends everything written to stdout (Python and C level) to stderr while the block runs.

    Keras writes progress lines to stdout; the benchmark's stdout must hold only the JSON result.
    """
    sys.stdout.flush()
    saved_descriptor = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved_descriptor, 1)
        os.close(saved_descriptor)


def report(name: str, result: dict) -> dict:
    """Completes the result with benchmark, machine and command, writes it and prints it as one JSON line.

    Args:
        name: Benchmark name; the result goes to `benchmarks/results/<name>.json`.
        result: The figures, baseline, ratio, target and method.

    Returns:
        The full result as written.
    """
    full_result = {"benchmark": name, **result, "machine": machine_description(), "command": command_line()}
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(full_result, stream, indent=2)
        stream.write("\n")
    os.replace(temporary, path)
    progress(f"result written to {os.path.relpath(path, REPOSITORY_ROOT)}")
    print(json.dumps(full_result), flush=True)
    return full_result


def count_real_tokens(dataset) -> int:
    """Non-padding tokens (ids other than 0) in a dataset of ({"token_ids": [batch, time]}, labels)."""
    import tensorflow as tf

    total = 0
    for features, _ in dataset:
        total += int(tf.math.count_nonzero(features["token_ids"]))
    return total


# === Training runs ===


class EpochTimer:
    """Keras callback (built lazily, after Keras is imported) that logs each epoch's duration to stderr."""

    @staticmethod
    def create(durations: list):
        import keras

        class _EpochTimer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                durations.append(time.perf_counter() - self.started)
                shown = ", ".join(f"{key}={value:.4f}" for key, value in sorted((logs or {}).items()))
                progress(f"epoch {epoch + 1}: {durations[-1]:.0f} s; {shown}")

        return _EpochTimer()


@contextlib.contextmanager
def timed_fit(record: dict):
    """Wraps `keras.Model.fit` while the block runs: times the call and adds an epoch timer callback.

    `training.train` takes no extra callbacks, so this is how the benchmark sees inside it without
    changing the package. The wrapper only adds a callback and a clock; the fit itself is unchanged.

    Args:
        record: Filled with `fit_seconds` and `epoch_seconds` (one per epoch run).
    """
    import keras

    original_fit = keras.Model.fit
    record["epoch_seconds"] = []

    def fit(model, *arguments, **keyword_arguments):
        callbacks = list(keyword_arguments.get("callbacks") or [])
        keyword_arguments["callbacks"] = callbacks + [EpochTimer.create(record["epoch_seconds"])]
        started = time.perf_counter()
        try:
            return original_fit(model, *arguments, **keyword_arguments)
        finally:
            record["fit_seconds"] = time.perf_counter() - started

    keras.Model.fit = fit
    try:
        yield record
    finally:
        keras.Model.fit = original_fit


def clear_run_dir(run_dir: str) -> None:
    """Removes a previous run so that training starts fresh; refuses folders that are not run directories."""
    if not os.path.exists(run_dir):
        return
    if os.listdir(run_dir) and not os.path.exists(os.path.join(run_dir, "config.yaml")):
        sys.exit(f"error: {run_dir} exists and is not a run directory (no config.yaml); choose another --run-dir")
    progress(f"clearing the previous run in {run_dir}")
    shutil.rmtree(run_dir)


def read_history(run_dir: str) -> list[dict]:
    """Rows of logs/history.csv (one per epoch run), numbers as floats."""
    path = os.path.join(run_dir, "logs", "history.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return [{key: float(value) for key, value in row.items() if value not in ("", None)}
                for row in csv.DictReader(stream)]


def run_training(config) -> dict:
    """Runs `training.train` and returns the timings."""
    from pipeline import training

    record = {}
    started = time.perf_counter()
    with stdout_to_stderr(), timed_fit(record):
        training.train(config)
    record["train_wall_seconds"] = time.perf_counter() - started
    return record


# The latency benchmarks' inputs: a short sentence for the tiny test model, and for the IMDB-size model a
# made-up movie review of mean IMDB length.
SHORT_TEXT = "the acting was not very good but the music was extremely good"
REVIEW_SENTENCES = (
    "i went into this film expecting a quiet drama and came out having seen something much stranger",
    "the first hour moves slowly and the dialogue is often flat but the two leads hold the screen well",
    "the photography of the coast is beautiful and the score never tells you what to feel",
    "the plot turns in the last act are hard to believe and a few scenes drag on far too long",
    "still i kept thinking about it for days afterwards which is more than i can say for most films this year",
)
REVIEW_WORDS = 230  # the mean length of an IMDB review in words
IMDB_SIZE_SENTIMENT = "configs/sentiment_imdb.yaml"
# Trains the IMDB architecture for a few steps on generated data: latency depends on the architecture and the
# input length, not on the weights, and no download or real data is needed.
IMDB_SIZE_SENTIMENT_OVERRIDES = ("data.source=synthetic:sentiment", "data.synthetic_examples=400", "train.epochs=1",
                                 "train.steps_per_epoch=4", "export.self_check=false")


def review_text(words: int = REVIEW_WORDS) -> str:
    """A made-up movie review of `words` words."""
    vocabulary = " ".join(REVIEW_SENTENCES).split()
    return " ".join(vocabulary[index % len(vocabulary)] for index in range(words))


def imdb_size_sentiment_export(directory: str, overrides: typing.Sequence[str] = ()) -> str:
    """The `configs/sentiment_imdb.yaml` architecture (the sentiment model a user ships), trained for a few steps
    on synthetic data by `export_in_own_process`; returns its export's version folder."""
    return export_in_own_process(directory, IMDB_SIZE_SENTIMENT, list(IMDB_SIZE_SENTIMENT_OVERRIDES) + list(overrides))


def export_in_own_process(directory: str, config_path: str, overrides: typing.Sequence[str]) -> str:
    """Trains and exports with `python -m pipeline train` in a process of its own; returns the version folder.

    For latency benchmarks that call the export in-process: training enables TensorFlow's op determinism for
    the rest of its process, which slows inference there (about 60% on the IMDB-size sentiment model), while a
    serving process runs without it. The run and the export go under `directory`.
    """
    name = os.path.splitext(os.path.basename(config_path))[0]
    export_root = os.path.join(directory, "exports", name)
    settings = list(overrides) + [f"runtime.run_dir={directory}/runs/{name}", f"export.dir={export_root}",
                                  "export.on_train_end=true"]
    command = [sys.executable, "-m", "pipeline", "train", config_path]
    for setting in settings:
        command += ["--set", setting]
    subprocess.run(command, check=True, stdout=sys.stderr, stderr=sys.stderr, cwd=REPOSITORY_ROOT,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    (model_name,) = os.listdir(export_root)
    (version,) = os.listdir(os.path.join(export_root, model_name))
    return os.path.join(export_root, model_name, version)
