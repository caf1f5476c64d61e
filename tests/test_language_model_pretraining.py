"""Language-model pretraining for a classifier: the words the language model reads are the sentiment task's, its
vocabulary is sorted by frequency, and a sampled softmax trains it reproducibly (reruns, kill -9 and resume)
while perplexity, generation and the export use the full softmax."""

import collections
import csv
import gzip
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import export
from pipeline import run_files
from pipeline import run_state
from pipeline import tasks
from pipeline import training

IMDB_TRAIN = helpers.SHARED_DATA / "imdb" / "imdb_train.tsv.gz"

# Review-like texts: line-break tags, apostrophes (straight, curly, backquote), punctuation glued to words,
# non-ASCII punctuation and letters, runs of spaces, tabs, form feeds and line breaks, digits, an empty text.
TEXTS = [
    "I didn't like it.<br /><br />The END...but 'twas fun!",
    "Great film -- 10/10; would watch again?? (Yes.)",
    "Caf\u00e9 \u00abquotes\u00bb \u2014 dash \u2019curly\u2019 `back` \u00c9T\u00c9",
    "tabs\tand  spaces\x0cform feed <BR/>tag<br>end\nnext line\r\nlast",
    "",
    "e-mail: someone@example.com #1 $5 50% a_b {c} [d] |e| ~f^g",
]


def _tasks(tmp_path, lowercase=True):
    """The sentiment task and a word-level language model reading the same file, standardized alike."""
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps({"label": index % 2, "text": text}) + "\n" for index, text in enumerate(TEXTS)),
                    encoding="utf-8")
    sentiment = tasks.create_task(config_lib.from_tree({
        "name": "s", "task": "sentiment",
        "data": {"source": "files", "train": str(path), "validation": str(path), "lowercase": lowercase,
                 "strip_punctuation": True}}))
    language_model = tasks.create_task(config_lib.from_tree({
        "name": "lm", "task": "language_model",
        "data": {"source": "files", "train": str(path), "validation": str(path), "level": "word",
                 "lowercase": lowercase, "strip_punctuation": True}}))
    return sentiment, language_model


def _sentiment_words(sentiment, texts) -> list[list[bytes]]:
    # The sentiment vectorizer splits its standardized texts on whitespace.
    return tf.strings.split(sentiment.standardize(tf.constant(texts))).to_list()


def _language_model_words(language_model, text: str) -> list[list[bytes]]:
    """The language model's tokens of a whole stream, cut into lines at its line-break tokens."""
    lines, line = [], []
    for token in language_model.tokenize(tf.constant([text])).to_list()[0]:
        if token == b"\n":
            lines.append(line)
            line = []
        else:
            line.append(token)
    assert not line, "every record ends with a line break"
    return lines


@pytest.mark.parametrize("lowercase", [True, False])
def test_language_model_words_are_the_sentiment_tasks_words(tmp_path, lowercase):
    sentiment, language_model = _tasks(tmp_path, lowercase)

    sentiment_texts = sentiment.load_splits().splits["train"].texts
    stream = language_model.load_splits().splits["train"].text

    assert _language_model_words(language_model, stream) == _sentiment_words(sentiment, sentiment_texts)
    assert _language_model_words(language_model, stream)[0][:4] == (
        [b"i", b"didnt", b"like", b"it"] if lowercase else [b"I", b"didnt", b"like", b"it"])


def test_language_model_words_equal_the_sentiment_tasks_on_imdb_reviews(tmp_path):
    if not IMDB_TRAIN.exists():
        pytest.skip(f"{IMDB_TRAIN} is absent")
    with gzip.open(IMDB_TRAIN, "rt", encoding="utf-8") as stream:
        head = [next(stream) for _ in range(301)]  # the header and 300 reviews
    (tmp_path / "head.tsv").write_text("".join(head), encoding="utf-8")
    sentiment, language_model = _tasks(tmp_path)
    overrides = {"train": str(tmp_path / "head.tsv"), "validation": str(tmp_path / "head.tsv")}
    sentiment = tasks.create_task(config_lib.from_tree(config_lib.merge(
        config_lib.to_tree(sentiment.config), {"data": {**overrides, "labels": ["negative", "positive"]}})))
    language_model = tasks.create_task(config_lib.from_tree(config_lib.merge(
        config_lib.to_tree(language_model.config), {"data": overrides})))

    texts = sentiment.load_splits().splits["train"].texts
    stream = language_model.load_splits().splits["train"].text

    assert len(texts) == 300 and any("<br />" in text for text in texts)
    assert _language_model_words(language_model, stream) == _sentiment_words(sentiment, texts)


