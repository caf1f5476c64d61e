"""Whether an older TensorFlow runs this project's exports: the evidence for the oldest TF Serving release.

TF Serving X.Y is built on TensorFlow X.Y: same op registry, same SavedModel loader. This benchmark exports
each task's tiny config with this TensorFlow (XLA signatures included where the task has them, as in
`export_ops.py`), plus a SentencePiece translation export with `data.copy_numbers` (TF Text ops). Then, in a
fresh process of this Python and in one of another Python environment that holds an older TensorFlow (and
the TF Text of the same release), it loads each export and answers every request of its warm-up file
(`assets.extra/tf_serving_warmup_requests`: one request per signature, and per length bucket for XLA
signatures), and compares the answers: strings must be equal, numbers equal within 1e-3 (relative) or 1e-4;
the `sample` signature draws a fresh seed per call, so its answers are only checked to exist.

It runs the exports in TensorFlow's Python runtime, not in a `tensorflow_model_server` binary of that release
(none can be run here); the ops and the loader are the ones such a binary links.

Usage (from the repository root; the older environment needs only pip):
    python -m venv /tmp/tf212 && /tmp/tf212/bin/pip install "tensorflow-cpu==2.12.*" "tensorflow-text==2.12.*"
    python benchmarks/older_tensorflow.py --python /tmp/tf212/bin/python
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import answer_requests
import harness

SUBWORD_TRANSLATION = ("configs/tiny/translation.yaml", [
    "data.tokenizer=sentencepiece", "data.lowercase=false", "data.copy_numbers=true",
    "data.sentencepiece.byte_fallback=false", "data.source_vocabulary_size=60", "data.target_vocabulary_size=24",
    "export.jit_compile=true"])
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 1e-3, 1e-4


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the Python of the environment with the older TensorFlow")
    return parser.parse_args()


def build_exports(directory: str) -> dict[str, str]:
    """Task name -> export folder: the tiny exports of `export_ops.py` and a SentencePiece translation export."""
    import export_ops

    exports = export_ops.tiny_exports(directory)
    config_path, overrides = SUBWORD_TRANSLATION
    harness.progress(f"exporting {config_path} with SentencePiece subwords")
    exports["translation_subwords"] = harness.export_in_own_process(
        os.path.join(directory, "translation_subwords"), config_path,
        ["export.self_check=false", "train.epochs=1"] + overrides)
    return exports


def warmup_requests(export_path: str) -> list[dict]:
    """The export's warm-up requests as JSON-ready {signature, inputs}."""
    import tensorflow as tf

    sys.path.insert(0, harness.REPOSITORY_ROOT)
    from serving import warmup_replay

    requests = []
    for log in warmup_replay.read_warmup_logs(export_path):
        request = log.predict_log.request
        inputs = {key: answer_requests.encode(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
        requests.append({"signature": request.model_spec.signature_name, "inputs": inputs})
    return requests


def answer(python: str, requests_path: str, directory: str, name: str) -> dict:
    """Runs `answer_requests.py` under `python` in a fresh process; returns its answers."""
    output = os.path.join(directory, f"answers-{name}.json")
    process = subprocess.run([python, answer_requests.__file__, requests_path, output], capture_output=True, text=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""))
    if process.returncode != 0:
        sys.exit(f"error: {python} could not answer the requests:\n{process.stderr[-3000:]}")
    with open(output, encoding="utf-8") as stream:
        return json.load(stream)


def _same(reference: dict, other: dict) -> bool:
    import numpy as np

    if reference["dtype"] == "string" or other["dtype"] == "string":
        return reference == other
    return (reference["shape"] == other["shape"]
            and bool(np.allclose(reference["values"], other["values"], rtol=RELATIVE_TOLERANCE,
                                 atol=ABSOLUTE_TOLERANCE)))


def compare(current: dict, older: dict) -> dict:
    """Per export: requests answered by the older TensorFlow, and those whose answers differ."""
    report = {}
    for name, rows in current["exports"].items():
        older_rows = older["exports"].get(name, [])
        errors = [row["error"] for row in older_rows if "error" in row]
        differing = []
        for row, older_row in zip(rows, older_rows):
            if "error" in row or "error" in older_row or "sample" in row["signature"]:
                continue
            keys = [key for key in row["outputs"] if not _same(row["outputs"][key], older_row["outputs"].get(key))]
            if keys:
                differing.append({"signature": row["signature"], "outputs": keys})
        report[name] = {"requests": len(rows), "answered": sum("outputs" in row for row in older_rows),
                        "signatures": sorted({row["signature"] for row in rows if "signature" in row}),
                        "errors": errors[:3], "differing": differing[:5]}
    return report


def main() -> None:
    arguments = _arguments()
    harness.configure_logging()
    with tempfile.TemporaryDirectory() as directory:
        exports = build_exports(directory)
        requests = {name: {"path": path, "requests": warmup_requests(path)} for name, path in exports.items()}
        requests_path = os.path.join(directory, "requests.json")
        with open(requests_path, "w", encoding="utf-8") as stream:
            json.dump(requests, stream)
        harness.progress("answering with this TensorFlow")
        current = answer(sys.executable, requests_path, directory, "current")
        harness.progress(f"answering with {arguments.python}")
        older = answer(arguments.python, requests_path, directory, "older")
    report = compare(current, older)
    same = all(item["answered"] == item["requests"] and not item["differing"] for item in report.values())
    harness.report("older_tensorflow", {
        "figure": (f"exports written by TensorFlow {current['tensorflow']}, answered by TensorFlow "
                   f"{older['tensorflow']}"),
        "value": same,
        "exports": report,
        "requests": sum(item["requests"] for item in report.values()),
        "answered_alike": sum(item["answered"] - len(item["differing"]) for item in report.values()),
        "older_tensorflow": older["tensorflow"],
        "current_tensorflow": current["tensorflow"],
        "method": "each export's warm-up requests answered in a fresh process of each TensorFlow (Python runtime)",
    })


if __name__ == "__main__":
    main()
