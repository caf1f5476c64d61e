"""Raw inputs -> an export (or a run's latest export) -> JSON-ready rows; the CLI and notebooks call this.

Only the SavedModel is used, as TF Serving would use it: no task, no vocabulary files. TensorFlow is
imported when a model is loaded, so that a bad path fails before it starts.
"""

import os
import typing

from pipeline import config as config_lib

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
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start:start + batch_size]
        outputs = {key: value.numpy() for key, value in
                   function(**{input_name: tf.constant(batch, dtype=tf.string)}, **extra).items()}
        for row, label in enumerate(labels[start:start + batch_size]):
            result = {key: to_json_value(value[row]) for key, value in sorted(outputs.items())}
            if isinstance(result.get("length"), int):  # padded per-token outputs: keep the real tokens
                result = {key: value[:result["length"]] if isinstance(value, list) else value
                          for key, value in result.items()}
            yield {shown_as: label, **result}


def predict(path: str, inputs: list[str], signature: str = "serving_default",
            temperature: float = 1.0) -> typing.Iterator[dict]:
    """Rows for raw inputs: texts, or file paths for exports that take files' bytes (images)."""
    function = load_export(path, signature)
    labels = None
    if takes_files(function):
        labels, inputs = inputs, [read_input_file(name) for name in inputs]
    return predict_rows(function, inputs, temperature, labels)


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
