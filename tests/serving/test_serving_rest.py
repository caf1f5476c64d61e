"""REST conformance against TF Serving's own test models: status, metadata, predict, classify, regress, errors."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from serving_helpers import TESTDATA

STATUS_OK = {"error_code": "OK", "error_message": ""}


def _json(response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    return json.loads(response.text)


def test_status_of_every_version_and_of_one(conformance_server):
    response = conformance_server.request("GET", "/v1/models/half_plus_two")
    assert response.status_code == 200
    assert _json(response) == {"model_version_status": [
        {"version": "124", "state": "AVAILABLE", "status": STATUS_OK},
        {"version": "123", "state": "AVAILABLE", "status": STATUS_OK}]}
    response = conformance_server.request("GET", "/v1/models/half_plus_two/versions/123")
    assert _json(response) == {"model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": STATUS_OK}]}


@pytest.mark.parametrize("model, path, expected_file", [
    ("default", "/v1/models/default/metadata", "half_plus_two_model_metadata.json"),
    ("default", "/v1/models/default/versions/123/metadata", "half_plus_two_model_metadata.json"),
    ("half_plus_two", "/v1/models/half_plus_two/labels/stable/metadata",
     "saved_model_half_plus_two_2_versions_metadata.json"),
])
def test_metadata_equals_tf_servings_expected_response(conformance_server, model, path, expected_file):
    expected = json.loads((TESTDATA / expected_file).read_text())
    expected["model_spec"]["name"] = model

    response = conformance_server.request("GET", path)

    assert response.status_code == 200
    assert _json(response) == expected


@pytest.mark.parametrize("path, body, expected", [
    ("/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
    ("/v1/models/half_plus_two:predict", {"inputs": [1.0, 2.0]}, {"outputs": [2.5, 3.0]}),
    ("/v1/models/half_plus_two:predict", {"instances": [[1.0], [2.0]]}, {"predictions": [[2.5], [3.0]]}),
    ("/v1/models/half_plus_two:predict", {"inputs": {"x": [[1.0], [5]]}}, {"outputs": [[2.5], [4.5]]}),
    ("/v1/models/half_plus_two:predict", {"signature_name": "serving_default", "instances": [{"x": 4.0}]},
     {"predictions": [4.0]}),
    ("/v1/models/half_plus_two/versions/123:predict", {"instances": [1.0]}, {"predictions": [2.5]}),
    ("/v1/models/half_plus_two/labels/canary:predict", {"instances": [1.0]}, {"predictions": [2.5]}),
    ("/V1/MODELS/half_plus_two:predict", {"instances": [1.0]}, {"predictions": [2.5]}),
    ("/v1/models/half_plus_three:predict", {"instances": [1.0, 2.0, 5.0]}, {"predictions": [3.5, 4.0, 5.5]}),
    ("/v1/models/default:predict", {"instances": [1.0, 2.0]}, {"predictions": [2.5, 3.0]}),
    ("/v1/models/half_plus_two:predict", {"signature_name": "regress_x2_to_y3", "inputs": [[1.0]]},
     {"outputs": [[3.5]]}),
    ("/v1/models/half_plus_two:classify", {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]},
     {"results": [[["", 3.0]]]}),
    ("/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}, {"x": [4.0]}]},
     {"results": [3.0, 4.0]}),
    ("/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "context": {"x": 8.0},
                                          "examples": [{"x": 2.0}, {"other": "text"}]}, {"results": [3.0, 6.0]}),
    ("/v1/models/half_plus_three:regress", {"signature_name": "tensorflow/serving/regress",
                                            "examples": [{"x": 2.0}]}, {"results": [4.0]}),
])
def test_predict_classify_regress_answer_as_tf_serving(conformance_server, path, body, expected):
    response = conformance_server.request("POST", path, body)

    assert response.status_code == 200, response.text
    assert _json(response) == expected


def test_non_finite_floats_are_bare_nan_and_infinity(conformance_server):
    response = conformance_server.request("POST", "/v1/models/half_plus_two:predict",
                                          '{"instances": [NaN, Infinity, -Infinity]}')

    assert response.status_code == 200
    assert response.text.replace(" ", "") == '{"predictions":[NaN,Infinity,-Infinity]}'


def test_floats_are_written_with_their_shortest_float32_text(conformance_server):
    response = conformance_server.request("POST", "/v1/models/half_plus_two:predict", {"instances": [0.2, -3.0]})

    assert response.text.replace(" ", "") == '{"predictions":[2.1,0.5]}'


def test_row_objects_with_several_inputs_and_bytes_outputs_as_b64(conformance_server):
    raw = bytes([0, 255, 10, 128])
    body = {"instances": [{"text": {"b64": base64.b64encode(raw).decode()}, "count": 3},
                          {"text": "plain", "count": -1}]}

    response = conformance_server.request("POST", "/v1/models/echo:predict", body)

    assert response.status_code == 200, response.text
    assert _json(response) == {"predictions": [
        {"doubled": 6, "echo_bytes": {"b64": base64.b64encode(raw).decode()}},
        {"doubled": -2, "echo_bytes": {"b64": base64.b64encode(b"plain").decode()}}]}


def test_columnar_with_several_inputs(conformance_server):
    body = {"inputs": {"text": ["a", "b"], "count": [1, 2], "ignored": 7}}

    response = conformance_server.request("POST", "/v1/models/echo:predict", body)

    assert _json(response) == {"outputs": {"doubled": [2, 4], "echo_bytes": [{"b64": "YQ=="}, {"b64": "Yg=="}]}}


def _image_bytes(width: int, height: int, image_format: str) -> bytes:
    stream = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(stream, format=image_format)
    return stream.getvalue()


def test_image_bytes_as_b64_reach_the_model_unchanged(conformance_server):
    images = [_image_bytes(7, 3, "PNG"), _image_bytes(16, 9, "JPEG")]
    body = {"instances": [{"b64": base64.b64encode(image).decode()} for image in images]}

    response = conformance_server.request("POST", "/v1/models/image_size:predict", body)

    assert response.status_code == 200, response.text
    assert _json(response) == {"predictions": [{"caption": "7x3", "score": 21.0},
                                               {"caption": "16x9", "score": 144.0}]}


INSTANCES = {"instances": [1.0]}


@pytest.mark.parametrize("method, path, body, status, message", [
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("GET", "/v1/models/unknown", None, 404, "Could not find any versions of model unknown"),
    ("GET", "/v1/models/half_plus_two/versions/7", None, 404, "Could not find version 7 of model half_plus_two"),
    ("GET", "/v1/models/unknown/metadata", None, 404, "Servable not found for request: Latest(unknown)"),
    ("GET", "/v1/models/half_plus_two/labels/nope/metadata", None, 400,
     "Unrecognized servable version label: nope"),
    ("PUT", "/v1/models/half_plus_two", None, 400, "Malformed request: PUT /v1/models/half_plus_two"),
    ("DELETE", "/v1/models/half_plus_two:predict", None, 400, "Malformed request: DELETE"),
    ("GET", "/v1/models/half_plus_two:predict", None, 400, "Malformed request: GET"),
    ("POST", "/v1/models/half_plus_two", INSTANCES, 400, "Malformed request: POST /v1/models/half_plus_two"),
    ("POST", "/v1/models/half_plus_two:PREDICT", INSTANCES, 400, "Malformed request"),
    ("POST", "/v1/models/half_plus_two:explain", INSTANCES, 400, "Malformed request"),
    ("POST", "/v1/models/unknown:predict", INSTANCES, 404, "Servable not found for request: Latest(unknown)"),
    ("POST", "/v1/models/half_plus_two/versions/7:predict", INSTANCES, 404,
     "Servable not found for request: Specific(half_plus_two, 7)"),
    ("POST", "/v1/models/half_plus_two/versions/99999999999999999999:predict", INSTANCES, 400,
     "Failed to convert version: 99999999999999999999 to numeric."),
    ("POST", "/v1/models/half_plus_two/labels/nope:predict", INSTANCES, 400,
     "Unrecognized servable version label: nope"),
    ("POST", "/v1/models/half_plus_two:predict", {"signature_name": "nope", "instances": [1.0]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("POST", "/v1/models/half_plus_two:predict", {"signature_name": 3, "instances": [1.0]}, 400,
     "'signature_name' key must be a string value."),
    ("POST", "/v1/models/half_plus_two:predict", {"instances": [1.0], "inputs": [1.0]}, 400,
     "expecting only one of 'inputs' or 'instances' keys to exist"),
    ("POST", "/v1/models/half_plus_two:predict", {"signature_name": "serving_default"}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("POST", "/v1/models/half_plus_two:predict", {"instances": []}, 400, "No values in 'instances' array"),
    ("POST", "/v1/models/half_plus_two:predict", {"instances": 1.0}, 400, "Excepting 'instances' to be an list/array"),
    ("POST", "/v1/models/half_plus_two:predict", {"instances": ["a"]}, 400,
     'JSON Value: "a" Type: String is not of expected type: float'),
    ("POST", "/v1/models/half_plus_two:predict", {"inputs": [True]}, 400,
     "JSON Value: true Type: True is not of expected type: float"),
    ("POST", "/v1/models/half_plus_two:predict", {"inputs": [{"b64": "AAAA"}]}, 400,
     'Type: Object is not of expected type: float'),
    ("POST", "/v1/models/half_plus_two:predict", {"instances": [[1.0], [1.0, 2.0]]}, 400,
     "Expecting tensor size: 1 but got: 2"),
    ("POST", "/v1/models/half_plus_two:predict", {"inputs": [[1.0], [1.0, 2.0]]}, 400,
     "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    ("POST", "/v1/models/half_plus_two:predict", {"inputs": [[1.0], 2.0]}, 400,
     "JSON Value: 2.0 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ("POST", "/v1/models/half_plus_two:predict", {"instances": [{"y": 1.0}]}, 400,
     "JSON object: does not have named input: y"),
    ("POST", "/v1/models/echo:predict", {"instances": ["a"]}, 400,
     "instances is a plain list, but expecting list of objects as multiple input tensors"),
    ("POST", "/v1/models/echo:predict", {"instances": [{"text": "a"}]}, 400, "must only have keys: count,text"),
    ("POST", "/v1/models/echo:predict", {"instances": [{"text": "a", "count": 1}, ["b", 2]]}, 400,
     "Expecting object but got list at item 1 of input list"),
    ("POST", "/v1/models/echo:predict", {"inputs": {"text": ["a"]}}, 400, "Missing named input: count in 'inputs' object."),
    ("POST", "/v1/models/echo:predict", {"inputs": ["a"]}, 400, "inputs is a plain value/list, but expecting an object"),
    ("POST", "/v1/models/echo:predict", {"inputs": {"text": [{"b64": "not base64!"}], "count": [1]}}, 400,
     "Unable to base64 decode"),
    ("POST", "/v1/models/echo:predict", {"inputs": {"text": [{"b64": "QQ==", "x": 1}], "count": [1]}}, 400,
     "not formatted correctly for base64 data"),
    ("POST", "/v1/models/echo:predict", {"inputs": {"text": ["a"], "count": [1.5]}}, 400,
     "is not of expected type: int32"),
    ("POST", "/v1/models/echo:predict", {"inputs": {"text": ["a"], "count": [2 ** 31]}}, 400,
     "is not of expected type: int32"),
    ("POST", "/v1/models/half_precision:predict", {"inputs": [1.0]}, 501, "Conversion of JSON Value: 1.0 to type: half"),
    ("POST", "/v1/models/image_size:predict", {"instances": [{"b64": "aGVsbG8="}]}, 400, ""),
    ("POST", "/v1/models/half_plus_two:predict", "{not json", 400, "JSON Parse error"),
    ("POST", "/v1/models/half_plus_two:predict", "", 400, "JSON Parse error: The document is empty"),
    ("POST", "/v1/models/half_plus_two:predict", "[1.0]", 400, "Is not object"),
    ("POST", "/v1/models/half_plus_two:predict", b"\xff\xfe{", 400, "JSON Parse error"),
    ("POST", "/v1/models/half_plus_two:predict", "[" * 100000 + "]" * 100000, 400, "Is not object"),
    ("POST", "/v1/models/half_plus_two:predict", '{"instances": ' + "[" * 100000 + "]" * 100000 + "}", 400,
     "JSON Parse error: arrays or objects nested too deeply"),
    ("POST", "/v1/models/half_plus_two:classify", {"examples": [{"x": 2.0}]}, 400,
     "Expected classification signature method_name to be tensorflow/serving/classify. "
     "Was: tensorflow/serving/predict"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "nope", "examples": [{"x": 2.0}]}, 400,
     "No signature was found with the name: nope"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y"}, 400,
     "key 'examples' is expected and was not found"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "examples": []}, 400,
     "'examples' value is an empty array"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "examples": [3]}, 400,
     "Example must be JSON object but got JSON Number"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": None}]},
     400, "Feature: x has element with unexpected JSON type: Null"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": [1.0, "a"]}]},
     400, "Unexpected element type in feature: x expecting type: float"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": [[1.0]]}]},
     400, "Feature: x has element with unexpected JSON type: Array"),
    ("POST", "/v1/models/half_plus_two:regress", {"signature_name": "regress_x_to_y", "examples": [{"x": 2 ** 63}]},
     400, "Feature: x has uint64 element. Only int64 is supported."),
    ("GET", "/v2/models/half_plus_two", None, 404, "Not found"),
])
def test_errors_have_tf_servings_status_and_message(conformance_server, method, path, body, status, message):
    response = conformance_server.request(method, path, body)

    assert response.status_code == status, response.text
    error = _json(response)
    assert set(error) == {"error"}
    assert message in error["error"]


def test_request_larger_than_the_limit_is_refused_with_413(conformance_server):
    body = '{"instances": [' + ", ".join(["1.0"] * 300000) + "]}"

    response = conformance_server.request("POST", "/v1/models/half_plus_two:predict", body)

    assert response.status_code == 413
    assert "limit" in _json(response)["error"]


# === Points where TF Serving's own tests (json_tensor_test.cc) or its parser (rapidjson) decide ===

def test_json_tensor_float_tensor_with_precision_loss_is_accepted(conformance_server):
    """JsontensorTest.FloatTensorWithPrecisionLoss: an integer beyond float's mantissa is rounded."""
    response = conformance_server.request("POST", "/v1/models/half_plus_two:predict", '{"instances": [[1435774380]]}')

    assert response.status_code == 200, response.text
    (value,), = _json(response)["predictions"]
    assert np.float32(value) == np.float32(1435774380) * np.float32(0.5) + np.float32(2)


