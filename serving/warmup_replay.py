"""Replays a version's `assets.extra/tf_serving_warmup_requests` before it becomes AVAILABLE (as TF Serving's
--enable_model_warmup, on by default): the first real request then finds the signatures traced and
compiled. The file is a TFRecord of PredictionLog; predict, classify and regress logs are replayed (at most
1000 records, each `iterations` times). A request that fails fails the load, as in TF Serving.
"""

import logging
import os
import time

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving import inference
from serving import status

logger = logging.getLogger("serving")

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_RECORDS = 1000


def read_warmup_logs(path: str) -> list:
    """The PredictionLogs of a version folder's warm-up file ([] when it has none)."""
    file_path = os.path.join(path, WARMUP_FILE)
    if not os.path.exists(file_path):
        return []
    logs = []
    for record in tf.data.TFRecordDataset(file_path).take(MAX_RECORDS + 1):
        logs.append(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
    if len(logs) > MAX_RECORDS:
        raise ValueError(f"{file_path}: more than {MAX_RECORDS} warm-up records")
    return logs


def replay(servable, iterations: int = 1) -> int:
    """Runs every warm-up request of the servable's folder `iterations` times; returns how many ran.

    Raises:
        ValueError: A request failed (the message names the record), so that the load fails.
    """
    logs = read_warmup_logs(servable.path)
    started = time.perf_counter()
    for index, log in enumerate(logs):
        for _ in range(iterations):
            try:
                _run(servable, log)
            except status.ServingError as error:
                raise ValueError(f"warm-up request {index} of {servable.path} failed: {error.code}: "
                                 f"{error.message}") from None
    if logs:
        logger.info("Finished reading warmup data for model at %s. Number of warmup records read: %d. "
                    "Elapsed time (seconds): %.2f.", servable.path, len(logs), time.perf_counter() - started)
    return len(logs) * iterations


def _run(servable, log: prediction_log_pb2.PredictionLog) -> None:
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        request = log.predict_log.request
        signature_name, signature_def = inference.prediction_signature(servable, request.model_spec.signature_name)
        inference.check_input_names(signature_def, request.inputs)
        inputs = {alias: inference.array_from_proto(alias, proto, signature_def.inputs[alias].dtype)
                  for alias, proto in request.inputs.items()}
        inference.predict(servable, signature_name, inputs, list(request.output_filter))
    elif kind in ("classify_log", "regress_log"):
        request = getattr(log, kind).request
        which = request.input.WhichOneof("kind")
        if which == "example_list_with_context":
            listed = request.input.example_list_with_context
            examples = inference.serialized_examples(listed.examples, listed.context)
        else:
            examples = inference.serialized_examples(request.input.example_list.examples)
        method = inference.classify if kind == "classify_log" else inference.regress
        method(servable, request.model_spec.signature_name, examples)
    else:
        raise status.unimplemented(f"warm-up records of type {kind} are not supported")
