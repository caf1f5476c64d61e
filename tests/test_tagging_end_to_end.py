"""Tagging end to end, masking, span scores and learning above a most-frequent-tag baseline."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import export
from pipeline import metrics
from pipeline import run_files
from pipeline import tasks
from pipeline import training
from pipeline.data import synthetic

pytestmark = pytest.mark.slow  # trains tiny models end to end

_LOAD_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outputs = signature(text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({"tokens": [[token.decode() for token in row] for row in outputs["tokens"].numpy()],
                  "tags": [[tag.decode() for tag in row] for row in outputs["tags"].numpy()],
                  "length": outputs["length"].numpy().tolist(), "length_dtype": outputs["length"].dtype.name}))
"""


@pytest.fixture(scope="module")
def tiny_tagging_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_tagging")
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/tagging.yaml")],
                                    helpers.tiny_overrides(directory))
    run_dir = training.train(config)
    return config, run_dir, export.export_run(run_dir)


def test_span_scores_on_hand_made_examples():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "O"]]
    scores = metrics.span_scores(gold, predicted)
    # gold spans: PER(0,2) LOC(3,4) ORG(0,3); predicted: PER(0,2) ORG(3,4) ORG(0,2); one exact match
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["per_type"]["PER"]["f1"] == 1.0 and scores["per_type"]["ORG"]["f1"] == 0.0
    assert metrics.spans(["I-PER", "I-PER", "B-PER", "E-PER", "S-LOC", "I-LOC"]) == {
        (0, 2, "PER"), (2, 4, "PER"), (4, 5, "LOC"), (5, 6, "LOC")}
    assert metrics.span_scores([["O", "O"]], [["O", "O"]])["f1"] == 0.0


def test_tagging_report_counts_oov_and_adds_spans_only_for_bio_tags():
    report = metrics.tagging_report([["B-X", "O"]], [["B-X", "B-X"]], [[False, True]], ("B-X", "O"))
    assert report["accuracy"] == 0.5 and report["oov_tokens"] == 1 and report["oov_accuracy"] == 0.0
    assert report["spans"]["precision"] == 0.5 and report["spans"]["recall"] == 1.0
    plain = metrics.tagging_report([["NOUN"]], [["NOUN"]], [[False]], ("NOUN", "VERB"))
    assert "spans" not in plain and plain["oov_accuracy"] is None


@pytest.mark.parametrize("char_encoder", ["cnn", "bilstm", "none"])
def test_padding_a_batch_longer_leaves_loss_and_accuracy_unchanged(char_encoder):
    config = config_lib.from_tree({"name": "t", "task": "tagging", "data": {"source": "synthetic:tagging"},
                                   "model": {"char_encoder": char_encoder, "units": 8, "embedding_dim": 8,
                                             "char_units": 4, "char_embedding_dim": 4}})
    task = tasks.create_task(config)
    model = task.build_model(tasks.tagging.TaggingPreprocessing(
        words=["", "[UNK]", "a", "b", "c"], characters=["", "[UNK]", "x", "y"], tag_names=("N", "V", "D")))
    model.compile(loss=task.loss(), metrics=task.metrics())
    rng = np.random.default_rng(0)
    token_ids = np.array([[2, 3, 4, 0], [3, 2, 0, 0]], dtype="int32")
    char_ids = rng.integers(1, 4, size=(2, 4, 3)).astype("int32") * (token_ids[..., None] > 0)
    tags = np.array([[0, 1, 2, 0], [1, 1, 0, 0]], dtype="int32")
    short = model.evaluate({"token_ids": token_ids, "char_ids": char_ids}, tags, verbose=0, return_dict=True)
    padded = model.evaluate({"token_ids": np.pad(token_ids, [[0, 0], [0, 5]]),
                             "char_ids": np.pad(char_ids, [[0, 0], [0, 5], [0, 2]])},
                            np.pad(tags, [[0, 0], [0, 5]], constant_values=2), verbose=0, return_dict=True)
    assert padded["loss"] == pytest.approx(short["loss"], rel=1e-5)
    assert padded["accuracy"] == pytest.approx(short["accuracy"], rel=1e-6)


def test_tiny_tagger_beats_the_most_frequent_tag_baseline(tiny_tagging_run):
    config, run_dir, _ = tiny_tagging_run
    splits = tasks.create_task(config).load_splits()
    counts = collections.defaultdict(collections.Counter)
    for sentence, tags in zip(splits.splits["train"].tokens, splits.splits["train"].tag_ids):
        for token, tag in zip(sentence, tags):
            counts[token][tag] += 1
    test = splits.splits["test"]
    guesses = [[counts[token].most_common(1)[0][0] if counts[token] else 0 for token in sentence]
               for sentence in test.tokens]
    total = sum(map(len, test.tag_ids))
    baseline = sum(g == t for guess, tags in zip(guesses, test.tag_ids) for g, t in zip(guess, tags)) / total
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        accuracy = json.load(stream)["test"]["accuracy"]
    assert baseline < 0.97, "the synthetic data must need context"
    assert 1 - accuracy <= 0.3 * (1 - baseline), f"tagger {accuracy:.4f} vs most-frequent-tag {baseline:.4f}"


def test_tagging_export_round_trip_in_a_fresh_process(tiny_tagging_run):
    config, run_dir, export_path = tiny_tagging_run
    texts = ["we book the old train", "", "the book likes a small duck near the river", "unseen Words here"]
    process = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, export_path, json.dumps(texts)],
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    loaded = json.loads(process.stdout.strip().splitlines()[-1])
    assert loaded["length"] == [5, 0, 9, 3] and loaded["length_dtype"] == "int32"
    width = len(loaded["tokens"][0])
    assert width == 9 and all(len(row) == width for row in loaded["tags"] + loaded["tokens"])
    assert loaded["tokens"][0] == ["we", "book", "the", "old", "train", "", "", "", ""]
    assert loaded["tags"][0][:5] == ["PRON", "VERB", "DET", "ADJ", "NOUN"] and loaded["tags"][0][5:] == [""] * 4
    assert loaded["tags"][1] == [""] * width
    assert loaded["tags"][2][1] == "NOUN"  # "book" after a determiner

    task = tasks.create_task(config)
    preprocessing = task.load_preprocessing(run_dir)
    in_memory = task.serving_functions(run_files.load_trained_model(run_dir), preprocessing)["serving_default"](
        np.array(texts, dtype=object))
    assert [[tag.decode() for tag in row] for row in in_memory["tags"].numpy()] == loaded["tags"]


def test_cli_predict_trims_padding_by_length(tiny_tagging_run):
    _, run_dir, _ = tiny_tagging_run
    result = helpers.run_cli("predict", run_dir, "we book the old train", "the book likes a small duck near the river")
    assert result.returncode == 0, result.stderr[-2000:]
    first = json.loads(result.stdout.splitlines()[0])
    assert first["tokens"] == ["we", "book", "the", "old", "train"] and len(first["tags"]) == 5


def test_tagging_metrics_json_has_token_oov_and_per_tag_scores(tiny_tagging_run):
    _, run_dir, _ = tiny_tagging_run
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        test = json.load(stream)["test"]
    assert test["tokens"] > test["sentences"] > 0
    assert set(test["per_class"]) == set(synthetic.TAGGING_TAGS)
    assert "oov_tokens" in test and "spans" not in test
