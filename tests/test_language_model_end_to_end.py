"""Language model end to end: tiny config -> train -> perplexity -> export -> fresh-process generation;
resume, re-evaluation, the predict verb, and word-level generation."""

import collections
import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import export
from pipeline import run_files
from pipeline import tasks
from pipeline import training

pytestmark = pytest.mark.slow  # trains tiny models end to end

PROMPTS = ["tom has five apples . at the school ", "", "anna has", "unseen: ZQ"]

# Loads an export with TensorFlow alone, as TF Serving would, and runs every signature on the same prompts.
_LOAD_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
prompts = tf.constant(json.loads(sys.argv[2]))
results = {"signatures": sorted(loaded.signatures)}
for name in ("serving_default", "greedy", "beam", "sample"):
    arguments = {"prompt": prompts}
    if name == "sample":
        arguments["temperature"] = tf.constant(1e-4)
    outputs = loaded.signatures[name](**arguments)
    results[name] = {key: [item.decode() if isinstance(item, bytes) else float(item) for item in value.numpy()]
                     for key, value in outputs.items()}
print(json.dumps(results))
"""


def _load_config(directory, *overrides) -> config_lib.RunConfig:
    return config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/lm.yaml")],
                                  helpers.tiny_overrides(directory) + list(overrides))


@pytest.fixture(scope="module")
def tiny_lm_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_lm")
    config = _load_config(directory)
    run_dir = training.train(config)
    return config, run_dir, export.export_run(run_dir)


def _metrics(run_dir) -> dict:
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        return json.load(stream)


def _unigram_perplexity(train_text: str, test_text: str) -> float:
    counts = collections.Counter(train_text)
    total = sum(counts.values())
    return math.exp(-sum(math.log(counts[character] / total) for character in test_text) / len(test_text))


# === The tiny run ===


def test_tiny_model_learns_the_synthetic_corpus_far_beyond_chance(tiny_lm_run):
    config, run_dir, _ = tiny_lm_run
    test = _metrics(run_dir)["test"]
    splits = tasks.create_task(config).load_splits()
    unigram = _unigram_perplexity(splits.splits["train"].text, splits.splits["test"].text)

    assert test["level"] == "char" and test["carry_state"] is True and test["tokens"] > 10000
    assert test["uniform_perplexity"] >= 20 and unigram > 10  # what knowing nothing, or only frequencies, scores
    assert test["perplexity"] < 2.0, test  # far below both: the model uses the context
    assert test["bits_per_character"] == pytest.approx(math.log2(test["perplexity"]))
    with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
        history = list(csv.DictReader(stream))
    assert len(history) == config.train.epochs and {"val_perplexity", "val_loss", "perplexity"} <= set(history[0])
    assert float(history[-1]["val_loss"]) < float(history[0]["val_loss"])


def test_export_generates_readable_text_in_a_fresh_process(tiny_lm_run):
    config, run_dir, export_path = tiny_lm_run
    process = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, export_path, json.dumps(PROMPTS)],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert process.returncode == 0, process.stderr[-3000:]
    loaded = json.loads(process.stdout.strip().splitlines()[-1])

    assert loaded["signatures"] == ["beam", "greedy", "sample", "serving_default"]
    corpus_words = set(tasks.create_task(config).load_splits().splits["train"].text.split())
    for name in ("serving_default", "greedy", "beam", "sample"):
        outputs = loaded[name]
        assert set(outputs) == {"text", "continuation", "score"}
        for prompt, text, continuation in zip(PROMPTS, outputs["text"], outputs["continuation"]):
            assert text == prompt + continuation and "[UNK]" not in continuation and "\n" not in continuation
        assert all(score <= 0 for score in outputs["score"])
    # Greedy continuations are story text: whole words of the corpus (the last may be cut by the length limit).
    greedy = loaded["greedy"]["continuation"][0]
    assert len(greedy) > 10 and set(greedy.split()[:-1]) <= corpus_words, greedy
    assert loaded["sample"]["continuation"] == loaded["greedy"]["continuation"]  # temperature ~0 is greedy
    assert loaded["beam"]["continuation"][0].endswith(" .")  # stop_at_newline: beam search ends its line


def test_predict_verb_generates_from_a_prompt(tiny_lm_run):
    _, _, export_path = tiny_lm_run
    process = helpers.run_cli("predict", export_path, "lena has")
    assert process.returncode == 0, process.stderr[-2000:]
    row = json.loads(process.stdout.strip().splitlines()[-1])
    assert row["prompt"] == "lena has" and row["text"].startswith("lena has") and len(row["continuation"]) > 3

    sampled = helpers.run_cli("predict", "--signature", "sample", "--temperature", "1.5", export_path,
                              input_text="tom has\nanna has\n")
    rows = [json.loads(line) for line in sampled.stdout.strip().splitlines()]
    assert [row["prompt"] for row in rows] == ["tom has", "anna has"]


def test_evaluate_reloads_the_saved_model_and_reproduces_the_metrics(tiny_lm_run):
    _, run_dir, _ = tiny_lm_run
    before = _metrics(run_dir)["test"]

    after = training.evaluate(run_dir, ["test"])["test"]

    assert after["tokens"] == before["tokens"]
    assert after["perplexity"] == pytest.approx(before["perplexity"], rel=1e-5)


# === Resume and independent sequences ===


def test_training_resumes_and_independent_sequences_train_too(tmp_path):
    overrides = ["data.synthetic_examples=120", "train.carry_state=false", "export.on_train_end=false",
                 "train.tbptt_steps=20"]
    config = _load_config(tmp_path, *overrides, "train.epochs=1")
    run_dir = training.train(config)
    assert training.resumed_epoch(run_dir) == 1

    training.train(_load_config(tmp_path, *overrides, "train.epochs=2"))

    with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
        assert [row["epoch"] for row in csv.DictReader(stream)] == ["0", "1"]
    test = _metrics(run_dir)["test"]
    assert test["carry_state"] is False and test["perplexity"] < test["uniform_perplexity"] / 2


# === Word level ===


def test_word_level_generation_joins_words_and_stops_at_the_line_end(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The dog runs. The cat sleeps!\nA dog, a cat.\n" * 20, encoding="utf-8")
    config = config_lib.from_tree({
        "name": "words", "task": "language_model",
        "data": {"source": "files", "train": str(corpus), "level": "word", "lowercase": True},
        "model": {"units": 8, "embedding_dim": 4, "stop_at_newline": True, "max_generate_length": 5},
    })
    task = tasks.create_task(config)
    preprocessing = task.fit_preprocessing(task.load_splits())
    model = task.build_model(preprocessing)

    outputs = task.generate(model, preprocessing, tf.constant(["The dog", ""]), "greedy")

    vocabulary = preprocessing.vocabulary
    assert vocabulary[:3] == ["", "[UNK]", "\n"] and {"dog", ".", ","} <= set(vocabulary)
    for prompt, text, continuation in zip(["The dog", ""], outputs["text"].numpy(), outputs["continuation"].numpy()):
        words = [word.decode() for word in task.tokenize(tf.constant([continuation])).to_list()[0]]
        assert len(words) <= 5 and set(words) <= set(vocabulary) - {"\n", "[UNK]"}
        assert text.decode() == (f"{prompt} {continuation.decode()}".strip() if continuation else prompt)
    np.testing.assert_array_less(outputs["score"].numpy(), 0.0)
