"""TF Serving's REST API: routing, request handling and `{"error": ...}` bodies, on aiohttp.

`RestApi.process` handles one request synchronously (paths and messages as in TF Serving's
http_rest_api_handler.cc and http_rest_api_util.cc); `rest_server.create_app` serves it over HTTP.
"""

import logging
import re
import typing
import urllib.parse

from google.protobuf import json_format
from tensorflow_serving.apis import model_pb2

from serving import inference
from serving import json_tensor
from serving import model_manager
from serving import status

logger = logging.getLogger("serving")

_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_INT64_MAX = (1 << 63) - 1


class RestApi:
    """Answers REST requests for the models of a ModelManager.

    Args:
        manager: The served models.
        max_elements: Most tensor elements (or JSON values) one request may hold.
    """

    def __init__(self, manager: model_manager.ModelManager,
                 max_elements: int = json_tensor.DEFAULT_MAX_ELEMENTS):
        self._manager = manager
        self._max_elements = max_elements

    def process(self, method: str, path: str, body: bytes,
                reserve: typing.Optional[typing.Callable[[int], None]] = None) -> tuple[int, bytes]:
        """Handles one request; returns the HTTP status and the JSON body (an `{"error": ...}` on failure).

        `reserve` is called with the memory the request will take once that is known (it may refuse).
        """
        try:
            return 200, self._dispatch(method, path, _Body(body, reserve))
        except status.ServingError as error:
            return error.http_status, json_tensor.dumps({"error": error.message})
        except Exception as error:  # noqa: BLE001 - every failure must still answer with a JSON error
            logger.exception("%s %s failed", method, path)
            return 500, json_tensor.dumps({"error": f"Internal error: {error}"})

    def _dispatch(self, method: str, path: str, body: "_Body") -> bytes:
        if not _API_PATH.fullmatch(path):
            raise status.not_found(f"Not found: {path}")
        malformed = status.invalid_argument(f"Malformed request: {method} {path}")
        pattern = _PREDICTION_PATH if method == "POST" else _STATUS_PATH if method == "GET" else None
        match = pattern.fullmatch(path) if pattern else None
        if match is None:
            raise malformed
        name, version_text, label, action = match.groups()
        name = urllib.parse.unquote(name) if name else ""
        label = urllib.parse.unquote(label) if label else None
        version = None
        if version_text:
            version = int(version_text)
            if version > _INT64_MAX:
                raise status.invalid_argument(f"Failed to convert version: {version_text} to numeric.")
        if method == "POST":
            handlers = {"predict": self._predict, "classify": self._classify, "regress": self._regress}
            if action not in handlers:
                raise malformed
            return handlers[action](name, version, label, body)
        if not name:
            raise status.invalid_argument("Missing model name in request.")
        if action == "metadata":
            return self._metadata(name, version, label)
        # Like TF Serving, a status request ignores a version label and reports every version.
        return _proto_json(inference.status_response(self._manager, name, version))

    def _predict(self, name: str, version, label, body: "_Body") -> bytes:
        document = self._parse(body)
        signature_name = inference.signature_or_default(json_tensor.signature_name(document))
        servable = self._manager.servable(name, version, label)
        signature_def = servable.signature_defs.get(signature_name)
        if signature_def is None:
            raise status.invalid_argument(f'Serving signature name: "{signature_name}" not found in signature def')
        dtypes = inference.input_dtypes(signature_def)
        if not dtypes:
            raise status.invalid_argument(f"Failed to get input map for signature: {signature_name}")
        inputs, request_format = json_tensor.predict_inputs(document, dtypes)
        outputs = inference.predict(servable, signature_name, inputs)
        return json_tensor.dumps(json_tensor.predict_response(outputs, request_format))

    def _parse(self, body: "_Body") -> dict:
        return json_tensor.parse_request(body.data, self._max_elements, body.reserve)

    def _example_request(self, name: str, version, label, body: "_Body", method: str):
        document = self._parse(body)
        signature_name = json_tensor.signature_name(document)
        examples, context = json_tensor.examples_from_json(document, method)
        servable = self._manager.servable(name, version, label)
        return servable, signature_name, inference.serialized_examples(examples, context)

    def _classify(self, name: str, version, label, body: "_Body") -> bytes:
        servable, signature_name, examples = self._example_request(name, version, label, body, "classify")
        results = inference.classify(servable, signature_name, examples)
        return json_tensor.dumps({"results": [
            [[_text(label_value), score] for label_value, score in classes] for classes in results]})

    def _regress(self, name: str, version, label, body: "_Body") -> bytes:
        servable, signature_name, examples = self._example_request(name, version, label, body, "regress")
        return json_tensor.dumps({"results": inference.regress(servable, signature_name, examples)})

    def _metadata(self, name: str, version, label) -> bytes:
        servable = self._manager.servable(name, version, label)
        model_spec = model_pb2.ModelSpec(name=name)
        model_spec.version.value = servable.version
        return json_tensor.dumps({"model_spec": _proto_dict(model_spec), "metadata": {
            inference.SIGNATURE_DEF_FIELD: _proto_dict(inference.signature_def_map(servable))}})


class _Body(typing.NamedTuple):
    data: bytes
    reserve: typing.Optional[typing.Callable[[int], None]]


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _proto_dict(message) -> dict:
    """A proto as JSON with every field printed and proto field names, as TF Serving writes metadata."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def _proto_json(message) -> bytes:
    return json_tensor.dumps(json_format.MessageToDict(message, always_print_fields_with_no_presence=True))
