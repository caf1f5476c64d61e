"""Raw inputs -> an export (or a run's latest export) -> JSON-ready rows; the CLI and notebooks call this.

Only the SavedModel is used, as TF Serving would use it: no task, no vocabulary files. TensorFlow is
imported when a model is loaded, so that a bad path fails before it starts.
"""

import dataclasses
import os
import re
import typing

from pipeline import config as config_lib
from pipeline import progress

BATCH_SIZE = 64


def resolve_export(path: str) -> str:
    """Finds the SavedModel for an export path, a model base path (latest version) or a run directory."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    if os.path.exists(os.path.join(path, "config.yaml")):
        config = config_lib.load_config([os.path.join(path, "config.yaml")])
        return resolve_export(os.path.join(config.export.dir, config.model_name))
    versions = [int(name) for name in os.listdir(path) if name.isdigit()] if os.path.isdir(path) else []
    if not versions:
        raise FileNotFoundError(f"{path}: no SavedModel, run directory or numbered export versions here; "
                                "export with `python -m pipeline export RUN_DIR`")
    return os.path.join(path, str(max(versions)))


def load_export(path: str, signature: str = "serving_default"):
    """The named signature of the SavedModel that `path` resolves to."""
    import tensorflow as tf
    from pipeline import graph_ops
    graph_ops.load_text_ops()  # exports that tokenize with SentencePiece run TF Text's ops
    loaded = tf.saved_model.load(resolve_export(path))
    if signature not in loaded.signatures:
        raise ValueError(f"signature {signature!r} not in the export; it has {sorted(loaded.signatures)}")
    return loaded.signatures[signature]


def string_input_name(function) -> str:
    """The name of a signature's string input (`text`, `image_bytes`, `prompt`, ...)."""
    import tensorflow as tf
    specs = function.structured_input_signature[1]
    return next(name for name, spec in specs.items() if spec.dtype == tf.string)


def takes_files(function) -> bool:
    """Whether the signature's inputs are files' bytes (an input named `<name>_bytes`, e.g. images)."""
    return string_input_name(function).endswith("_bytes")


def predict_rows(function, inputs: list, temperature: float = 1.0,
                 labels: typing.Optional[list[str]] = None,
                 batch_size: int = BATCH_SIZE) -> typing.Iterator[dict]:
    """Runs a signature with one string input (and optionally `temperature`) in batches, yielding rows.

    Args:
        function: A loaded signature.
        inputs: Texts, or bytes (e.g. encoded images).
        temperature: For signatures with a `temperature` input.
        labels: How each input is shown in its row (default: the text itself, or its size for bytes).
            An input named `<name>_bytes` is shown under `<name>` (e.g. `image`).
        batch_size: Inputs per signature call.

    Yields:
        One JSON-ready dict per input: the input under its name, then every output; per-token outputs
        are cut to the row's `length` when the signature returns one.
    """
    import tensorflow as tf
    specs = function.structured_input_signature[1]
    input_name = string_input_name(function)
    shown_as = input_name[:-len("_bytes")] if input_name.endswith("_bytes") else input_name
    if labels is None:
        labels = [item if isinstance(item, str) else f"<{len(item)} bytes>" for item in inputs]
    extra = {}
    if "temperature" in specs:
        extra["temperature"] = tf.constant(temperature, dtype=specs["temperature"].dtype)
    unknown = sorted(set(specs) - {input_name, *extra})
    if unknown:
        raise ValueError(f"the signature also needs inputs {unknown}, which predict cannot supply")
    starts = range(0, len(inputs), batch_size)
    for start in progress.bar(starts, "predicting", total=len(starts)) if len(starts) > 1 else starts:
        batch = inputs[start:start + batch_size]
        outputs = {key: value.numpy() for key, value in
                   function(**{input_name: tf.constant(batch, dtype=tf.string)}, **extra).items()}
        for row, label in enumerate(labels[start:start + batch_size]):
            result = {key: to_json_value(value[row]) for key, value in sorted(outputs.items())}
            if isinstance(result.get("length"), int):  # padded per-token outputs: keep the real tokens
                result = {key: value[:result["length"]] if isinstance(value, list) else value
                          for key, value in result.items()}
            yield {shown_as: label, **result}


def predict(path: str, inputs: typing.Iterable[str], signature: str = "serving_default",
            temperature: float = 1.0, batch_size: int = BATCH_SIZE) -> typing.Iterator[dict]:
    """Rows for raw inputs: texts, or file paths for exports that take files' bytes (images).

    Inputs are read and answered `batch_size` at a time (files are read as their batch comes up). An input
    that cannot be used gives the row `{"input": ..., "error": ...}` in its place; the others are answered.
    """
    function = load_export(path, signature)  # here, so that a bad path fails before any input is read
    return answer(function, batched(argument_inputs(inputs), batch_size), temperature)


def predict_lines(path: str, stream: typing.BinaryIO, signature: str = "serving_default",
                  temperature: float = 1.0, batch_size: int = BATCH_SIZE) -> typing.Iterator[dict]:
    """Rows for the lines of a binary stream (stdin), each answered as soon as it and its batch have arrived.

    Lines are texts, or file paths for exports that take files' bytes; see `line_batches` and `answer`.
    """
    function = load_export(path, signature)
    return answer(function, line_batches(stream, batch_size), temperature)


@dataclasses.dataclass(frozen=True)
class RawInput:
    """One input as given: shown in its row as it was given, with why it cannot be used, if so.

    Attributes:
        given: The text, or the file path, as the user gave it.
        error: Why the input cannot be used before the model sees it (invalid UTF-8), or None.
    """

    given: str
    error: typing.Optional[str] = None


