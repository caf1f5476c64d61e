"""Predict, classify, regress, metadata and status on loaded servables, shared by the REST and gRPC APIs.

Checks and messages follow TF Serving's predict_util.cc, classifier.cc, regressor.cc,
get_model_metadata_impl.cc and get_model_status_impl.cc.
"""

import typing

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2

from serving import model_manager
from serving import servable as servable_lib
from serving import status

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
SIGNATURE_DEF_FIELD = "signature_def"

_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val", types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val", types_pb2.DT_INT64: "int64_val", types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_UINT32: "uint32_val", types_pb2.DT_UINT64: "uint64_val",
}
_NUMPY_DATATYPES = {
    np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32, np.dtype(np.int16): types_pb2.DT_INT16,
    np.dtype(np.int8): types_pb2.DT_INT8, np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16, np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL, np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
}


def signature_or_default(name: str) -> str:
    return name or servable_lib.DEFAULT_SIGNATURE


def input_dtypes(signature_def) -> dict[str, int]:
    return {name: info.dtype for name, info in signature_def.inputs.items()}


# === Predict ===

def prediction_signature(servable: servable_lib.Servable, signature_name: str):
    """(name, SignatureDef) of the signature a Predict request names ("" means serving_default)."""
    signature_name = signature_or_default(signature_name)
    signature_def = servable.signature_defs.get(signature_name)
    if signature_def is None:
        raise status.failed_precondition(f'Serving signature key "{signature_name}" not found.')
    if signature_def.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
        raise status.ServingError("INTERNAL", "Expected prediction signature method_name to be one of "
                                  f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. "
                                  f"Was: {signature_def.method_name}")
    return signature_name, signature_def


def check_input_names(signature_def, names: typing.Iterable[str]) -> None:
    """Requests must give exactly the signature's inputs."""
    expected, given = set(signature_def.inputs), set(names)
    if len(expected) != len(given):
        raise status.invalid_argument(
            f"input size does not match signature: {len(given)}!={len(expected)} len({{{','.join(sorted(given))}}}) "
            f"!= len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(given - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - given))}}}.")
    for alias in sorted(given - expected):
        raise status.invalid_argument(f"input tensor alias not found in signature: {alias}. Inputs expected to be "
                                      f"in the set {{{','.join(sorted(expected))}}}.")


