"""Long numeric JSON arrays read straight into NumPy: the same values, and the same refusals, as json.loads."""

import json
import random
import re

import numpy as np
import pytest

from serving import json_arrays
from serving import json_tensor

JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def _array(text: bytes) -> json_arrays.NumericArrayText:
    return json_arrays.NumericArrayText(text, 0, len(text))


def test_number_check_agrees_with_json_grammar_on_random_tokens():
    rng = random.Random(7)
    for _ in range(20000):
        tokens = [bytes(rng.choice(b"0123456789.eE+-") for _ in range(rng.randint(1, 6)))
                  for _ in range(rng.randint(1, 5))]
        chunk = b", ".join(tokens)
        expected = all(JSON_NUMBER.fullmatch(token) for token in tokens)
        assert json_arrays._valid_numbers(chunk) == expected, chunk


@pytest.mark.parametrize("shape", [(3,), (2, 3), (4, 1, 2), (1, 1), (2, 2, 2, 2)])
def test_dense_arrays_parse_to_their_shape_and_values(shape):
    values = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) - 3.5
    text = json.dumps(values.tolist()).encode()

    np.testing.assert_array_equal(_array(text).to_array(np.float64), values)
    assert _array(text).to_array(np.float32).dtype == np.float32


@pytest.mark.parametrize("text", [b"[[1,2],[3]]", b"[[1,2],3]", b"[1,,2]", b"[[1],[2],]", b"[]", b"[[]]", b"[1 2]",
                                  b"[[1,2][3,4]]", b"[+1]", b"[.5]", b"[01]", b"[1.]", b"[1e]", b"[--1]", b"[1e5e3]",
                                  b"[1.2.3]", b"[1e5.3]", b"[-1e-5.2]", b"[1,2]]", b"[[1,2]", b"[nan]", b"[inf]"])
def test_anything_but_a_dense_array_of_json_numbers_is_refused(text):
    assert _array(text).to_array(np.float32) is None


def test_non_finite_words_and_every_number_form_are_read():
    text = b"[-0.5e-3, 1E+5, 0, -0, 12.25, NaN, -Infinity, Infinity]"

    values = _array(text).to_array(np.float64)

    np.testing.assert_array_equal(values[:5], [-0.5e-3, 1e5, 0, 0, 12.25])
    assert np.isnan(values[5]) and values[6] == -np.inf and values[7] == np.inf


def test_integers_are_refused_for_an_integer_type_they_do_not_fit():
    assert _array(b"[1, 2, 3]").to_array(np.int32).tolist() == [1, 2, 3]
    assert _array(b"[1, 2.5]").to_array(np.int32) is None
    assert _array(b"[1, 300]").to_array(np.uint8) is None
    assert _array(b"[99999999999999999999]").to_array(np.int64) is None


def test_arrays_longer_than_a_chunk_are_read_across_chunks(monkeypatch):
    monkeypatch.setattr(json_arrays, "CHUNK_BYTES", 64)
    values = np.linspace(-1, 1, 300).reshape(30, 10)
    text = json.dumps(values.tolist()).encode()

    np.testing.assert_allclose(_array(text).to_array(np.float64), values)


def test_extract_cuts_out_long_arrays_but_not_text_inside_strings():
    numbers = "[" + ", ".join(str(value) for value in range(400)) + "]"
    body = json.dumps({"quoted": 'a \\" ' + numbers, "instances": json.loads(numbers), "after": "x"}).encode()

    extracted = json_arrays.extract(body)
    document = json_arrays.restore(json.loads(extracted.text), extracted.arrays)

    assert len(extracted.arrays) == 1 and document["quoted"] == 'a \\" ' + numbers
    assert document["instances"].to_array(np.int64).tolist() == list(range(400))
    assert document["after"] == "x"
    assert extracted.body_offset(len(extracted.text)) == len(body)


def test_parse_request_reads_a_long_array_without_json_loads_and_converts_it():
    body = json.dumps({"instances": [[float(row), row + 0.5] for row in range(300)]}).encode()

    document = json_tensor.parse_request(body)
    tensors, request_format = json_tensor.predict_inputs(document, {"x": json_tensor.types_pb2.DT_FLOAT})

    assert isinstance(document["instances"], json_arrays.NumericArrayText) and request_format == "row"
    assert tensors["x"].shape == (300, 2) and tensors["x"][299, 1] == 299.5


def test_a_request_over_the_element_limit_is_refused_with_413():
    body = json.dumps({"instances": list(range(1000))}).encode()

    with pytest.raises(json_tensor.status.ServingError, match="max_request_elements") as raised:
        json_tensor.parse_request(body, max_elements=500)

    assert raised.value.http_status == 413


def test_parse_request_reports_the_memory_it_will_take():
    reserved = []
    body = json.dumps({"instances": [0.25] * 2000}).encode()

    json_tensor.parse_request(body, reserve=reserved.append)

    assert reserved and len(body) < reserved[0] < 4 * len(body) + 100000
