"""Warm-up: a version's assets.extra/tf_serving_warmup_requests replayed before it becomes AVAILABLE."""

import logging
import os

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

import serving_helpers
from pipeline import warmup
from serving import flags
from serving import model_config
from serving import model_manager
from serving import server
from serving import servable as servable_lib
from serving import warmup_replay


def _manager(base_path, *argv) -> model_manager.ModelManager:
    loader = server.loader_for_flags(flags.parse(list(argv)))
    manager = model_manager.ModelManager([model_config.ModelConfig("scale", str(base_path))], loader,
                                         model_manager.LoadPolicy(max_num_load_retries=0))
    manager.poll()
    return manager


def test_the_warmup_requests_are_replayed_before_the_version_is_available(tmp_path, caplog):
    export = serving_helpers.write_scale_model(str(tmp_path / "scale" / "1"), 2.0)
    warmup.write_warmup_requests(export, {"serving_default": [{"x": [1.0]}, {"x": [2.0, 3.0]}]})

    with caplog.at_level(logging.INFO, logger="serving"):
        manager = _manager(tmp_path / "scale", "--num_request_iterations_for_warmup=3")

    assert manager.servable("scale").version == 1
    assert any("Number of warmup records read: 2" in record.getMessage() for record in caplog.records)
    assert warmup_replay.replay(servable_lib.Servable("scale", 1, export), iterations=3) == 6


def test_warmup_is_skipped_when_disabled_and_a_failing_request_fails_the_load(tmp_path, caplog):
    export = serving_helpers.write_scale_model(str(tmp_path / "scale" / "1"), 2.0)
    request = predict_pb2.PredictRequest()
    request.inputs["nope"].CopyFrom(tf.make_tensor_proto([1.0]))
    path = os.path.join(export, warmup.WARMUP_FILE)
    os.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        writer.write(log.SerializeToString())

    assert _manager(tmp_path / "scale", "--enable_model_warmup=false").servable("scale").version == 1
    failed = _manager(tmp_path / "scale")

    state = dict(failed.version_states("scale"))[1]
    assert state.state == "END" and "warm-up request 0" in state.error_message
