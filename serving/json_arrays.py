"""Large JSON arrays of numbers parsed straight into NumPy arrays, with no Python object per number.

`json.loads` builds a Python float (24 bytes) and a list slot (8 bytes) for every number, then the tensor
conversion copies them again: a 48 MB request of floats took gigabytes. Instead, before the document is
parsed, every long array made only of numbers, commas, whitespace and brackets is cut out of the text and
replaced by a placeholder string; the rest (small) goes through `json.loads`, and each cut-out array is
parsed later, chunk by chunk, by NumPy into an array of the signature's dtype.

The cut-out text is checked as strictly as a JSON parser would: one balanced, dense (rectangular) array,
every number in JSON's grammar (NaN and Infinity allowed, as TF Serving allows them). Anything else makes
`NumericArrayText.to_array` return None, and the caller falls back to the ordinary JSON path.
"""

import json
import math
import re
import secrets
import typing
import warnings

import numpy as np

MIN_ARRAY_BYTES = 1024  # shorter arrays cost little through json.loads
MAX_RANK = 32
CHUNK_BYTES = 1 << 18  # parse this much at a time: bounded temporaries, and the GIL is released between chunks

# An array candidate: '[' ... ']' over the characters numbers, commas, whitespace and brackets use.
_CANDIDATE = re.compile(rb"\[[-+.,0-9eENaInfity\[\]\s]{%d,}\]" % (MIN_ARRAY_BYTES - 2))
_NUMBER = rb"(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|-?Infinity)"
_NUMBER_LIST = re.compile(rb"\s*" + _NUMBER + rb"\s*(?:,\s*" + _NUMBER + rb"\s*)*")
_NOT_SKELETON = b"0123456789.eE+-NaInfity \t\n\r"
_BRACKETS_TO_SPACES = bytes.maketrans(b"[]", b"  ")
_WHITESPACE = b" \t\n\r"

_DIGIT = np.zeros(256, bool)
_DIGIT[list(b"0123456789")] = True
_BOUNDARY = np.zeros(256, bool)  # what may stand right before a number's first character
_BOUNDARY[list(b", \t\n\r")] = True
_EXPONENT = np.zeros(256, bool)
_EXPONENT[list(b"eE")] = True


class NumericArrayText:
    """The text of one JSON array made of numbers (possibly nested), cut out of a request body.

    Args:
        source: The request body.
        start: Where the array's '[' is.
        end: Just after its matching ']'.
    """

    def __init__(self, source: bytes, start: int, end: int):
        self._source = source
        self._start = start
        self._end = end
        self._shape: typing.Optional[tuple] = None
        self._shape_known = False

    def __len__(self) -> int:
        return self._end - self._start

    def preview(self, characters: int = 60) -> str:
        """The start of the text, for error messages (the whole array can be tens of megabytes)."""
        head = self._source[self._start:min(self._end, self._start + characters)].decode("ascii", "replace")
        return head if len(self) <= characters else f"{head}... ({len(self)} bytes)"

    @property
    def shape(self) -> typing.Optional[tuple]:
        """The dense shape, or None when the brackets do not describe one rectangular array."""
        if not self._shape_known:
            self._shape = dense_shape(b"".join(
                self._source[start:min(start + CHUNK_BYTES, self._end)].translate(None, _NOT_SKELETON)
                for start in range(self._start, self._end, CHUNK_BYTES)))
            self._shape_known = True
        return self._shape

    @property
    def size(self) -> int:
        """Number of elements (0 when not dense)."""
        return math.prod(self.shape) if self.shape else 0

    def to_array(self, numpy_dtype) -> typing.Optional[np.ndarray]:
        """The array as `numpy_dtype` (a float or integer type), or None if it is not exactly a dense array of
        valid JSON numbers representable in that type (the caller then uses the ordinary JSON path)."""
        shape = self.shape
        numpy_dtype = np.dtype(numpy_dtype)
        if not shape or numpy_dtype.kind not in "fiu":
            return None
        output = np.empty(math.prod(shape), numpy_dtype)
        position = 0
        for chunk in _chunks(self._source, self._start, self._end):
            values = _parse_chunk(chunk, numpy_dtype)
            if values is None or position + values.size > output.size:
                return None
            output[position:position + values.size] = values
            position += values.size
        if position != output.size:
            return None
        return output.reshape(shape)

    def to_json(self, loads: typing.Callable = json.loads):
        """The array as Python lists (the ordinary JSON path; only for arrays the caller knows are small)."""
        return loads(bytes(self._source[self._start:self._end]))


