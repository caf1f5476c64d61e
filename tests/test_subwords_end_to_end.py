"""SentencePiece subwords end to end: a tiny translation run -> cased sacreBLEU -> export with TF Text ops -> the
export in a fresh process equals the in-process model -> predict; and a subword language model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import export
from pipeline import graph_ops
from pipeline import predict
from pipeline import run_files
from pipeline import tasks
from pipeline import training

pytestmark = pytest.mark.slow  # trains a tiny model end to end

TEXTS = ["twenty three of may nineteen eighty four", "", "one of january two thousand",
         "Unseen Wörds, here: 42 €!"]
SUBWORDS = ["data.tokenizer=sentencepiece", "data.lowercase=false", "data.sentencepiece.byte_fallback=false",
            "data.source_vocabulary_size=60", "data.target_vocabulary_size=24", "train.monitor=val_bleu",
            "train.epochs=4"]

# Loads an export with TensorFlow and TF Text alone, as TF Serving would, and runs every signature.
_LOAD_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
import tensorflow_text
loaded = tf.saved_model.load(sys.argv[1])
texts = tf.constant(json.loads(sys.argv[2]))
results = {}
for name in ("serving_default", "greedy", "beam"):
    outputs = loaded.signatures[name](text=texts)
    results[name] = {"translation": [item.decode() for item in outputs["translation"].numpy()],
                     "score": outputs["score"].numpy().tolist()}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def subword_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("subword_translation")
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/translation.yaml")],
                                    helpers.tiny_overrides(directory) + SUBWORDS)
    run_dir = training.train(config)
    return config, run_dir, export.export_run(run_dir)


def test_the_run_saves_sentencepiece_models_and_cased_sacrebleu(subword_run):
    _, run_dir, _ = subword_run
    for name in ("source.sentencepiece.model", "target.sentencepiece.model"):
        assert os.path.getsize(os.path.join(run_dir, "vocab", name)) > 0
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        test = json.load(stream)["test"]
    assert test["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert "case:lc" in test["bleu_lowercase_signature"] and "chrf_signature" in test
    assert test["bleu"] > 20  # the dates are learnt; chance is near 0
    with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
        assert "val_bleu" in stream.readline()


def test_the_export_uses_text_ops_and_equals_the_in_process_model(subword_run):
    config, run_dir, export_path = subword_run
    assert graph_ops.uses_text_ops(export_path) and graph_ops.serving_op_problems(export_path) == []
    process = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, export_path, json.dumps(TEXTS)],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert process.returncode == 0, process.stderr[-3000:]
    loaded = json.loads(process.stdout.strip().splitlines()[-1])

    task = tasks.create_task(config)
    preprocessing = task.load_preprocessing(run_dir)
    functions = task.serving_functions(run_files.load_trained_model(run_dir), preprocessing)
    for name in ("serving_default", "greedy", "beam"):
        outputs = functions[name](tf.constant(TEXTS))
        assert loaded[name]["translation"] == [text.decode() for text in outputs["translation"].numpy()], name
        np.testing.assert_allclose(loaded[name]["score"], outputs["score"].numpy(), rtol=1e-4, atol=1e-5)
    translations = loaded["serving_default"]["translation"]
    assert not any(token in text for text in translations for token in ("[UNK]", "<unk>", "\u2047", "[END]"))


def test_predict_loads_the_subword_export(subword_run):
    _, _, export_path = subword_run
    rows = list(predict.predict(export_path, TEXTS[:1]))

    assert rows[0]["text"] == TEXTS[0] and isinstance(rows[0]["translation"], str)


def test_a_subword_language_model_exports_and_continues_prompts(tmp_path):
    overrides = helpers.tiny_overrides(tmp_path) + [
        "data.level=sentencepiece", "data.vocabulary_size=60", "data.sentencepiece.byte_fallback=false",
        "train.epochs=2", "model.max_generate_length=12", "model.decoding=greedy"]
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/lm.yaml")], overrides)
    run_dir = training.train(config)
    path = export.export_run(run_dir)  # the self-check compares the reloaded export with the in-process model

    assert os.path.exists(os.path.join(run_dir, "vocab", "sentencepiece.model")) and graph_ops.uses_text_ops(path)
    rows = list(predict.predict(path, ["lena has", "tom\nhas"]))
    assert rows[0]["text"].startswith("lena has") and rows[1]["text"].startswith("tom\nhas")
    assert all("\u2047" not in row["text"] for row in rows)
