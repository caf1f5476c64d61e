"""TF Serving's REST JSON encoding: request JSON to NumPy inputs and tf.Examples, outputs back to JSON.

The rules and error messages follow tensorflow_serving/util/json_tensor.cc: row (`instances`) and columnar
(`inputs`) formats, `{"b64": ...}` for binary strings in and out (outputs whose name ends in `_bytes`),
lossless number conversion, bare NaN/Infinity in responses.
"""

import base64
import binascii
import json
import math
import re
import typing

import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2
from tensorflow.core.framework import types_pb2

from serving import json_arrays
from serving import status

_BASE64_KEY = "b64"
_BYTES_SUFFIX = "_bytes"
_FLOAT32_MAX_INTEGER = (1 << 24) - 1
_FLOAT64_MAX_INTEGER = (1 << 53) - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_RANK = json_arrays.MAX_RANK  # NumPy arrays stop at 64 dimensions; no served model needs anywhere near this
DEFAULT_MAX_ELEMENTS = 1 << 25  # tensor elements per request (128 MiB of float32)
SMALL_ARRAY_BYTES = 4 << 20  # numeric arrays up to this size may take the ordinary JSON path
# Rough memory per JSON value parsed by json.loads and converted (a Python object, a list slot, the copy).
BYTES_PER_JSON_VALUE = 128
BYTES_PER_ARRAY_ELEMENT = 8
# Digits, exponent marks and signs kept as one byte each, everything else a space: finding a number that
# needs the slow number hooks ([0-9]{20} or [eE][+-]?[0-9]{3}) becomes three substring searches. A regular
# expression took about 100 ms on a 2.4 MB body of English text, holding the GIL from every other request.
_NUMBER_SHAPES = bytes(ord("0") if chr(byte).isdigit() and byte < 128 else ord("e") if byte in b"eE" else
                       ord("+") if byte in b"+-" else ord(" ") for byte in range(256))
_SURROGATE_ESCAPE = re.compile(rb"(\\+)u([dD][89a-fA-F][0-9a-fA-F]{2})")

# Integer dtypes: NumPy type and accepted range (JSON integers outside it are type errors).
_INTEGER_TYPES = {
    types_pb2.DT_INT8: np.int8, types_pb2.DT_INT16: np.int16, types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT64: np.int64, types_pb2.DT_UINT8: np.uint8, types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
}


def dtype_name(dtype: int) -> str:
    """TensorFlow's DataTypeString: DT_FLOAT -> "float", DT_INT32 -> "int32", DT_HALF -> "half"."""
    return types_pb2.DataType.Name(dtype)[3:].lower() if dtype in types_pb2.DataType.values() else str(dtype)


def json_text(value) -> str:
    """A JSON value as text, for error messages (long numeric arrays shortened)."""
    return json.dumps(value, allow_nan=True, ensure_ascii=False,
                      default=lambda item: f"<{item.preview()}>" if isinstance(item, json_arrays.NumericArrayText)
                      else str(item))


def json_type(value) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, json_arrays.NumericArrayText):
        return "Array"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def is_list(value) -> bool:
    return isinstance(value, (list, json_arrays.NumericArrayText))


def _type_error(value, dtype: int) -> status.ServingError:
    return status.invalid_argument(f"JSON Value: {json_text(value)} Type: {json_type(value)} "
                                   f"is not of expected type: {dtype_name(dtype)}")


def _lossy_error(value, target: str) -> status.ServingError:
    return status.invalid_argument(f"Cannot convert JSON value: {json_text(value)} to {target} "
                                   "without loss of precision.")


def is_base64_object(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_BASE64_KEY), str)


def decode_base64_object(value) -> bytes:
    if not is_base64_object(value):
        raise status.invalid_argument(f"JSON Value: {json_text(value)} not formatted correctly for base64 data")
    text = value[_BASE64_KEY]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise status.invalid_argument("Unable to base64 decode") from None


def _is_number(value) -> bool:
    return type(value) in (int, float)


