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


def _export_with_compiled_signature(path: str, config: str | None) -> str:
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(text):
        return {"length": tf.strings.length(text)}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve, "serving_default_xla": serve})
    if config is not None:
        os.makedirs(os.path.join(path, "assets.extra"))
        with open(os.path.join(path, "assets.extra", "config.yaml"), "w", encoding="utf-8") as stream:
            stream.write(config)
    return path


def _written_requests(path: str) -> list[tuple[str, list]]:
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in tf.data.TFRecordDataset(path)]
    return [(log.predict_log.request.model_spec.signature_name,
             [value.decode() for value in tf.make_ndarray(log.predict_log.request.inputs["text"]).tolist()])
            for log in logs]


def test_a_compiled_signature_also_gets_one_request_per_length_bucket_up_to_the_max_sequence_length(tmp_path):
    export = _export_with_compiled_signature(str(tmp_path / "1"), "task: sentiment\ndata:\n  max_sequence_length: 40\n")
    samples = ["", "!!!", "a fine film, truly"]

    path = warmup.write_warmup_requests(export, {name: [{"text": [sample]} for sample in samples]
                                                 for name in ("serving_default", "serving_default_xla")})

    written = _written_requests(path)
    assert [texts for name, texts in written if name == "serving_default"] == [[sample] for sample in samples]
    compiled = [texts for name, texts in written if name == "serving_default_xla"]
    assert compiled[:3] == [[sample] for sample in samples]
    # Token axes are padded to multiples of 16 before the compiled call: 40 tokens at most -> buckets 16, 32, 48.
    assert [len(text.split()) for (text,) in compiled[3:]] == [16, 32, 48]
    assert set(" ".join(text for (text,) in compiled[3:]).split()) == {"a", "fine", "truly"}  # "film," has a comma


def test_no_length_buckets_without_a_max_sequence_length_or_a_word_to_repeat(tmp_path):
    without_config = _export_with_compiled_signature(str(tmp_path / "1"), None)
    without_length = _export_with_compiled_signature(str(tmp_path / "2"), "task: translation\ndata: {}\n")
    without_words = _export_with_compiled_signature(str(tmp_path / "3"), "data:\n  max_sequence_length: 40\n")

    for export, sample in ((without_config, "good"), (without_length, "good"), (without_words, "!!!")):
        path = warmup.write_warmup_requests(export, {"serving_default_xla": [{"text": [sample]}]})
        assert _written_requests(path) == [("serving_default_xla", [sample])]


def test_the_bucket_size_is_the_compiled_signatures_padding_multiple():
    from pipeline.tasks import compiled

    assert warmup.LENGTH_MULTIPLE == compiled.LENGTH_MULTIPLE
    assert warmup.COMPILED_SUFFIX == compiled.SUFFIX
