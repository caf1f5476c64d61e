"""gRPC conformance with the official tensorflow-serving-api stubs against TF Serving's own test models."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

import serving_helpers
from serving import model_config


@pytest.fixture(scope="module")
def stubs(conformance_server):
    channel = grpc.insecure_channel(conformance_server.grpc_target)
    yield (prediction_service_pb2_grpc.PredictionServiceStub(channel),
           model_service_pb2_grpc.ModelServiceStub(channel))
    channel.close()


def _predict_request(model: str, values, signature: str = "", **spec) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if "version" in spec:
        request.model_spec.version.value = spec["version"]
    if "label" in spec:
        request.model_spec.version_label = spec["label"]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray(values, np.float32)))
    return request


def test_predict_answers_with_typed_values_and_the_version_used(stubs):
    prediction, _ = stubs

    response = prediction.Predict(_predict_request("half_plus_two", [1.0, 2.0]), timeout=30)

    assert list(response.outputs["y"].float_val) == [2.5, 3.0]
    assert response.outputs["y"].dtype == types_pb2.DT_FLOAT
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), [2.5, 3.0])
    assert (response.model_spec.name, response.model_spec.version.value) == ("half_plus_two", 124)
    assert response.model_spec.signature_name == "serving_default"


@pytest.mark.parametrize("spec, version", [({"version": 123}, 123), ({"label": "stable"}, 123),
                                           ({"label": "canary"}, 124)])
def test_predict_by_version_and_label(stubs, spec, version):
    prediction, _ = stubs

    response = prediction.Predict(_predict_request("half_plus_two", [1.0], **spec), timeout=30)

    assert response.model_spec.version.value == version


def test_predict_on_half_plus_three_and_output_filter(stubs):
    prediction, _ = stubs
    request = _predict_request("half_plus_three", [1.0, 2.0, 5.0])
    request.output_filter.append("y")

    response = prediction.Predict(request, timeout=30)

    assert list(response.outputs["y"].float_val) == [3.5, 4.0, 5.5]


def _example_input(request, values: list[float]) -> None:
    for value in values:
        request.input.example_list.examples.add().features.feature["x"].float_list.value.append(value)


def test_classify_and_regress_on_tf_example_signatures(stubs):
    prediction, _ = stubs
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "half_plus_two"
    classify.model_spec.signature_name = "classify_x_to_y"
    _example_input(classify, [2.0, 4.0])
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = "half_plus_two"
    regress.model_spec.signature_name = "regress_x_to_y"
    _example_input(regress, [2.0])

    classified = prediction.Classify(classify, timeout=30)
    regressed = prediction.Regress(regress, timeout=30)

    assert [[(item.label, item.score) for item in row.classes] for row in classified.result.classifications] == \
        [[("", 3.0)], [("", 4.0)]]
    assert [item.value for item in regressed.result.regressions] == [3.0]
    assert regressed.model_spec.signature_name == "regress_x_to_y"


def test_metadata_lists_the_signatures(stubs):
    prediction, _ = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "half_plus_two"
    request.model_spec.version.value = 123

    response = prediction.GetModelMetadata(request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)

    assert response.model_spec.version.value == 123
    assert set(signatures.signature_def) == {"serving_default", "classify_x_to_y", "classify_x2_to_y3",
                                             "regress_x_to_y", "regress_x_to_y2", "regress_x2_to_y3"}
    assert signatures.signature_def["serving_default"].inputs["x"].name == "x:0"


def test_model_status(stubs):
    _, models = stubs
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half_plus_two"

    response = models.GetModelStatus(request, timeout=30)

    assert [(item.version, item.state) for item in response.model_version_status] == [
        (124, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
        (123, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


def _status_request(model: str) -> get_model_status_pb2.GetModelStatusRequest:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    return request


@pytest.mark.parametrize("call, request_builder, code, message", [
    ("Predict", lambda: _predict_request("unknown", [1.0]), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Latest(unknown)"),
    ("Predict", lambda: _predict_request("half_plus_two", [1.0], version=9), grpc.StatusCode.NOT_FOUND,
     "Servable not found for request: Specific(half_plus_two, 9)"),
    ("Predict", lambda: _predict_request("half_plus_two", [1.0], label="nope"), grpc.StatusCode.INVALID_ARGUMENT,
     "Unrecognized servable version label: nope"),
    ("Predict", lambda: _predict_request("half_plus_two", [1.0], signature="nope"),
     grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
    ("Predict", lambda: predict_pb2.PredictRequest(model_spec={"name": "half_plus_two"}),
     grpc.StatusCode.INVALID_ARGUMENT, "input size does not match signature: 0!=1"),
    ("Predict", lambda: predict_pb2.PredictRequest(
        model_spec={"name": "half_plus_two"}, inputs={"z": tf.make_tensor_proto([1.0])}),
     grpc.StatusCode.INVALID_ARGUMENT, "input tensor alias not found in signature: z"),
    ("Predict", lambda: predict_pb2.PredictRequest(
        model_spec={"name": "half_plus_two"}, inputs={"x": tf.make_tensor_proto(["a"])}),
     grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[x] to be float but string is provided"),
    ("Predict", lambda: predict_pb2.PredictRequest(
        model_spec={"name": "half_plus_two"}, inputs={"x": tf.make_tensor_proto([1.0], tf.float32)},
        output_filter=["nope"]), grpc.StatusCode.INVALID_ARGUMENT, "output tensor alias not found in signature: nope"),
    ("Classify", lambda: classification_pb2.ClassificationRequest(model_spec={"name": "half_plus_two"}),
     grpc.StatusCode.INVALID_ARGUMENT, "ClassificationRequest::input is empty."),
    ("GetModelMetadata", lambda: get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "half_plus_two"}),
     grpc.StatusCode.INVALID_ARGUMENT, "must specify at least one metadata_field"),
])
def test_errors_have_tf_servings_codes(stubs, call, request_builder, code, message):
    prediction, _ = stubs

    with pytest.raises(grpc.RpcError) as raised:
        getattr(prediction, call)(request_builder(), timeout=30)

    assert raised.value.code() == code
    assert message in raised.value.details()


def test_status_of_unknown_model_is_not_found(stubs):
    _, models = stubs

    with pytest.raises(grpc.RpcError) as raised:
        models.GetModelStatus(_status_request("unknown"), timeout=30)

    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "Could not find any versions of model unknown"


def test_health_service_unix_socket_and_cors_flags_act(tmp_path, handmade_models):
    socket_path = str(tmp_path / "grpc.sock")
    running = serving_helpers.start_server(
        [model_config.ModelConfig("echo", handmade_models["echo"])], enable_health_service=True,
        grpc_socket_path=socket_path, enable_cors=True)
    try:
        for target in (running.grpc_target, f"unix:{socket_path}"):
            with grpc.insecure_channel(target) as channel:
                check = channel.unary_unary("/grpc.health.v1.Health/Check")
                assert check(b"", timeout=10) == b"\x08\x01"  # HealthCheckResponse{status: SERVING}
        preflight = running.session.options(running.url + "/v1/models/echo:predict", timeout=10)
        status_answer = running.request("GET", "/v1/models/echo")
    finally:
        running.server.stop_thread()
        running.server.manager.stop()

    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert status_answer.headers["Access-Control-Allow-Origin"] == "*"
