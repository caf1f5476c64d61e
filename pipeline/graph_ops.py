"""The ops a SavedModel runs, and whether `tensorflow_model_server` links every one of them in.

TF Serving runs core TensorFlow ops and TF Text's (its SentencePiece tokenizer among them), nothing else:
no Python callbacks, no other library's custom ops. `serving_op_problems` reads an export's graph (its
own nodes and every function body) and names each op outside those two sets.
"""

import functools
import glob
import importlib.util
import inspect
import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

# Python callbacks: core ops, but they call back into the Python process that traced them.
_PYTHON_CALLBACKS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})


def saved_model_ops(path: str) -> set[str]:
    """Every op type in the SavedModel at `path`: graph nodes and the nodes of every library function."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as stream:
        saved_model.ParseFromString(stream.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


@functools.cache
def core_ops() -> frozenset[str]:
    """Op names of core TensorFlow (`tf.raw_ops`), Python callbacks excluded."""
    return frozenset(name for name in dir(tf.raw_ops) if not name.startswith("_")) - _PYTHON_CALLBACKS


@functools.cache
def load_text_ops() -> frozenset[str]:
    """Loads TF Text's op libraries into this process (so that SavedModels using them load) and returns
    their op names; empty when `tensorflow-text` is not installed."""
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    names = set()
    for directory in spec.submodule_search_locations:
        for library_path in glob.glob(os.path.join(directory, "python", "**", "_*.so"), recursive=True):
            library = tf.load_op_library(library_path)
            # The op wrappers are CapWords functions named after their ops (`SentencepieceOp`).
            names.update(name for name, member in vars(library).items()
                         if name[:1].isupper() and inspect.isfunction(member))
    return frozenset(names)


def uses_text_ops(path: str) -> bool:
    """Whether the SavedModel at `path` needs TF Text loaded to run."""
    return bool(saved_model_ops(path) & load_text_ops())


def serving_op_problems(path: str) -> list[str]:
    """The ops of the SavedModel at `path` that TF Serving does not link in, each with why (sorted)."""
    allowed = core_ops() | load_text_ops()
    return sorted(f"{op} ({'a Python callback' if op in _PYTHON_CALLBACKS else 'not a core TensorFlow or TF Text op'})"
                  for op in saved_model_ops(path) if op not in allowed)