def dense_shape(skeleton: bytes) -> typing.Optional[tuple]:
    """The shape of a rectangular nested array from its skeleton (its text with only '[', ']' and ','),
    or None when the skeleton is not exactly that of one dense, non-empty array."""
    rank = len(skeleton) - len(skeleton.lstrip(b"["))
    if rank == 0 or rank > MAX_RANK or not skeleton.endswith(b"]" * rank):
        return None
    shape = []
    for depth in range(1, rank + 1):
        # The first list at this depth ends at the first run of (rank - depth + 1) closing brackets.
        closing = b"]" * (rank - depth + 1)
        end = skeleton.find(closing)
        start = depth - 1
        inner = skeleton[start + 1:end]
        separator = b"]" * (rank - depth) + b","
        shape.append(inner.count(separator) + 1 if depth < rank else inner.count(b",") + 1)
    if math.prod(shape) > len(skeleton):
        return None  # not what these brackets can hold: a dense array's skeleton is longer than its size
    if skeleton != canonical_skeleton(shape):
        return None
    return tuple(shape)


def canonical_skeleton(shape: typing.Sequence[int]) -> bytes:
    """The skeleton of a dense array of `shape`: [[,],[,]] for (2, 2)."""
    text = b"[" + b"," * (shape[-1] - 1) + b"]"
    for size in reversed(shape[:-1]):
        text = b"[" + b",".join([text] * size) + b"]"
    return text


def _chunks(source: bytes, start: int, end: int) -> typing.Iterator[bytes]:
    """source[start:end] in pieces of about CHUNK_BYTES, each cut at a comma (dropped), brackets turned to
    spaces."""
    while start < end:
        stop = end
        if end - start > CHUNK_BYTES:
            cut = source.rfind(b",", start, start + CHUNK_BYTES)
            stop = cut if cut > start else source.find(b",", start + CHUNK_BYTES, end)
            stop = end if stop < 0 else stop
        yield bytes(source[start:stop]).translate(_BRACKETS_TO_SPACES)
        start = stop + 1


def _parse_chunk(chunk: bytes, numpy_dtype: np.dtype) -> typing.Optional[np.ndarray]:
    """The numbers of one comma-separated chunk, or None if one is not valid JSON or not of the dtype."""
    if not chunk.strip(_WHITESPACE) or not _valid_numbers(chunk):
        return None
    integral = numpy_dtype.kind in "iu"
    if integral and re.search(rb"[.eENI]|[0-9]{19}", chunk):
        return None  # a decimal, or an integer too long to parse exactly: the JSON path reports it
    expected = chunk.count(b",") + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(chunk, dtype=np.int64 if integral else numpy_dtype, sep=",")
        except (DeprecationWarning, ValueError):
            return None
    if values.size != expected:
        return None
    if integral:
        limits = np.iinfo(numpy_dtype)
        if values.size and (values.min() < limits.min or values.max() > limits.max):
            return None
        return values.astype(numpy_dtype, copy=False)
    if b"I" not in chunk and np.isinf(values).any():
        return None  # beyond float's range (TF Serving: infinite) or double's (a parse error): the JSON path says
    if numpy_dtype == np.float64 and not _double_is_exact(chunk, values):
        return None
    return values


def _double_is_exact(chunk: bytes, values: np.ndarray) -> bool:
    """TF Serving refuses integers beyond a double's mantissa; rare enough to leave to the JSON path."""
    return re.search(rb"(?<![0-9.eE])-?[0-9]{16}", chunk) is None


