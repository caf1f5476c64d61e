"""TF Serving's warm-up file: `assets.extra/tf_serving_warmup_requests`, a TFRecord of PredictionLog.

TF Serving (and `serving/server.py`) replays these requests before a version becomes AVAILABLE, so the first
real request does not pay for lazy initialization or XLA compilation. An XLA signature (`<name>_xla`) is
compiled once per input shape, and its token axis is padded to a multiple of `LENGTH_MULTIPLE`: besides the
given requests, each such signature with one text input gets one batch-1 request per length bucket up to the
export's `data.max_sequence_length` (read from `assets.extra/config.yaml`), so that no text length compiles
on a live request. Imports only TensorFlow, tensorflow-serving-api and PyYAML.
"""

import os
import typing

import tensorflow as tf
import yaml
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
CONFIG_FILE = os.path.join("assets.extra", "config.yaml")
MAX_RECORDS = 1000  # TF Serving reads at most this many
COMPILED_SUFFIX = "_xla"  # pipeline/tasks/compiled.py's SUFFIX
LENGTH_MULTIPLE = 16  # pipeline/tasks/compiled.py's LENGTH_MULTIPLE: the compiled token axis's bucket size


def _signature_inputs(export_path: str) -> dict[str, dict[str, int]]:
    """Signature name -> input name -> dtype, from the export's saved_model.pb (tagged serve)."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_path, "saved_model.pb"), "rb") as stream:
        saved_model.ParseFromString(stream.read())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return {name: {alias: info.dtype for alias, info in signature.inputs.items()}
                    for name, signature in meta_graph.signature_def.items()}
    return {}


def max_sequence_length(export_path: str) -> int | None:
    """The export's `data.max_sequence_length` from its `assets.extra/config.yaml` (None if it has none)."""
    path = os.path.join(export_path, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        config = yaml.safe_load(stream) or {}
    value = (config.get("data") or {}).get("max_sequence_length")
    return value if isinstance(value, int) and value > 0 else None


def length_bucket_texts(texts: typing.Sequence[str], max_tokens: int,
                        multiple: int = LENGTH_MULTIPLE) -> list[str]:
    """One text per token-length bucket: `multiple`, 2 x `multiple`, ... words, up to the bucket of `max_tokens`.

    The words are the alphabetic words of `texts`, repeated (one word is one token for word-level tokenizers,
    and the model sees the same kind of text as in real requests). [] when `texts` hold no such word.
    """
    words = [word for text in texts for word in str(text).split() if word.isalpha()]
    if not words:
        return []
    buckets = -(-max_tokens // multiple)
    return [" ".join(words[index % len(words)] for index in range(bucket * multiple))
            for bucket in range(1, buckets + 1)]


def _with_length_buckets(export_path: str, signatures: dict[str, dict[str, int]],
                         requests: typing.Mapping[str, typing.Sequence[dict]]) -> dict[str, list[dict]]:
    """`requests`, plus the length-bucket requests of each XLA signature that takes one string input."""
    max_tokens = max_sequence_length(export_path)
    completed = {name: list(inputs_list) for name, inputs_list in requests.items()}
    if max_tokens is None:
        return completed
    for name, inputs_list in completed.items():
        expected = signatures.get(name) or {}
        if not name.endswith(COMPILED_SUFFIX) or len(expected) != 1:
            continue
        (input_name,) = expected
        if expected[input_name] != tf.string.as_datatype_enum:
            continue
        texts = [value for inputs in inputs_list for value in inputs.get(input_name, [])
                 if isinstance(value, str)]
        inputs_list += [{input_name: [text]} for text in length_bucket_texts(texts, max_tokens)]
    return completed


def write_warmup_requests(export_path: str, requests: typing.Mapping[str, typing.Sequence[dict]]) -> str:
    """Writes one PredictRequest per input dict for each signature into the export's warm-up file.

    Args:
        export_path: A written SavedModel folder.
        requests: Signature name -> list of {input name: value (a list for the batch dimension)}. Requests
            whose input names are not exactly the signature's, and signatures the export lacks, are left out
            (a warm-up request that fails would fail the version's load in TF Serving). XLA signatures with
            one text input also get one request per length bucket (see the module docstring).

    Returns:
        The warm-up file's path.
    """
    signatures = _signature_inputs(export_path)
    logs = []
    for signature_name, inputs_list in _with_length_buckets(export_path, signatures, requests).items():
        expected = signatures.get(signature_name)
        for inputs in inputs_list:
            if expected is None or set(inputs) != set(expected):
                continue
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=tf.dtypes.as_dtype(expected[name])))
            logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    path = os.path.join(export_path, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs[:MAX_RECORDS]:
            writer.write(log.SerializeToString())
    return path
