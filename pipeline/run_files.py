"""Names and readers of the files a run directory holds (DESIGN.md section 3), shared by train/evaluate/export."""

import base64
import csv
import json
import math
import os

import keras

from pipeline import config as config_lib
from pipeline import models

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
CHECKPOINTS = "checkpoints"
BEST_WEIGHTS = os.path.join(CHECKPOINTS, "best.weights.h5")
LAST_CHECKPOINT = os.path.join(CHECKPOINTS, "last")
HISTORY = os.path.join("logs", "history.csv")
SAMPLE_INPUTS = os.path.join("vocab", "sample_inputs.json")
PROFILE_DIR = "profile"


def load_run_config(run_dir: str) -> config_lib.RunConfig:
    """Reads `<run_dir>/config.yaml`, pointing `runtime.run_dir` at where the run is now."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: not a run directory (no {CONFIG_FILE}); train first")
    tree = config_lib.to_tree(config_lib.load_config([path]))
    tree["runtime"]["run_dir"] = run_dir
    return config_lib.from_tree(tree)


def load_metrics(run_dir: str) -> dict:
    """Reads `<run_dir>/metrics.json`: the final evaluation of every held-out split, by split name."""
    path = os.path.join(run_dir, METRICS_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no metrics; run `python -m pipeline train` or `evaluate` first")
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def held_out_metrics(run_dir: str) -> tuple[str, dict]:
    """The metrics of the test split, or of validation when the run has no test split.

    Returns:
        (split name, its metrics).

    Raises:
        ValueError: metrics.json holds neither split.
    """
    metrics = load_metrics(run_dir)
    for split_name in ("test", "validation"):
        if split_name in metrics:
            return split_name, metrics[split_name]
    raise ValueError(f"{os.path.join(run_dir, METRICS_FILE)}: no test or validation metrics "
                     f"(it has {sorted(metrics)})")


def write_json(path: str, value, indent: int = 1) -> None:
    """Writes `value` as JSON, atomically: a reader, or a process killed meanwhile, sees the old file or the new one."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(value, stream, indent=indent)
    os.replace(temporary, path)


def save_sample_inputs(run_dir: str, inputs: list) -> None:
    """Keeps a few raw inputs with the run, for the export self-check and demo predictions."""
    path = os.path.join(run_dir, SAMPLE_INPUTS)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(inputs, stream, ensure_ascii=False, indent=1)


def load_sample_inputs(run_dir: str) -> list:
    with open(os.path.join(run_dir, SAMPLE_INPUTS), encoding="utf-8") as stream:
        return json.load(stream)


def decode_sample_input(item):
    """A saved sample input as a signature takes it: `{"b64": ...}` (TF Serving's JSON for bytes) -> bytes."""
    if isinstance(item, dict) and "b64" in item:
        return base64.b64decode(item["b64"])
    return item


def load_trained_model(run_dir: str) -> keras.Model:
    """Loads the best model written at the end of training."""
    path = os.path.join(run_dir, MODEL_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no trained model; run `python -m pipeline train` first")
    return keras.saving.load_model(path, custom_objects=models.CUSTOM_OBJECTS, compile=False)


def early_stop_summary(run_dir: str, monitor: str, epochs: int) -> str:
    """One line for a fit that ended before `epochs`: where it stopped and the best epoch of `monitor`.

    Read from the history (`logs/history.csv`, 0-based epochs), so epochs before a resume count too.
    """
    path = os.path.join(run_dir, HISTORY)
    rows = []
    if os.path.exists(path):
        with open(path, newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    scored = [(float(row[monitor]), int(row["epoch"]) + 1) for row in rows
              if row.get(monitor) not in (None, "") and not math.isnan(float(row[monitor]))]
    stopped = f"training stopped early after epoch {len(rows)} of {epochs}"
    if not scored:
        return f"{stopped}; no epoch has a {monitor} value"
    value, epoch = (min if monitor.endswith("loss") else max)(scored, key=lambda item: item[0])
    return f"{stopped}; best {monitor} {value:.4f} at epoch {epoch} (its weights are kept)"