def _valid_numbers(chunk: bytes) -> bool:
    """Whether a comma-separated chunk holds only numbers in JSON's grammar, checked with array operations
    (no Python work per number); the rare chunks holding NaN or Infinity use a regular expression."""
    if any(letter in chunk for letter in (b"N", b"a", b"I", b"n", b"f", b"i", b"t", b"y")):
        return _NUMBER_LIST.fullmatch(chunk) is not None
    comma = ord(",")
    padded = np.concatenate(([comma, comma], np.frombuffer(chunk, np.uint8), [comma]))
    before_before, before, current, after = padded[:-3], padded[1:-2], padded[2:-1], padded[3:]
    digit_after = _DIGIT[after]
    if ((current == ord("-")) & ~((_BOUNDARY[before] | _EXPONENT[before]) & digit_after)).any():
        return False
    if ((current == ord("+")) & ~(_EXPONENT[before] & digit_after)).any():
        return False
    if ((current == ord(".")) & ~(_DIGIT[before] & digit_after)).any():
        return False
    sign_after_exponent = (after == ord("-")) | (after == ord("+"))
    if (_EXPONENT[current] & ~(_DIGIT[before] & (digit_after | sign_after_exponent))).any():
        return False
    number_start = _BOUNDARY[before] | ((before == ord("-")) & _BOUNDARY[before_before])
    if ((current == ord("0")) & number_start & digit_after).any():
        return False  # a leading zero, as in 01
    # Within a number, '-' leads, '.' comes once, then 'e' once: check each mark against the previous one.
    marks = np.concatenate(([comma, comma], current[~_DIGIT[current]]))
    previous_previous, previous, kinds = marks[:-2], marks[1:-1], marks[2:]
    after_start = _BOUNDARY[previous] | ((previous == ord("-")) & _BOUNDARY[previous_previous])
    if ((kinds == ord(".")) & ~after_start).any():
        return False
    return not (_EXPONENT[kinds] & ~(after_start | (previous == ord(".")))).any()


class Extracted(typing.NamedTuple):
    """A body with its long numeric arrays cut out.

    Attributes:
        text: The body, each array replaced by a placeholder string.
        arrays: Placeholder -> the array's text.
        shifts: (end of a placeholder in `text`, bytes removed up to there), to map offsets back to the body.
    """
    text: bytes
    arrays: dict
    shifts: list

    def body_offset(self, offset: int) -> int:
        """The offset in the original body of an offset in `text`."""
        shift = 0
        for end, removed in self.shifts:
            if end > offset:
                break
            shift = removed
        return offset + shift


def extract(body: bytes) -> Extracted:
    """Cuts the long numeric arrays out of a JSON body (arrays inside JSON strings are left alone)."""
    view = memoryview(body)  # slices of it are not copies
    pieces, arrays, shifts = [], {}, []
    prefix = "\u0000array:" + secrets.token_hex(8) + ":"
    position = scanned = length = 0
    inside_string = False
    for match in _CANDIDATE.finditer(body):
        start, end = match.span()
        inside_string ^= _unescaped_quotes(body, scanned, start) % 2 == 1
        scanned = end  # the candidate itself holds no quote
        if inside_string:
            continue
        key = f"{prefix}{len(arrays)}"
        placeholder = b'"\\u0000' + key[1:].encode("ascii") + b'"'
        pieces += [view[position:start], placeholder]
        length += start - position + len(placeholder)
        shifts.append((length, end - length))
        arrays[key] = NumericArrayText(body, start, end)
        position = end
    if not arrays:
        return Extracted(body, {}, [])
    pieces.append(view[position:])
    return Extracted(b"".join(pieces), arrays, shifts)


def _unescaped_quotes(body: bytes, start: int, end: int) -> int:
    """Number of '"' in body[start:end] not escaped by an odd run of backslashes."""
    total, backslashes, sign = 0, b"", 1
    while True:
        count = body.count(backslashes + b'"', start, end)
        if not count:
            return total
        total += sign * count
        sign = -sign
        backslashes += b"\\"


def restore(document, arrays: dict[str, NumericArrayText]):
    """Puts the NumericArrayText objects back where `extract` left placeholders (no recursion)."""
    if not arrays:
        return document
    if isinstance(document, str):
        return arrays.get(document, document)
    stack = [document]
    while stack:
        container = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in list(items):
            if isinstance(value, str):
                if value in arrays:
                    container[key] = arrays[value]
            elif isinstance(value, (dict, list)):
                stack.append(value)
    return document
