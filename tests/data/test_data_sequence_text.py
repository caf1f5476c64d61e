"""Text of generated sequences: punctuation split off and glued back, reserved tokens first in vocabularies."""

import tensorflow as tf

from pipeline.data import sequence_text
from pipeline.data import text as text_lib


def _strings(tensor) -> list[str]:
    return [item.decode("utf-8") for item in tensor.numpy()]


def test_standardize_splits_punctuation_off_or_strips_it():
    texts = tf.constant(["Ein Hund läuft, schnell.", "Don't stop (now)!", "T-Shirt „Ja“"])
    kept = [" ".join(text.split()) for text in
            _strings(sequence_text.standardize(texts, lowercase=True, strip_punctuation=False))]
    assert kept == ["ein hund läuft , schnell .", "don't stop ( now ) !", "t-shirt „ ja “"]
    stripped = [" ".join(text.split()) for text in
                _strings(sequence_text.standardize(texts, lowercase=False, strip_punctuation=True))]
    assert stripped == ["Ein Hund läuft schnell", "Dont stop now", "T Shirt „Ja“"]


def test_detokenize_glues_punctuation_back():
    tokens = tf.ragged.constant([["a", "dog", "(", "brown", ")", "runs", ",", "fast", "."], [], ["2", "-", "3"]])
    assert _strings(sequence_text.detokenize(tokens)) == ["a dog (brown) runs, fast.", "", "2 - 3"]


def test_vocabulary_starts_with_reserved_tokens_then_most_frequent():
    sentences = [["b", "a", "b"], ["c", "[END]", "a", "b"]]
    vocabulary = text_lib.build_vocabulary(sentences, 6, sequence_text.TARGET_RESERVED)
    assert vocabulary == ["", "[UNK]", "[START]", "[END]", "b", "a"]
    assert text_lib.build_vocabulary([["x"]], 10, sequence_text.SOURCE_RESERVED) == ["", "[UNK]", "x"]