def test_strip_punctuation_is_for_words_only():
    tree = {"name": "lm", "task": "language_model", "data": {"source": "synthetic:language_model",
                                                             "strip_punctuation": True}}
    for level in ("char", "sentencepiece"):
        with pytest.raises(config_lib.ConfigError, match=r"^data.strip_punctuation: only for data.level: word"):
            config_lib.from_tree(config_lib.merge(tree, {"data": {"level": level}}))


def test_the_word_vocabulary_is_sorted_by_frequency(tmp_path):
    # The sampled softmax draws log-uniformly by id, which presumes that frequent words have small ids.
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("b a b c a b\nc b d\n" * 5 + "e f e\n", encoding="utf-8")
    task = tasks.create_task(config_lib.from_tree({
        "name": "lm", "task": "language_model",
        "data": {"source": "files", "train": str(corpus), "validation": str(corpus), "level": "word"}}))
    vocabulary = task.fit_preprocessing(task.load_splits()).vocabulary
    counts = collections.Counter(token.decode() for token in task.tokenize(
        tf.constant([corpus.read_text(encoding="utf-8")])).flat_values.numpy())

    assert vocabulary[:3] == ["", "[UNK]", "\n"]
    assert vocabulary[3:] == ["b", "a", "c", "d", "e", "f"]
    assert [counts[token] for token in vocabulary[3:]] == sorted((counts[token] for token in vocabulary[3:]),
                                                                 reverse=True)


# === Sampled softmax through the whole pipeline (configs/tiny/lm_imdb.yaml) ===

# Imports the package, makes `fit` kill the process after the 3rd batch of the 2nd epoch, then runs the CLI.
_KILLED_RUN = r"""
import os, signal, sys

import keras

from pipeline import cli, training


class DieMidEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            os.kill(os.getpid(), signal.SIGKILL)


make_callbacks = training.make_callbacks
training.make_callbacks = lambda *args, **kwargs: make_callbacks(*args, **kwargs) + [DieMidEpoch()]
sys.exit(cli.main(sys.argv[1:]))
"""


def _train_arguments(directory, *extra: str) -> list[str]:
    overrides = helpers.tiny_overrides(directory) + ["export.self_check=false", *extra]
    return ["train", str(helpers.REPOSITORY / "configs/tiny/lm_imdb.yaml"),
            *(item for override in overrides for item in ("--set", override))]



def _outcome(directory) -> dict:
    run_dir = directory / "run"
    state = json.loads((run_dir / run_state.STATE_FILE).read_text())
    state.pop("export_path")
    return {"history": (run_dir / run_files.HISTORY).read_text(), "state": state,
            "metrics": json.loads((run_dir / run_files.METRICS_FILE).read_text()),
            "weights": helpers.weights_file_arrays(run_dir / run_files.LAST_CHECKPOINT / state["weights"])}


def _assert_same(outcome: dict, expected: dict) -> None:
    for key in ("history", "state", "metrics"):
        assert outcome[key] == expected[key], key
    assert outcome["weights"].keys() == expected["weights"].keys()
    for name, array in expected["weights"].items():
        assert np.array_equal(outcome["weights"][name], array), name


@pytest.fixture(scope="module")
def sampled_runs(tmp_path_factory):
    """Directories of: the run, the same run again, and one killed mid-epoch (not resumed yet)."""
    root = tmp_path_factory.mktemp("sampled_softmax")
    killed = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, *_train_arguments(root / "killed")],
                              cwd=helpers.REPOSITORY, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    try:
        for name in ("run", "rerun"):  # meanwhile
            config = config_lib.load_config(_train_arguments(root / name)[1:2],
                                            _train_arguments(root / name)[3::2])
            training.train(config)
        _, errors = killed.communicate(timeout=600)
        assert killed.returncode == -signal.SIGKILL, errors[-3000:]
    finally:
        killed.kill()  # no-op once it has ended
    return root


