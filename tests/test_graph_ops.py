"""The export op check: every op of a SavedModel is core TensorFlow or TF Text, or the export fails."""

import subprocess
import sys

import pytest
import tensorflow as tf

import helpers
from pipeline import export
from pipeline import graph_ops
from pipeline.data import subwords


def _save(directory, function, **tracked) -> str:
    module = tf.Module()
    for name, value in tracked.items():
        setattr(module, name, value)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": function})
    return str(directory)


@pytest.fixture(scope="module")
def sentencepiece_export(tmp_path_factory) -> str:
    tokenizer = subwords.tokenizer(subwords.train_model(["Ein Hund läuft.", "Zwei Katzen schlafen."] * 20,
                                                        vocabulary_size=30, byte_fallback=False))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def round_trip(text):
        return {"text": tokenizer.detokenize(tokenizer.tokenize(text))}

    return _save(tmp_path_factory.mktemp("sentencepiece"), round_trip, tokenizer=tokenizer)


def test_a_sentencepiece_export_uses_only_core_and_text_ops(sentencepiece_export):
    ops = graph_ops.saved_model_ops(sentencepiece_export)

    assert {"SentencepieceOp", "SentencepieceTokenizeOp", "SentencepieceDetokenizeOp"} <= ops
    assert graph_ops.uses_text_ops(sentencepiece_export)
    assert graph_ops.serving_op_problems(sentencepiece_export) == []
    export.check_serving_ops(sentencepiece_export)


def test_text_ops_are_not_core_ops():
    assert "SentencepieceTokenizeOp" in graph_ops.load_text_ops()
    assert "SentencepieceTokenizeOp" not in graph_ops.core_ops() and "StringSplitV2" in graph_ops.core_ops()


def test_a_python_callback_fails_the_export_check(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def shout(text):
        return {"text": tf.py_function(lambda values: tf.strings.upper(values), [text], tf.string)}

    path = _save(tmp_path, shout)

    assert graph_ops.serving_op_problems(path) == ["EagerPyFunc (a Python callback)"]
    with pytest.raises(export.ExportError, match="EagerPyFunc"):
        export.check_serving_ops(path)
    assert not graph_ops.uses_text_ops(path)


# A server process where TF Text cannot be imported (as on a machine without it) loads the export.
_LOAD_WITHOUT_TEXT = """
import sys
sys.modules["tensorflow_text"] = None  # `import tensorflow_text` now raises ImportError
from serving import servable
try:
    servable.Servable("model", 1, sys.argv[1])
except RuntimeError as error:
    print(error)
"""


@pytest.mark.slow  # a fresh TensorFlow process
def test_the_server_names_the_missing_text_op_when_tf_text_is_absent(sentencepiece_export):
    process = subprocess.run([sys.executable, "-c", _LOAD_WITHOUT_TEXT, sentencepiece_export], cwd=helpers.REPOSITORY,
                             capture_output=True, text=True, timeout=300)

    assert "uses the op 'Sentencepiece" in process.stdout, process.stderr[-2000:]
    assert "pip install 'tensorflow-text==2.21.*'" in process.stdout


def test_the_server_loads_and_runs_a_sentencepiece_export(sentencepiece_export):
    from serving import servable
    loaded = servable.Servable("model", 1, sentencepiece_export)
    outputs = loaded.run("serving_default", {"text": tf.constant(["Ein Hund läuft."]).numpy()}, ["text"])

    assert outputs["text"].tolist() == ["Ein Hund läuft.".encode()]
