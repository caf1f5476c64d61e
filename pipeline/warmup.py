"""TF Serving's warm-up file: `assets.extra/tf_serving_warmup_requests`, a TFRecord of PredictionLog.

TF Serving (and `serving/server.py`) replays these requests before a version becomes AVAILABLE, so the first
real request does not pay for lazy initialization or XLA compilation. Imports only TensorFlow and
tensorflow-serving-api.
"""

import os
import typing

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000  # TF Serving reads at most this many


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


def write_warmup_requests(export_path: str, requests: typing.Mapping[str, typing.Sequence[dict]]) -> str:
    """Writes one PredictRequest per input dict for each signature into the export's warm-up file.

    Args:
        export_path: A written SavedModel folder.
        requests: Signature name -> list of {input name: value (a list for the batch dimension)}. Requests
            whose input names are not exactly the signature's, and signatures the export lacks, are left out
            (a warm-up request that fails would fail the version's load in TF Serving).

    Returns:
        The warm-up file's path.
    """
    signatures = _signature_inputs(export_path)
    logs = []
    for signature_name, inputs_list in requests.items():
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