@pytest.mark.slow
def test_sampled_softmax_trains_and_perplexity_is_the_full_softmax(sampled_runs):
    run_dir = str(sampled_runs / "run" / "run")
    config = run_files.load_run_config(run_dir)
    task = tasks.create_task(config)
    preprocessing = task.load_preprocessing(run_dir)
    model = run_files.load_trained_model(run_dir)
    with open(os.path.join(run_dir, run_files.HISTORY), newline="") as stream:
        history = list(csv.DictReader(stream))

    assert config.train.sampled_softmax == 8 and len(preprocessing.vocabulary) > 30
    assert set(history[0]) == {"epoch", "loss", "val_loss", "val_accuracy", "val_perplexity"}
    assert float(history[-1]["loss"]) < 0.5 * float(history[0]["loss"])
    # The test perplexity is the full softmax's: recomputed here from the logits, state carried across batches.
    log_likelihood, tokens, state = 0.0, 0, None
    for features, labels in task.datasets(task.load_splits(), preprocessing)["test"]:
        if state is None or int(state[0][0].shape[0]) != labels.shape[0]:
            state = model.initial_state(labels.shape[0])
        logits, state = model.run(features["token_ids"], state)
        logits = logits.numpy().astype(np.float64)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        log_likelihood += np.take_along_axis(log_probabilities, labels.numpy()[..., None], axis=-1).sum()
        tokens += labels.numpy().size
    test = json.loads((sampled_runs / "run" / "run" / run_files.METRICS_FILE).read_text())["test"]
    assert test["tokens"] == tokens
    assert test["perplexity"] == pytest.approx(np.exp(-log_likelihood / tokens), rel=1e-5)
    assert test["perplexity"] < test["uniform_perplexity"] / 5


@pytest.mark.slow
def test_sampled_softmax_runs_are_bit_identical_and_resume_exactly_after_kill_9(sampled_runs):
    expected = _outcome(sampled_runs / "run")
    _assert_same(_outcome(sampled_runs / "rerun"), expected)
    assert run_state.load(str(sampled_runs / "killed" / "run")).epochs_done == 1

    training.train(config_lib.load_config(_train_arguments(sampled_runs / "killed")[1:2],
                                          _train_arguments(sampled_runs / "killed")[3::2]))

    _assert_same(_outcome(sampled_runs / "killed"), expected)


@pytest.mark.slow
def test_the_export_of_a_sampled_softmax_model_generates_with_the_full_softmax(sampled_runs):
    loaded = tf.saved_model.load(export.export_run(str(sampled_runs / "run" / "run")))

    assert sorted(loaded.signatures) == ["beam", "greedy", "sample", "serving_default"]
    outputs = loaded.signatures["greedy"](prompt=tf.constant(["tom has five apples", ""]))
    assert [text.decode().startswith("tom has five apples") for text in outputs["text"].numpy()] == [True, False]
    assert all(score <= 0 for score in outputs["score"].numpy())


# === Streaming from the files (data.cache: false) ===


def _streamed_config(tmp_path, name: str, *, epochs: int, carry_state: bool = True) -> config_lib.RunConfig:
    reviews = tmp_path / "reviews.tsv.gz"
    if not reviews.exists():
        lines = [f"{name} has {count} apples. At the school {name} gives one to Anna!<br />Now {name} has "
                 f"{count - 1} apples." for name, count in zip(["Tom", "Lena", "Maria"] * 100, [5, 4, 3, 2] * 75)]
        with gzip.open(reviews, "wt", encoding="utf-8") as stream:
            stream.write("id\ttext\n" + "".join(f"{index}\t{line}\n" for index, line in enumerate(lines)))
        (tmp_path / "valid.txt").write_text("\n".join(lines[:12]) + "\n", encoding="utf-8")
    return config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/lm_imdb.yaml")], [
        f"runtime.run_dir={tmp_path / name}", "export.on_train_end=false", "data.source=files",
        f"data.train={reviews}", f"data.validation={tmp_path / 'valid.txt'}", "data.cache=false",
        "data.shuffle_buffer=50", "train.steps_per_epoch=10", f"train.epochs={epochs}",
        f"train.carry_state={str(carry_state).lower()}"])