def predict(servable: servable_lib.Servable, signature_name: str, inputs: dict[str, np.ndarray],
            output_filter: typing.Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Runs a signature after TF Serving's checks (method name, the exact input set, the output filter).

    Raises:
        ServingError: FAILED_PRECONDITION for an unknown signature, INVALID_ARGUMENT for bad inputs.
    """
    signature_name, signature_def = prediction_signature(servable, signature_name)
    check_input_names(signature_def, inputs)
    for alias in output_filter:
        if alias not in signature_def.outputs:
            raise status.invalid_argument(f"output tensor alias not found in signature: {alias} Outputs expected to "
                                          f"be in the set {{{','.join(sorted(signature_def.outputs))}}}.")
    if len(set(output_filter)) != len(output_filter):
        raise status.invalid_argument(f"duplicate output tensor alias: {','.join(output_filter)}")
    output_names = list(output_filter) or sorted(signature_def.outputs)
    return servable.run(signature_name, inputs, output_names)


# === Classify and regress (signatures taking serialized tf.Examples) ===

def serialized_examples(examples: list, context=None) -> np.ndarray:
    """Serialized tf.Examples as a string vector; the context's features are merged into each example."""
    prefix = context.SerializeToString() if context is not None else b""
    array = np.empty(len(examples), dtype=object)
    array[:] = [prefix + example.SerializeToString() for example in examples]
    return array


def _example_signature(servable: servable_lib.Servable, signature_name: str, method: str, kind: str):
    signature_name = signature_or_default(signature_name)
    signature_def = servable.signature_defs.get(signature_name)
    if signature_def is None:
        raise status.invalid_argument(f"No signature was found with the name: {signature_name}")
    if signature_def.method_name != method:
        raise status.invalid_argument(f"Expected {kind} signature method_name to be {method}. "
                                      f"Was: {signature_def.method_name}")
    if len(signature_def.inputs) != 1:
        raise status.invalid_argument("Expected one input Tensor.")
    if "inputs" not in signature_def.inputs:
        raise status.failed_precondition(f"No {kind} inputs found in SignatureDef: {signature_def}")
    return signature_name, signature_def


def classify(servable: servable_lib.Servable, signature_name: str, examples: np.ndarray) -> list[list[tuple]]:
    """Runs a classify signature on serialized examples; returns (label, score) pairs per example."""
    if not len(examples):
        raise status.invalid_argument("ClassificationRequest::input is empty.")
    signature_name, signature_def = _example_signature(servable, signature_name, CLASSIFY_METHOD, "classification")
    if len(signature_def.outputs) not in (1, 2):
        raise status.invalid_argument(f"Expected one or two output Tensors, found {len(signature_def.outputs)}")
    names = [name for name in ("classes", "scores") if name in signature_def.outputs]
    if not names:
        raise status.failed_precondition('Expected classification signature outputs to contain at least one of '
                                         f'"classes" or "scores". Signature was: {signature_def}')
    outputs = servable.run(signature_name, {"inputs": examples}, names)
    for name, kind in (("classes", "OSU"), ("scores", "f")):
        if name in outputs:
            array = outputs[name]
            if array.ndim != 2:
                raise status.invalid_argument(f"Expected Tensor shape: [batch_size num_classes] but got {list(array.shape)}")
            if array.dtype.kind not in kind:
                raise status.invalid_argument(f"Expected {name} Tensor of DT_{'STRING' if name == 'classes' else 'FLOAT'}.")
            if array.shape[0] != len(examples):
                raise status.invalid_argument(f"Expected {name} output batch size of {len(examples)}. "
                                              f"Got: {array.shape[0]}")
    classes, scores = outputs.get("classes"), outputs.get("scores")
    num_classes = (classes if classes is not None else scores).shape[1]
    if classes is not None and scores is not None and scores.shape[1] != num_classes:
        raise status.invalid_argument(f"Tensors class and score should match in dim_size(1). "
                                      f"Got {num_classes} vs. {scores.shape[1]}")
    return [[(classes[row, column] if classes is not None else b"",
              float(scores[row, column]) if scores is not None else 0.0)
             for column in range(num_classes)] for row in range(len(examples))]


def regress(servable: servable_lib.Servable, signature_name: str, examples: np.ndarray) -> list[float]:
    """Runs a regress signature on serialized examples; returns one value per example."""
    if not len(examples):
        raise status.invalid_argument("RegressionRequest::input is empty.")
    signature_name, signature_def = _example_signature(servable, signature_name, REGRESS_METHOD, "regression")
    if len(signature_def.outputs) != 1:
        raise status.invalid_argument("Expected one output Tensor.")
    if "outputs" not in signature_def.outputs:
        raise status.failed_precondition(f"No regression outputs found in SignatureDef: {signature_def}")
    values = servable.run(signature_name, {"inputs": examples}, ["outputs"])["outputs"]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise status.invalid_argument("Expected output Tensor shape to be either [batch_size] or [batch_size, 1] "
                                      f"but got {list(values.shape)}")
    if values.dtype.kind != "f":
        raise status.invalid_argument("Expected output Tensor of DT_FLOAT.")
    if values.shape[0] != len(examples):
        raise status.invalid_argument(f"Input batch size did not match output batch size: {len(examples)} vs. "
                                      f"{values.shape[0]}")
    return [float(value) for value in values.reshape(-1)]


# === Tensors as protos (gRPC) ===

def array_from_proto(alias: str, proto: tensor_pb2.TensorProto, expected_dtype: int) -> np.ndarray:
    """A request TensorProto as an array, checking its dtype against the signature's."""
    if proto.dtype != expected_dtype:
        raise status.invalid_argument(f"Expects arg[{alias}] to be {types_pb2.DataType.Name(expected_dtype)[3:].lower()} "
                                      f"but {types_pb2.DataType.Name(proto.dtype)[3:].lower()} is provided")
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError):
        raise status.invalid_argument(f"tensor parsing error: {alias}") from None


def tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """An output array as a TensorProto with typed value fields (TF Serving's AsProtoField)."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
        proto.string_val.extend(value if isinstance(value, bytes) else str(value).encode("utf-8")
                                for value in array.reshape(-1))
    elif array.dtype in _NUMPY_DATATYPES:
        proto = tensor_pb2.TensorProto(dtype=_NUMPY_DATATYPES[array.dtype])
        getattr(proto, _VALUE_FIELDS[proto.dtype]).extend(array.reshape(-1).tolist())
    else:
        return tf.make_tensor_proto(array)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


# === Metadata and status ===

def signature_def_map(servable: servable_lib.Servable) -> get_model_metadata_pb2.SignatureDefMap:
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, signature_def in servable.signature_defs.items():
        signature_map.signature_def[name].CopyFrom(signature_def)
    return signature_map


def metadata_response(servable: servable_lib.Servable, model_name: str) -> get_model_metadata_pb2.GetModelMetadataResponse:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model_name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_def_map(servable))
    return response


def status_response(manager: model_manager.ModelManager, name: str,
                    version: typing.Optional[int]) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for number, state in manager.version_states(name, version):
        entry = response.model_version_status.add(version=number)
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
        entry.status.error_code = error_codes_pb2.Code.Value(state.error_code)
        entry.status.error_message = state.error_message
    return response
