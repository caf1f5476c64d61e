"""Loads SavedModels and answers requests, under whichever Python runs it (`older_tensorflow.py` runs it under
this one and under an older TensorFlow's). Arrays travel as JSON, so that no NumPy pickle crosses NumPy versions.

Usage: python benchmarks/answer_requests.py REQUESTS.json ANSWERS.json
REQUESTS: {name: {"path": SavedModel folder, "requests": [{"signature", "inputs": {name: encoded array}}]}}.
ANSWERS: {"tensorflow": version, "exports": {name: [{"signature", "outputs": {...}} or {..., "error"}]}}.
"""

import base64
import json
import sys

import numpy as np


def encode(array) -> dict:
    """A NumPy array (strings as bytes objects) -> JSON-ready {dtype, shape, values}; strings in base64."""
    array = np.asarray(array)
    if array.dtype == object:
        return {"dtype": "string", "shape": list(array.shape),
                "values": [base64.b64encode(item).decode("ascii") for item in array.reshape(-1)]}
    return {"dtype": str(array.dtype), "shape": list(array.shape), "values": array.reshape(-1).tolist()}


def decode(value: dict) -> np.ndarray:
    """`encode`'s inverse."""
    if value["dtype"] == "string":
        items = [base64.b64decode(item) for item in value["values"]]
        return np.array(items, dtype=object).reshape(value["shape"])
    return np.array(value["values"], dtype=value["dtype"]).reshape(value["shape"])


def answer(exports: dict) -> dict:
    """Loads each export and runs each of its requests; a failure is an `error` row, never an exception."""
    import tensorflow as tf
    try:
        import tensorflow_text  # noqa: F401  (registers TF Text's ops before any load)
    except ImportError:
        pass

    answers = {"tensorflow": tf.__version__, "exports": {}}
    for name, export in exports.items():
        rows = answers["exports"][name] = []
        try:
            loaded = tf.saved_model.load(export["path"])
        except Exception as error:  # any load failure is the finding
            rows.append({"error": f"load: {type(error).__name__}: {str(error)[:400]}"})
            continue
        for request in export["requests"]:
            try:
                function = loaded.signatures[request["signature"]]
                outputs = function(**{key: tf.constant(decode(value)) for key, value in request["inputs"].items()})
                rows.append({"signature": request["signature"],
                             "outputs": {key: encode(value.numpy()) for key, value in outputs.items()}})
            except Exception as error:  # as above
                rows.append({"signature": request["signature"],
                             "error": f"{type(error).__name__}: {str(error)[:400]}"})
    return answers


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as stream:
        requests = json.load(stream)
    with open(sys.argv[2], "w", encoding="utf-8") as stream:
        json.dump(answer(requests), stream)