@pytest.mark.slow
@pytest.mark.parametrize("carry_state", [True, False])
def test_a_streamed_run_learns_and_resumes_on_the_batches_the_uninterrupted_run_saw(tmp_path, carry_state):
    whole = training.train(_streamed_config(tmp_path, "whole", epochs=2, carry_state=carry_state))
    training.train(_streamed_config(tmp_path, "parts", epochs=1, carry_state=carry_state))
    parts = training.train(_streamed_config(tmp_path, "parts", epochs=2, carry_state=carry_state))  # resumes

    with open(os.path.join(whole, run_files.HISTORY), newline="") as stream:
        history = list(csv.DictReader(stream))
    assert float(history[-1]["val_loss"]) < float(history[0]["val_loss"])
    assert (tmp_path / "parts" / run_files.HISTORY).read_text() == (tmp_path / "whole" / run_files.HISTORY).read_text()
    expected = helpers.weights_file_arrays(tmp_path / "whole" / run_files.BEST_WEIGHTS)
    resumed = helpers.weights_file_arrays(tmp_path / "parts" / run_files.BEST_WEIGHTS)
    assert resumed.keys() == expected.keys()
    assert all(np.array_equal(resumed[name], array) for name, array in expected.items())
    assert json.loads((tmp_path / "whole" / run_files.METRICS_FILE).read_text())["validation"]["perplexity"] == \
        json.loads((tmp_path / "parts" / run_files.METRICS_FILE).read_text())["validation"]["perplexity"]
    del parts


def test_predictions_on_long_lines_over_a_large_vocabulary_bound_the_logits_of_a_batch(tmp_path, monkeypatch):
    from pipeline.tasks import language_model as language_model_task

    lines = [" ".join(["word"] * length) for length in (3, 40, 2, 2, 25, 1)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = tasks.create_task(config_lib.from_tree({
        "name": "lm", "task": "language_model", "model": {"units": 4, "embedding_dim": 4},
        "data": {"source": "files", "train": str(corpus), "validation": str(corpus), "level": "word"}}))
    splits = task.load_splits()
    preprocessing = task.fit_preprocessing(splits)
    vocabulary_size = len(preprocessing.vocabulary)  # "", "[UNK]", "\n", "word"
    monkeypatch.setattr(language_model_task, "_PREDICTION_LOGITS", 30 * vocabulary_size)

    batches = list(task._prediction_batches(preprocessing, lines, vocabulary_size))
    rows = list(task.predictions(task.build_model(preprocessing), preprocessing, splits.splits["validation"]))

    assert [len(batch) for batch, _ in batches] == [1, 1, 2, 1, 1]  # a line alone when it is over the bound
    assert all(len(ids) * max(map(len, ids)) <= 30 or len(ids) == 1 for _, ids in batches)
    assert [row["text"] for row in rows] == lines and [row["tokens"] for row in rows] == [4, 41, 3, 3, 26, 2]


# Two logical CPU devices: MirroredStrategy keeps two replicas in sync on one CPU.
_MIRRORED_SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pipeline import config as config_lib, distribution, training
config = config_lib.load_config([sys.argv[1]], [f"runtime.run_dir={sys.argv[2]}", "export.on_train_end=false",
                                                "runtime.distribution=mirrored", "train.carry_state=false",
                                                "train.steps_per_epoch=3", "train.epochs=1"])
strategy = distribution.create_strategy(config.runtime)
run_dir = training.train(config, strategy)
print("RESULT " + json.dumps({"replicas": strategy.num_replicas_in_sync,
                              "metrics": json.load(open(f"{run_dir}/metrics.json"))["validation"]}))
"""


@pytest.mark.slow
def test_a_sampled_softmax_trains_on_two_mirrored_replicas(tmp_path):
    process = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(helpers.REPOSITORY / "configs/tiny/lm_imdb.yaml"),
                              str(tmp_path / "run")], cwd=helpers.REPOSITORY, capture_output=True, text=True,
                             timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))

    assert process.returncode == 0, process.stderr[-5000:]
    result = json.loads(process.stdout.split("RESULT ")[-1])
    assert result["replicas"] == 2 and result["metrics"]["perplexity"] < result["metrics"]["uniform_perplexity"]
