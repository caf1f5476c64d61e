"""pipeline/warmup.py: TF Serving's warm-up file, one PredictRequest per input dict of each signature."""

import os

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from pipeline import warmup


def _export(path: str) -> str:
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return {"length": tf.strings.length(text)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                                  tf.TensorSpec([], tf.float32, name="temperature")])
    def sample(text, temperature):
        return {"scaled": tf.cast(tf.strings.length(text), tf.float32) * temperature}

    module.serve, module.sample = serve, sample
    tf.saved_model.save(module, path, signatures={"serving_default": serve, "sample": sample})
    return path


def test_writes_a_tfrecord_of_prediction_logs_for_the_requests_that_fit_their_signature(tmp_path):
    export = _export(str(tmp_path / "1"))

    path = warmup.write_warmup_requests(export, {
        "serving_default": [{"text": ["a fine film"]}, {"text": ["dull", "long"]}],
        "sample": [{"text": ["x"]}],  # lacks `temperature`: left out, it would fail the load
        "missing": [{"text": ["y"]}],
    })

    assert path == os.path.join(export, "assets.extra", "tf_serving_warmup_requests")
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in tf.data.TFRecordDataset(path)]
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == ["serving_default"] * 2
    assert [tf.make_ndarray(log.predict_log.request.inputs["text"]).tolist() for log in logs] == [
        [b"a fine film"], [b"dull", b"long"]]


def test_values_take_the_signatures_dtypes(tmp_path):
    export = _export(str(tmp_path / "1"))

    path = warmup.write_warmup_requests(export, {"sample": [{"text": ["abc"], "temperature": 2}]})

    (record,) = list(tf.data.TFRecordDataset(path))
    request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    assert request.inputs["temperature"].dtype == tf.float32.as_datatype_enum
    assert float(tf.make_ndarray(request.inputs["temperature"])) == 2.0
