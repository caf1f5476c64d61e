"""One loaded SavedModel version: its SignatureDefs and a thread-safe way to run them.

TF2 SavedModels (with an object graph) run through `tf.saved_model.load(...).signatures`. TF1 SavedModels,
such as TF Serving's own test models whose tf.Example-parsing signatures `tf.saved_model.load` cannot
restore, run in a graph session of their own, which is how TF Serving runs every model.
"""

import os
import re
import threading

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.core.protobuf import saved_model_pb2

from serving import status

try:  # TF Text's ops (its SentencePiece tokenizer) are linked into tensorflow_model_server: register them too.
    import tensorflow_text  # noqa: F401
except ImportError:
    tensorflow_text = None

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_UNREGISTERED_OP = re.compile(r"Op type not registered '([^']+)'")


def read_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef tagged `serve` of the SavedModel in `path` (saved_model.pb or saved_model.pbtxt)."""
    saved_model = saved_model_pb2.SavedModel()
    binary_path = os.path.join(path, "saved_model.pb")
    if os.path.exists(binary_path):
        with open(binary_path, "rb") as stream:
            saved_model.ParseFromString(stream.read())
    else:
        with open(os.path.join(path, "saved_model.pbtxt"), encoding="utf-8") as stream:
            text_format.Parse(stream.read(), saved_model)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == {SERVE_TAG}:
            return meta_graph
    tag_sets = [sorted(meta_graph.meta_info_def.tags) for meta_graph in saved_model.meta_graphs]
    raise ValueError(f"{path}: no MetaGraph with the tag set ['serve'] (found {tag_sets})")


def error_from_tensorflow(error: Exception) -> status.ServingError:
    """Maps an exception raised while running a model to a ServingError with the matching status code."""
    if isinstance(error, tf.errors.OpError):
        return status.ServingError(_CODE_NAMES.get(error.error_code, "UNKNOWN"), error.message)
    # Inputs the function or session refuses before running (shape or dtype mismatch).
    return status.invalid_argument(str(error).strip().splitlines()[0] if str(error).strip() else repr(error))


def missing_op_message(path: str, op: str) -> str:
    """Why a SavedModel cannot load: the op it needs that this process has not registered."""
    message = f"{path}: the SavedModel uses the op {op!r}, which is not registered in this server"
    if tensorflow_text is None:
        return (f"{message}; it is not a core TensorFlow op: if it is TF Text's (e.g. SentencepieceOp, "
                "SentencepieceTokenizeOp, SentencepieceDetokenizeOp), install TF Text beside TensorFlow: "
                "pip install 'tensorflow-text==2.21.*'")
    return f"{message}: neither core TensorFlow nor TF Text defines it (TF Serving would refuse it too)"


class Servable:
    """A SavedModel version loaded for serving.

    Attributes:
        name: Model name.
        version: Integer version.
        path: The version's directory.
        signature_defs: Signature name -> SignatureDef, as stored in the SavedModel.
    """

    def __init__(self, name: str, version: int, path: str):
        self.name = name
        self.version = version
        self.path = path
        meta_graph = read_meta_graph(path)
        self.signature_defs = dict(meta_graph.signature_def)
        try:
            self._runner = _FunctionRunner(path) if meta_graph.object_graph_def.nodes else _SessionRunner(path)
        except Exception as error:
            missing = _UNREGISTERED_OP.search(str(error))
            if missing is None:
                raise
            raise RuntimeError(missing_op_message(path, missing.group(1))) from error

    @property
    def is_tf1(self) -> bool:
        return isinstance(self._runner, _SessionRunner)

    def run(self, signature_name: str, inputs: dict[str, np.ndarray], output_names: list[str]) -> dict[str, np.ndarray]:
        """Runs a signature on NumPy inputs (keyed like its SignatureDef) and returns the named outputs.

        Raises:
            ServingError: The model refused the inputs or failed while running.
        """
        try:
            return self._runner.run(self.signature_defs[signature_name], signature_name, inputs, output_names)
        except status.ServingError:
            raise
        except (tf.errors.OpError, TypeError, ValueError) as error:
            raise error_from_tensorflow(error) from None


class _FunctionRunner:
    """TF2: the restored signature functions, called eagerly."""

    def __init__(self, path: str):
        self._loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        self._functions = dict(self._loaded.signatures)

    def run(self, signature_def, signature_name: str, inputs: dict, output_names: list[str]) -> dict:
        function = self._functions[signature_name]
        arguments = {name: tf.convert_to_tensor(value, dtype=tf.dtypes.as_dtype(signature_def.inputs[name].dtype))
                     for name, value in inputs.items()}
        outputs = function(**arguments)
        return {name: outputs[name].numpy() for name in output_names}


class _SessionRunner:
    """TF1: the MetaGraph imported into a graph of its own, run by a session (thread-safe)."""

    def __init__(self, path: str):
        graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            tf.compat.v1.saved_model.loader.load(self._session, [SERVE_TAG], path)
        self._callables = {}
        self._lock = threading.Lock()

    def run(self, signature_def, signature_name: str, inputs: dict, output_names: list[str]) -> dict:
        input_names = sorted(inputs)
        key = (signature_name, tuple(input_names), tuple(output_names))
        function = self._callables.get(key)
        if function is None:
            # A C++ callable feeds tensors as TF Serving's session does, without `Session.run`'s Python check
            # of the fed shape against the placeholder's (half_plus_three takes [batch] for [batch, 1]).
            options = config_pb2.CallableOptions(
                feed=[signature_def.inputs[name].name for name in input_names],
                fetch=[signature_def.outputs[name].name for name in output_names])
            with self._lock:
                function = self._session._make_callable_from_options(options)  # pylint: disable=protected-access
                self._callables[key] = function
        values = function(*(inputs[name] for name in input_names))
        return {name: np.asarray(value) for name, value in zip(output_names, values)}

    def __del__(self):
        session = getattr(self, "_session", None)
        if session is not None:
            session.close()
