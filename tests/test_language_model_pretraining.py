"""Language-model pretraining for a classifier: the words the language model reads are the sentiment task's."""

import gzip
import json

import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import tasks

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
