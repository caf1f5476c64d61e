"""Text standardization and vectorization, in core TensorFlow ops so they run inside exported graphs."""

import collections
import json
import os
import typing

import keras
import tensorflow as tf

_LINE_BREAK_TAGS = r"(?i)<\s*br\s*/?\s*>"
_APOSTROPHES = r"['’`]"
_PUNCTUATION = r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_{|}~]"

VOCABULARY_FILE = "vocabulary.json"


def standardize(texts: tf.Tensor, *, lowercase: bool, strip_punctuation: bool) -> tf.Tensor:
    """Normalizes a string tensor before whitespace splitting.

    `<br />` tags (frequent in scraped reviews) always become spaces. With `strip_punctuation`,
    apostrophes are removed (`don't` -> `dont`) and other ASCII punctuation becomes a space, so
    `good.The` splits into two words.

    Args:
        texts: String tensor of any shape.
        lowercase: Lower-case (Unicode-aware) first.
        strip_punctuation: Remove punctuation as described above.

    Returns:
        A string tensor of the same shape.
    """
    texts = tf.strings.regex_replace(texts, _LINE_BREAK_TAGS, " ")
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if strip_punctuation:
        texts = tf.strings.regex_replace(texts, _APOSTROPHES, "")
        texts = tf.strings.regex_replace(texts, _PUNCTUATION, " ")
    return texts


def fit_vectorizer(texts: tf.data.Dataset, vocabulary_size: int) -> keras.layers.TextVectorization:
    """Builds a vocabulary from already-standardized training texts (the train split only).

    Args:
        texts: Dataset of standardized string batches.
        vocabulary_size: Largest vocabulary, counting the padding ("") and out-of-vocabulary tokens.
    """
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocabulary_size, standardize=None, split="whitespace", name="text_vectorizer")
    vectorizer.adapt(texts)
    return vectorizer


def vectorizer_from_vocabulary(vocabulary: list[str]) -> keras.layers.TextVectorization:
    """Rebuilds a vectorizer from a vocabulary that starts with "" and the out-of-vocabulary token."""
    vectorizer = keras.layers.TextVectorization(
        standardize=None, split="whitespace", vocabulary=vocabulary, name="text_vectorizer")
    vectorizer(tf.constant([""]))  # builds it, which export requires
    return vectorizer


def save_vocabulary(vocabulary: list[str], directory: str, file_name: str = VOCABULARY_FILE) -> str:
    """Writes a vocabulary (or a label list) as a JSON list, atomically, and returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump([str(token) for token in vocabulary], stream, ensure_ascii=False, indent=0)
    os.replace(temporary, path)
    return path


def load_vocabulary(directory: str, file_name: str = VOCABULARY_FILE) -> list[str]:
    """Reads a list written by `save_vocabulary`."""
    path = os.path.join(directory, file_name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: vocabulary not found; was this run directory trained?")
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def token_ids(vectorizer: keras.layers.TextVectorization, standardized: tf.Tensor,
              max_sequence_length: int) -> tf.Tensor:
    """Maps standardized strings [batch] to int32 ids [batch, time], right-padded with 0.

    Keeps the first `max_sequence_length` tokens, and at least one (padding) column so that a batch of
    empty texts still has a time axis.
    """
    ids = tf.cast(vectorizer(standardized), tf.int32)  # (batch, longest)
    ids = ids[:, :max_sequence_length]
    missing = tf.maximum(0, 1 - tf.shape(ids)[1])
    return tf.pad(ids, [[0, 0], [0, missing]])


def ragged_token_ids(vectorizer: keras.layers.TextVectorization, standardized: tf.Tensor,
                     max_sequence_length: int) -> tf.RaggedTensor:
    """Like `token_ids` but ragged: for the input pipeline, before bucketing by length.

    Every row keeps at least one token (a single padding id for an empty text).
    """
    dense = token_ids(vectorizer, standardized, max_sequence_length)  # (batch, time)
    lengths = tf.maximum(tf.math.count_nonzero(dense, axis=1, dtype=tf.int32), 1)
    return tf.RaggedTensor.from_tensor(dense, lengths=lengths)


def build_vocabulary(sequences: typing.Iterable[typing.Iterable[str]], size: int,
                     reserved: typing.Sequence[str] = ("", "[UNK]")) -> list[str]:
    """The reserved tokens, then the `size - len(reserved)` most frequent others (ties in first-seen order)."""
    counts = collections.Counter(item for sequence in sequences for item in sequence)
    for token in reserved:
        counts.pop(token, None)
    return list(reserved) + [item for item, _ in counts.most_common(max(size - len(reserved), 0))]


def read_vocabulary_file(path: str, size: int, reserved: typing.Sequence[str] = ("", "[UNK]")) -> tuple[list[str], int]:
    """A vocabulary given as a file: the reserved tokens, then the file's first `size - len(reserved)` others.

    The file is a JSON list (a run's `vocab/vocabulary.json`) or a text file with one token per line. Tokens
    that whitespace splitting can never produce (empty, or holding whitespace, such as a language model's
    line-break token) and the reserved tokens are passed over.

    Returns:
        (the vocabulary, how many of the file's tokens were passed over).

    Raises:
        ValueError: The file holds a token twice, or no usable token; the message names the file (and line).
    """
    with open(path, encoding="utf-8") as stream:
        content = stream.read()
    if path.endswith(".json"):
        tokens = json.loads(content)
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise ValueError(f"{path}: expected a JSON list of strings")
        numbered = list(enumerate(tokens, start=1))
    else:
        numbered = list(enumerate(content.split("\n"), start=1))
        if numbered and numbered[-1][1] == "":
            numbered.pop()
    vocabulary, seen, passed_over = list(reserved), {}, 0
    for position, token in numbered:
        if token in reserved or not token or any(character.isspace() for character in token):
            passed_over += 1
            continue
        if token in seen:
            where = "entry" if path.endswith(".json") else "line"
            raise ValueError(f"{path}: {where} {position} repeats the token {token!r} of {where} {seen[token]}")
        seen[token] = position
        if len(vocabulary) < size:
            vocabulary.append(token)
    if len(vocabulary) == len(reserved):
        raise ValueError(f"{path}: no usable token (every one is reserved, empty or holds whitespace)")
    return vocabulary, passed_over


def string_lookup(vocabulary: list[str]) -> keras.layers.StringLookup:
    """String -> id for a vocabulary starting with "" (padding, id 0) and "[UNK]" (id 1), built for export."""
    lookup = keras.layers.StringLookup(vocabulary=vocabulary[2:], mask_token=vocabulary[0], oov_token=vocabulary[1])
    lookup(tf.constant([""]))  # builds it, which export requires
    return lookup

