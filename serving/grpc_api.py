"""TF Serving's gRPC API (`PredictionService`, `ModelService`) on grpcio's server with the official stubs.

Each call runs directly on one of the gRPC server's worker threads (no further hand-off, which matters for
batch-1 latency); the client's deadline bounds it (a request run in row chunks stops between chunks once
it has passed). A call holds its message's bytes in the server's in-flight budget while it runs and is
refused at once with RESOURCE_EXHAUSTED when the budget is full. Failures abort the call with TF Serving's
status code and message.
"""

import logging
import math
import time
import typing

import grpc
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

from serving import admission
from serving import deadlines
from serving import inference
from serving import model_config
from serving import model_manager
from serving import status

logger = logging.getLogger("serving")


def _spec(model_spec) -> tuple[str, typing.Optional[int], typing.Optional[str]]:
    """(name, version, label) of a ModelSpec."""
    choice = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if choice == "version" else None
    label = model_spec.version_label if choice == "version_label" else None
    return model_spec.name, version, label


def _set_spec(target, servable, signature_name: str) -> None:
    target.name = servable.name
    target.version.value = servable.version
    target.signature_name = signature_name


class _Runner:
    """Runs a handler under admission control, turning ServingErrors into gRPC statuses."""

    def __init__(self, manager: model_manager.ModelManager, budget: admission.ByteBudget, max_elements: int):
        self.manager = manager
        self.max_elements = max_elements
        self._budget = budget

    def run(self, context: grpc.ServicerContext, function: typing.Callable, request):
        reservation = admission.Reservation(self._budget)
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        try:
            reservation.take(request.ByteSize())
            with deadlines.scope(deadline):
                return function(request)
        except status.ServingError as error:
            context.abort(error.grpc_code, error.message)
        except Exception as error:  # noqa: BLE001 - answer with a status, never a dropped call
            logger.exception("gRPC %s failed", getattr(function, "__name__", function))
            context.abort(grpc.StatusCode.INTERNAL, f"Internal error: {error}")
        finally:
            reservation.release()


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict, Classify, Regress and GetModelMetadata."""

    def __init__(self, runner: _Runner):
        self._runner = runner

    def Predict(self, request, context):  # noqa: N802 - gRPC method names
        return self._runner.run(context, self._predict, request)

    def Classify(self, request, context):  # noqa: N802
        return self._runner.run(context, self._classify, request)

    def Regress(self, request, context):  # noqa: N802
        return self._runner.run(context, self._regress, request)

    def GetModelMetadata(self, request, context):  # noqa: N802
        return self._runner.run(context, self._metadata, request)

    def MultiInference(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported by this server")

    def _predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        servable = self._runner.manager.servable(*_spec(request.model_spec))
        signature_name, signature_def = inference.prediction_signature(servable, request.model_spec.signature_name)
        inference.check_input_names(signature_def, request.inputs)
        elements = sum(math.prod(dimension.size for dimension in proto.tensor_shape.dim)
                       for proto in request.inputs.values())
        if elements > self._runner.max_elements:
            raise status.resource_exhausted(f"Request holds {elements} tensor elements, more than the limit of "
                                            f"{self._runner.max_elements} (--max_request_elements)")
        inputs = {alias: inference.array_from_proto(alias, proto, signature_def.inputs[alias].dtype)
                  for alias, proto in request.inputs.items()}
        outputs = inference.predict(servable, signature_name, inputs, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        _set_spec(response.model_spec, servable, signature_name)
        for alias, array in outputs.items():
            response.outputs[alias].CopyFrom(inference.tensor_proto(array))
        return response

    def _examples(self, request):
        kind = request.input.WhichOneof("kind")
        if kind == "example_list_with_context":
            listed = request.input.example_list_with_context
            return inference.serialized_examples(listed.examples, listed.context)
        return inference.serialized_examples(request.input.example_list.examples if kind else [])

    def _classify(self, request: classification_pb2.ClassificationRequest):
        servable = self._runner.manager.servable(*_spec(request.model_spec))
        results = inference.classify(servable, request.model_spec.signature_name, self._examples(request))
        response = classification_pb2.ClassificationResponse()
        _set_spec(response.model_spec, servable, inference.signature_or_default(request.model_spec.signature_name))
        for classes in results:
            classifications = response.result.classifications.add()
            for label, score in classes:
                classifications.classes.add(label=label.decode("utf-8", "replace")
                                            if isinstance(label, bytes) else str(label), score=score)
        return response

    def _regress(self, request: regression_pb2.RegressionRequest):
        servable = self._runner.manager.servable(*_spec(request.model_spec))
        values = inference.regress(servable, request.model_spec.signature_name, self._examples(request))
        response = regression_pb2.RegressionResponse()
        _set_spec(response.model_spec, servable, inference.signature_or_default(request.model_spec.signature_name))
        for value in values:
            response.result.regressions.add(value=value)
        return response

    def _metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest):
        if not request.metadata_field:
            raise status.invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != inference.SIGNATURE_DEF_FIELD:
                raise status.invalid_argument(f"Metadata field {field} is not supported")
        servable = self._runner.manager.servable(*_spec(request.model_spec))
        return inference.metadata_response(servable, request.model_spec.name)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus, and HandleReloadConfigRequest to replace the served models."""

    def __init__(self, runner: _Runner):
        self._runner = runner

    def GetModelStatus(self, request, context):  # noqa: N802
        return self._runner.run(context, self._status, request)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        return self._runner.run(context, self._reload, request)

    def _status(self, request):
        if not request.HasField("model_spec"):
            raise status.invalid_argument("Missing ModelSpec")
        name, version, _ = _spec(request.model_spec)
        return inference.status_response(self._runner.manager, name, version)

    def _reload(self, request):
        try:
            configs = model_config.from_proto(request.config, "ReloadConfigRequest")
        except ValueError as error:
            raise status.invalid_argument(str(error)) from None
        self._runner.manager.update_config(configs)
        return model_management_pb2.ReloadConfigResponse()


_HEALTH_SERVING = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}, serialized


def add_health_service(server: grpc.Server) -> None:
    """grpc.health.v1.Health/Check answering SERVING (--enable_grpc_healthcheck_service), with no extra
    package: the response is one fixed message."""
    check = grpc.unary_unary_rpc_method_handler(lambda request, context: _HEALTH_SERVING,
                                                request_deserializer=bytes, response_serializer=bytes)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": check})])


def add_services(server: grpc.Server, manager: model_manager.ModelManager, budget: admission.ByteBudget,
                 max_elements: int) -> None:
    runner = _Runner(manager, budget, max_elements)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(runner), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(runner), server)