def argument_inputs(inputs: typing.Iterable[str]) -> typing.Iterator[RawInput]:
    """Inputs given as strings (command-line arguments: undecodable bytes arrive as surrogate escapes)."""
    for number, text in enumerate(inputs, start=1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            yield RawInput(text.encode("utf-8", "replace").decode("utf-8"),
                           f"input {number}: invalid UTF-8 at character {error.start + 1}")
        else:
            yield RawInput(text)


def batched(inputs: typing.Iterable[RawInput], batch_size: int) -> typing.Iterator[list[RawInput]]:
    """Groups inputs into lists of `batch_size` (the last may be shorter)."""
    batch = []
    for item in inputs:
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def line_batches(stream: typing.BinaryIO, batch_size: int = BATCH_SIZE,
                 chunk_size: int = 1 << 16) -> typing.Iterator[list[RawInput]]:
    """Lines of a buffered binary stream (`sys.stdin.buffer`, `io.BytesIO`) as inputs, in batches of what
    has arrived, at most `batch_size` each.

    A batch is handed on as soon as no further complete line is waiting, so that a person typing lines
    gets each answer at once, while piped input fills whole batches. A line that is not UTF-8 becomes an
    input carrying the error `stdin line N: invalid UTF-8 ...`. Line endings (LF or CRLF) are removed.
    """
    pending, batch, number = b"", [], 0
    while True:
        while b"\n" in pending and len(batch) < batch_size:
            line, pending = pending.split(b"\n", 1)
            number += 1
            batch.append(_line_input(line, number))
        if batch and (len(batch) == batch_size or b"\n" not in pending):
            yield batch
            batch = []
            continue
        chunk = stream.read1(chunk_size)  # what has arrived, waiting only when nothing has
        if not chunk:
            break
        pending += chunk
    if pending:
        yield [_line_input(pending, number + 1)]


def _line_input(line: bytes, number: int) -> RawInput:
    line = line.removesuffix(b"\r")
    try:
        return RawInput(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        return RawInput(line.decode("utf-8", "replace"),
                        f"stdin line {number}: invalid UTF-8 (byte 0x{line[error.start]:02x} at byte "
                        f"{error.start + 1} of the line)")


def answer(function, batches: typing.Iterable[list[RawInput]], temperature: float = 1.0) -> typing.Iterator[dict]:
    """Runs a loaded signature over batches of inputs, yielding one row per input in order.

    For an export that takes files' bytes, each input is a file path, read when its batch comes up. An
    input that cannot be used (invalid UTF-8, a missing, empty or unreadable file, bytes the model rejects,
    such as a file that is not an image) gives `{"input": given, "error": reason}`; the rest of its batch is
    answered. When the model rejects a batch, its inputs are run one at a time to find the culprits.
    """
    reads_files = takes_files(function)
    for batch in batches:
        prepared = [_prepare(item, reads_files) for item in batch]  # (value, error) per input
        usable = [index for index, (_, error) in enumerate(prepared) if error is None]
        rows = dict(zip(usable, _answer_usable(function, [batch[index].given for index in usable],
                                               [prepared[index][0] for index in usable], temperature,
                                               reads_files)))
        for index, item in enumerate(batch):
            yield rows[index] if index in rows else {"input": item.given, "error": prepared[index][1]}


def _prepare(item: RawInput, reads_files: bool) -> tuple[typing.Any, typing.Optional[str]]:
    """(the value the signature gets, None), or (None, why the input cannot be used)."""
    if item.error is not None:
        return None, item.error
    if not reads_files:
        return item.given, None
    if not item.given:
        return None, "empty file name"
    try:
        content = read_input_file(item.given)
    except FileNotFoundError as error:
        return None, str(error)
    if not content:
        return None, f"{item.given}: the file is empty"
    return content, None


def _answer_usable(function, labels: list[str], values: list, temperature: float,
                   reads_files: bool) -> list[dict]:
    """Rows for inputs that passed the checks; an input the model rejects gets an error row."""
    import tensorflow as tf
    if not values:
        return []
    try:
        return list(predict_rows(function, values, temperature, labels, batch_size=len(values)))
    except tf.errors.InvalidArgumentError as error:
        if len(values) == 1:
            what = "the model cannot read this file" if reads_files else "the model rejected this input"
            return [{"input": labels[0], "error": f"{labels[0]}: {what}: {_op_error_reason(error)}"}]
    return [row for index in range(len(values))
            for row in _answer_usable(function, labels[index:index + 1], values[index:index + 1], temperature,
                                      reads_files)]


def _op_error_reason(error) -> str:
    """What a TensorFlow op error says is wrong: its last line before the `[[{{node ...}}]]` decoration."""
    message = str(error.message).split("\t [[", 1)[0]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return re.sub(r"\s*\[Op:.*", "", lines[-1]) if lines else type(error).__name__


def read_input_file(path: str) -> bytes:
    """The bytes of an input file, or a FileNotFoundError naming it."""
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as error:
        raise FileNotFoundError(f"{path}: cannot read this input file ({error.strerror})") from None


def to_json_value(value):
    """A NumPy value (scalar or array; bytes decoded as UTF-8, floats rounded to 6 digits) -> plain JSON."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):
        listed = value.tolist()
        if isinstance(listed, list):
            return [to_json_value(item) for item in listed]
        return to_json_value(listed)
    if isinstance(value, float):
        return round(value, 6)
    return value