def _check_lossless(value, dtype: int) -> None:
    """Integers must fit the float's mantissa and finite decimals its range (NaN and Infinity pass); used for
    tf.Example float features and double tensors."""
    single = dtype == types_pb2.DT_FLOAT
    if type(value) is int:
        if abs(value) > (_FLOAT32_MAX_INTEGER if single else _FLOAT64_MAX_INTEGER):
            raise _lossy_error(value, "float" if single else "double")
    elif single and np.isfinite(value) and abs(value) > _FLOAT32_MAX:
        raise _lossy_error(value, "float")


def _leaf_converter(dtype: int) -> typing.Callable:
    """Returns a function checking and converting one JSON leaf value to a tensor element of `dtype`."""
    if dtype == types_pb2.DT_FLOAT:
        def convert_single(value):
            # As TF Serving: any number, rounded to float (FloatTensorWithPrecisionLoss), beyond its range
            # infinite (FloatTensorThatExceedsMaxReturnsInf).
            if not _is_number(value):
                raise _type_error(value, dtype)
            return float(value)
        return convert_single
    if dtype == types_pb2.DT_DOUBLE:
        def convert_double(value):
            if not _is_number(value):
                raise _type_error(value, dtype)
            _check_lossless(value, dtype)
            return float(value)
        return convert_double
    if dtype in _INTEGER_TYPES:
        information = np.iinfo(_INTEGER_TYPES[dtype])

        def convert_integer(value):
            if type(value) is not int or not information.min <= value <= information.max:
                raise _type_error(value, dtype)
            return value
        return convert_integer
    if dtype == types_pb2.DT_BOOL:
        def convert_bool(value):
            if type(value) is not bool:
                raise _type_error(value, dtype)
            return value
        return convert_bool
    if dtype == types_pb2.DT_STRING:
        def convert_string(value):
            if isinstance(value, dict):
                return decode_base64_object(value)
            if type(value) is not str:
                raise _type_error(value, dtype)
            return value.encode("utf-8", "surrogatepass")
        return convert_string

    def unsupported(value):
        raise status.unimplemented(f"Conversion of JSON Value: {json_text(value)} to type: {dtype_name(dtype)}")
    return unsupported


_FAST_TYPES = (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, *_INTEGER_TYPES)


def numpy_dtype(dtype: int):
    """The NumPy dtype holding a tensor of `dtype` (object for strings)."""
    if dtype == types_pb2.DT_STRING:
        return object
    if dtype == types_pb2.DT_FLOAT:
        return np.float32
    if dtype == types_pb2.DT_DOUBLE:
        return np.float64
    if dtype == types_pb2.DT_BOOL:
        return np.bool_
    return _INTEGER_TYPES.get(dtype, object)