def test_json_tensor_float_tensor_that_exceeds_max_returns_inf(conformance_server):
    """JsontensorTest.FloatTensorThatExceedsMaxReturnsInf."""
    response = conformance_server.request("POST", "/v1/models/half_plus_two:predict", '{"instances": [[1.797e308]]}')

    assert response.status_code == 200, response.text
    assert response.text.replace(" ", "") == '{"predictions":[[Infinity]]}'


@pytest.mark.parametrize("body, message", [
    ('{"instances": [' + "9" * 5001 + "]}", "JSON Parse error: Number too big to be stored in double."),
    ('{"instances": [1e400]}', "JSON Parse error: Number too big to be stored in double."),
    ('{"instances": [x]}', "JSON Parse error: Invalid value. at offset: 15"),
    ('{"instances": [1.0 2.0]}', "JSON Parse error: Missing a comma or ']' after an array element. at offset: 19"),
    ('{"instances": "\\ud800"}', "JSON Parse error: The surrogate pair in string is invalid."),
])
def test_parse_errors_are_rapidjsons_and_never_5xx(conformance_server, body, message):
    response = conformance_server.request("POST", "/v1/models/half_plus_two:predict", body)

    assert (response.status_code, _json(response)) == (400, {"error": message})


def test_lone_surrogate_feature_name_on_classify_is_a_400(conformance_server):
    body = '{"signature_name": "classify_x_to_y", "examples": [{"\\udc00": 2.0}]}'

    response = conformance_server.request("POST", "/v1/models/half_plus_two:classify", body)

    assert response.status_code == 400 and "surrogate pair" in _json(response)["error"]


def test_gzip_content_encoding_is_inflated_and_a_broken_one_is_a_json_400(conformance_server):
    import gzip
    url = conformance_server.url + "/v1/models/half_plus_two:predict"
    body = json.dumps({"instances": [1.0, 2.0]}).encode()

    good = conformance_server.session.post(url, data=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    broken = conformance_server.session.post(url, data=body, headers={"Content-Encoding": "gzip"})

    assert (good.status_code, _json(good)) == (200, {"predictions": [2.5, 3.0]})
    assert (broken.status_code, _json(broken)) == (400, {"error": "JSON Parse error: The document is empty"})