def _dense_shape(value) -> list[int]:
    """The shape implied by following the first element of each nested list."""
    shape = []
    while is_list(value):
        if isinstance(value, json_arrays.NumericArrayText):
            return shape + list(value.shape or ())
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value, level: int, shape: list[int], convert: typing.Callable, elements: list) -> None:
    rank = len(shape)
    if isinstance(value, json_arrays.NumericArrayText):
        value = _small_array_json(value)
    if not isinstance(value, list):
        if level != rank:
            raise status.invalid_argument(f"JSON Value: {json_text(value)} found at incorrect level: {level + 1} "
                                          f"in the JSON DOM. Expected at level: {rank}")
        elements.append(convert(value))
        return
    if level >= rank:
        raise status.invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise status.invalid_argument(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                                      f"expected size: {shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, convert, elements)


def _small_array_json(array: json_arrays.NumericArrayText):
    """A numeric array the fast path refused, as Python lists for the exact error, if small enough."""
    if len(array) > SMALL_ARRAY_BYTES:
        raise status.invalid_argument(f"JSON Value: {array.preview()} is not a dense array of numbers of the "
                                      "input's type")
    return array.to_json(loads=lambda text: _loads(text, json_arrays.extract(b"")))


def tensor_from_json(value, dtype: int) -> np.ndarray:
    """Converts a JSON value (scalar or nested lists, strings possibly as `{"b64": ...}`) to an array."""
    if isinstance(value, json_arrays.NumericArrayText):
        array = value.to_array(numpy_dtype(dtype)) if dtype in _FAST_TYPES else None
        if array is not None:
            return array
        value = _small_array_json(value)
    shape = _dense_shape(value)
    if len(shape) > MAX_RANK:
        raise status.invalid_argument(f"JSON Value: lists nested {len(shape)} deep; tensors of rank above "
                                      f"{MAX_RANK} are not supported")
    elements = []
    _fill(value, 0, shape, _leaf_converter(dtype), elements)
    array = np.empty(len(elements), dtype=numpy_dtype(dtype))
    with np.errstate(over="ignore"):  # a double beyond float's range is infinite, as in TF Serving
        array[:] = elements
    return array.reshape(shape)


def _status_text(error: status.ServingError) -> str:
    return f"{error.code}: {error.message}"


def _shape_text(shape: tuple) -> str:
    return "[" + ",".join(str(size) for size in shape) + "]"


def _instances_to_tensors(instances: list, input_dtypes: dict[str, int]) -> dict[str, np.ndarray]:
    """Row format: every instance is a value (single input) or an object with every input's value."""
    if isinstance(instances, json_arrays.NumericArrayText):
        if len(input_dtypes) > 1:
            raise status.invalid_argument("instances is a plain list, but expecting list of objects as multiple "
                                          "input tensors required as per tensorinfo_map")
        (name, dtype), = input_dtypes.items()
        if instances.shape and dtype in _FAST_TYPES:
            array = instances.to_array(numpy_dtype(dtype))
            if array is not None:  # a dense array: every instance has the same shape
                return {name: array}
        instances = _small_array_json(instances)
    is_object = lambda item: isinstance(item, dict) and not is_base64_object(item)  # noqa: E731
    if not is_object(instances[0]) and len(input_dtypes) > 1:
        raise status.invalid_argument("instances is a plain list, but expecting list of objects as multiple "
                                      "input tensors required as per tensorinfo_map")
    objects = is_object(instances[0])
    names = sorted(input_dtypes)
    columns = {name: [] for name in names}
    shapes = {}
    for index, instance in enumerate(instances):
        if objects != is_object(instance):
            found, expected = ("list", "object") if objects else ("object", "value/list")
            raise status.invalid_argument(f"Expecting {expected} but got {found} at item {index} of input list")
        items = instance.items() if objects else [(names[0], instance)]
        for name, value in items:
            try:
                if name not in input_dtypes:
                    raise status.invalid_argument(f"JSON object: does not have named input: {name}")
                tensor = tensor_from_json(value, input_dtypes[name])
                if name in shapes and shapes[name] != tensor.shape:
                    if int(np.prod(shapes[name])) != tensor.size:
                        raise status.invalid_argument(f"Expecting tensor size: {int(np.prod(shapes[name]))} "
                                                      f"but got: {tensor.size}")
                    raise status.invalid_argument(f"Expecting shape {_shape_text(shapes[name])} "
                                                  f"but got: {_shape_text(tensor.shape)}")
            except status.ServingError as error:
                key = f" key: {name}" if objects else ""
                raise status.invalid_argument(f"Failed to process element: {index}{key} of 'instances' list. "
                                              f"Error: {_status_text(error)}") from None
            shapes[name] = tensor.shape
            columns[name].append(tensor)
        if objects and set(instance) != set(names):
            raise status.invalid_argument(f"Failed to process element: {index} of 'instances' list. JSON object: "
                                          f"{json_text(instance)} must only have keys: {','.join(names)}")
    return {name: np.stack(values) for name, values in columns.items()}


def _inputs_to_tensors(inputs, input_dtypes: dict[str, int]) -> dict[str, np.ndarray]:
    """Columnar format: one value (single input) or an object naming every input."""
    if not isinstance(inputs, dict) or is_base64_object(inputs):
        if len(input_dtypes) > 1:
            raise status.invalid_argument("inputs is a plain value/list, but expecting an object as multiple "
                                          "input tensors required as per tensorinfo_map")
        (name, dtype), = input_dtypes.items()
        return {name: tensor_from_json(inputs, dtype)}
    tensors = {}
    for name in sorted(input_dtypes):
        if name not in inputs:
            raise status.invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = tensor_from_json(inputs[name], input_dtypes[name])
    return tensors


class _NumberTooBig(ValueError):
    pass


def _parse_integer(text: str):
    """As rapidjson: integers beyond 64 bits become doubles, and beyond a double's range fail."""
    value = int(text) if len(text) <= 20 else None
    if value is None or not -(1 << 63) <= value < (1 << 64):
        value = float(text)
        if math.isinf(value):
            raise _NumberTooBig(text)
    return value


def _parse_decimal(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NumberTooBig(text)
    return value


def _check_surrogates(text: bytes) -> None:
    """TF Serving's parser refuses a \\u escape of half a surrogate pair, which json.loads would accept."""
    if b"\\ud" not in text and b"\\uD" not in text:
        return
    expected_low_at = None
    for match in _SURROGATE_ESCAPE.finditer(text):
        if len(match.group(1)) % 2 == 0:
            continue  # escaped backslashes, then plain text
        escape_start = match.start(1) + len(match.group(1)) - 1
        is_high = match.group(2)[1:2].lower() in b"89ab"
        if expected_low_at is not None:
            if is_high or escape_start != expected_low_at:
                break
            expected_low_at = None
        elif is_high:
            expected_low_at = match.end()
        else:
            break
    else:
        if expected_low_at is None:
            return
    raise status.invalid_argument("JSON Parse error: The surrogate pair in string is invalid.")


# json.loads's messages in the words of rapidjson, which TF Serving uses (GetParseError_En).
_PARSE_ERRORS = (
    ("Expecting value", "Invalid value."),
    ("Expecting property name", "Missing a name for object member."),
    ("Expecting ':'", "Missing a colon after a name of object member."),
    ("Extra data", "The document root must not be followed by other values."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid control character", "Invalid encoding in string."),
    ("Invalid \\uXXXX", "Incorrect hex digit after \\u escape in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
)


def _parse_error_text(error: json.JSONDecodeError, text: bytes) -> str:
    for start, words in _PARSE_ERRORS:
        if error.msg.startswith(start):
            return words
    if error.msg.startswith(("Expecting ',' delimiter", "Illegal trailing comma")):
        # Inside an object or an array? The innermost bracket still open before the error says.
        window = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", bytes(text[max(0, error.pos - 65536):error.pos]))
        depth_object = depth_array = 0
        for character in reversed(window):
            if character in b"}]":
                depth_object += character == ord("}")
                depth_array += character == ord("]")
            elif character == ord("{"):
                if not depth_object:
                    return "Missing a comma or '}' after an object member."
                depth_object -= 1
            elif character == ord("["):
                if not depth_array:
                    return "Missing a comma or ']' after an array element."
                depth_array -= 1
    return error.msg + "."


def _has_long_number(text: bytes) -> bool:
    """Whether the text holds 20 digits in a row or an exponent of 3 digits (which json.loads alone would
    turn into a huge integer or an infinity), anywhere, strings included."""
    shapes = text.translate(_NUMBER_SHAPES)
    return b"0" * 20 in shapes or b"e000" in shapes or b"e+000" in shapes


def _loads(text: bytes, extracted: json_arrays.Extracted):
    """json.loads with TF Serving's number rules and rapidjson's error messages (offsets in the body)."""
    hooks = {"parse_int": _parse_integer, "parse_float": _parse_decimal} if _has_long_number(text) else {}
    try:
        return json.loads(text, **hooks)
    except json.JSONDecodeError as error:
        raise status.invalid_argument(f"JSON Parse error: {_parse_error_text(error, text)} at offset: "
                                      f"{extracted.body_offset(error.pos)}") from None
    except _NumberTooBig:
        raise status.invalid_argument("JSON Parse error: Number too big to be stored in double.") from None
    except RecursionError:
        raise status.invalid_argument("JSON Parse error: arrays or objects nested too deeply") from None
    except ValueError as error:  # invalid UTF-8
        raise status.invalid_argument(f"JSON Parse error: {error}") from None


def parse_request(body: bytes, max_elements: int = DEFAULT_MAX_ELEMENTS,
                  reserve: typing.Optional[typing.Callable[[int], None]] = None) -> dict:
    """Parses a request body that must be a JSON object (NaN and Infinity allowed, as in TF Serving).

    Long arrays of numbers are not parsed here: they stay as `json_arrays.NumericArrayText`, which the
    tensor conversion reads straight into NumPy.

    Args:
        body: The request body.
        max_elements: Most tensor elements (or JSON values) the request may hold.
        reserve: Called with the memory the request will take while it is converted (may raise).

    Raises:
        ServingError: INVALID_ARGUMENT for a body that is not a JSON object; RESOURCE_EXHAUSTED (HTTP 413)
            for one with more than `max_elements` values.
    """
    if not body:
        raise status.invalid_argument("JSON Parse error: The document is empty")
    extracted = json_arrays.extract(body)
    text = extracted.text
    values = text.count(b",") + text.count(b"[") + text.count(b"{") + 1
    elements = sum(array.size or len(array) // 2 for array in extracted.arrays.values())
    if values + elements > max_elements:
        raise status.ServingError("RESOURCE_EXHAUSTED", f"Request holds up to {values + elements} values, more "
                                  f"than the limit of {max_elements} (--max_request_elements)", http_status=413)
    if reserve is not None:
        reserve(len(body) + BYTES_PER_JSON_VALUE * values + BYTES_PER_ARRAY_ELEMENT * elements)
    _check_surrogates(text)
    document = _loads(text, extracted)
    if not isinstance(document, dict):
        raise status.invalid_argument(f"JSON Value: {json_text(document)} Is not object")
    return json_arrays.restore(document, extracted.arrays)


def signature_name(document: dict) -> str:
    """The request's optional `signature_name` ("" when absent)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise status.invalid_argument(f"JSON Value: {json_text(document)} not formatted correctly. "
                                      "'signature_name' key must be a string value.")
    return name


def predict_inputs(document: dict, input_dtypes: dict[str, int]) -> tuple[dict[str, np.ndarray], str]:
    """Returns the input arrays and the format ("row" or "columnar") of a parsed predict request."""
    if "instances" in document:
        if "inputs" in document:
            raise status.invalid_argument(f"JSON Value: {json_text(document)} Not formatted correctly expecting "
                                          "only one of 'inputs' or 'instances' keys to exist ")
        instances = document["instances"]
        if not is_list(instances):
            raise status.invalid_argument(f"JSON Value: {json_text(document)} Excepting 'instances' to be an "
                                          "list/array")
        if not instances:
            raise status.invalid_argument(f"JSON Value: {json_text(document)} No values in 'instances' array")
        return _instances_to_tensors(instances, input_dtypes), "row"
    if "inputs" in document:
        return _inputs_to_tensors(document["inputs"], input_dtypes), "columnar"
    raise status.invalid_argument("Missing 'inputs' or 'instances' key")


# === tf.Example JSON (classify and regress) ===

def _kind_error(name: str, kind: str) -> status.ServingError:
    return status.invalid_argument(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _add_feature_value(value, name: str, feature: feature_pb2.Feature) -> None:
    kind = feature.WhichOneof("kind")
    kind_name = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}.get(kind)

    def require(expected: str) -> None:
        if kind not in (None, expected):
            raise _kind_error(name, kind_name)

    if value is None or is_list(value) or (isinstance(value, dict) and not is_base64_object(value)):
        raise status.invalid_argument(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
    if isinstance(value, bool):
        require("int64_list")
        feature.int64_list.value.append(int(value))
    elif isinstance(value, dict):
        require("bytes_list")
        feature.bytes_list.value.append(decode_base64_object(value))
    elif isinstance(value, str):
        require("bytes_list")
        feature.bytes_list.value.append(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, float) or value > np.iinfo(np.uint64).max:
        require("float_list")
        _check_lossless(float(value), types_pb2.DT_FLOAT)
        feature.float_list.value.append(float(value))
    else:
        require("int64_list")
        if value > np.iinfo(np.int64).max:
            raise status.invalid_argument(f"Feature: {name} has uint64 element. Only int64 is supported.")
        if value < np.iinfo(np.int64).min:
            raise _lossy_error(value, "int64")
        feature.int64_list.value.append(value)


def example_from_json(value) -> example_pb2.Example:
    """Builds a tf.Example from `{"feature": value or [values], ...}`."""
    if not isinstance(value, dict):
        raise status.invalid_argument(f"Example must be JSON object but got JSON {json_type(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        feature = feature_pb2.Feature()
        if isinstance(content, json_arrays.NumericArrayText):
            content = _small_array_json(content)
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)
    return example


def examples_from_json(document: dict, method: str) -> tuple[list[example_pb2.Example], typing.Optional[example_pb2.Example]]:
    """The `examples` list and optional `context` example of a classify or regress request."""
    context = example_from_json(document["context"]) if "context" in document else None
    if "examples" not in document:
        raise status.invalid_argument(f"JSON Value: {json_text(document)} When method is {method}, key 'examples' "
                                      "is expected and was not found")
    examples = document["examples"]
    if isinstance(examples, json_arrays.NumericArrayText):
        examples = _small_array_json(examples)
    if not isinstance(examples, list):
        raise status.invalid_argument(f"JSON Value: {json_text(document)} Expecting 'examples' value to be an "
                                      "list/array")
    if not examples:
        raise status.invalid_argument(f"JSON Value: {json_text(document)} 'examples' value is an empty array")
    return [example_from_json(example) for example in examples], context


# === Responses ===

def _element_values(array: np.ndarray, as_bytes: bool) -> list:
    flat = array.reshape(-1)
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        return [float(str(value)) for value in flat]  # shortest text that reads back as the same float32
    if array.dtype.kind in "OSU":
        if as_bytes:
            return [{_BASE64_KEY: base64.b64encode(_as_bytes(value)).decode("ascii")} for value in flat]
        return [_as_bytes(value).decode("utf-8", "replace") for value in flat]
    return flat.tolist()


def _as_bytes(value) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def json_value(array: np.ndarray, as_bytes: bool = False):
    """An array as nested JSON lists (a bare value for a scalar)."""
    values = _element_values(np.asarray(array), as_bytes)
    if np.ndim(array) == 0:
        return values[0]
    nested = np.empty(len(values), dtype=object)
    nested[:] = values
    return nested.reshape(np.shape(array)).tolist()


def is_bytes_output(name: str, array: np.ndarray) -> bool:
    return array.dtype.kind in "OS" and name.endswith(_BYTES_SUFFIX)


def predict_response(outputs: dict[str, np.ndarray], request_format: str) -> dict:
    """`{"predictions": [...]}` (row) or `{"outputs": ...}` (columnar), as TF Serving writes them."""
    if not outputs:
        raise status.invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if request_format == "columnar":
        values = {name: json_value(outputs[name], is_bytes_output(name, outputs[name])) for name in names}
        return {"outputs": values if len(names) > 1 else values[names[0]]}
    batch_size = 0
    for name in names:
        shape = np.shape(outputs[name])
        if not shape:
            raise status.invalid_argument(f"Tensor name: {name} has no shape information ")
        if shape[0] < 1:
            raise status.invalid_argument(f"Tensor name: {name} has invalid batch size: {shape[0]}")
        if batch_size and shape[0] != batch_size:
            raise status.invalid_argument(f"Tensor name: {name} has inconsistent batch size: {shape[0]} "
                                          f"expecting: {batch_size}")
        batch_size = shape[0]
    columns = {name: json_value(outputs[name], is_bytes_output(name, outputs[name])) for name in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{name: columns[name][row] for name in names} for row in range(batch_size)]}


def dumps(document) -> bytes:
    """Compact JSON with bare NaN/Infinity, UTF-8 encoded (escaped ASCII if it holds lone surrogates)."""
    try:
        return json.dumps(document, allow_nan=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, allow_nan=True, separators=(",", ":")).encode("ascii")
