"""Text of generated sequences: reserved tokens, punctuation-aware standardization and detokenization.

Translation, captioning and the language model share these: their vocabularies start with the reserved
tokens, and their texts are split and joined with core TensorFlow ops so that exports run them too.
"""

import tensorflow as tf

PADDING_TOKEN, UNKNOWN_TOKEN, START_TOKEN, END_TOKEN = "", "[UNK]", "[START]", "[END]"
PADDING_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
SOURCE_RESERVED = (PADDING_TOKEN, UNKNOWN_TOKEN)
TARGET_RESERVED = (PADDING_TOKEN, UNKNOWN_TOKEN, START_TOKEN, END_TOKEN)

# Characters split off as their own tokens: anything but letters, digits, combining marks, whitespace,
# apostrophes and hyphens (so "don't" and "t-shirt" stay whole, as sacreBLEU's 13a tokenizer keeps them).
_SEPARATE = r"([^\p{L}\p{N}\p{M}\s'’\-])"
_ASCII_PUNCTUATION = r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_{|}~]"
_APOSTROPHES = r"['’`]"
_NO_SPACE_BEFORE = r" ([.,!?;:%)\]}])"
_NO_SPACE_AFTER = r"([(\[{¿¡]) "


def standardize(texts: tf.Tensor, *, lowercase: bool, strip_punctuation: bool) -> tf.Tensor:
    """Normalizes a string tensor before whitespace splitting (core TF ops, usable in exports).

    With `strip_punctuation`, apostrophes are removed and ASCII punctuation becomes a space (as for
    sentiment). Without it, every character that is not a letter, digit, mark, whitespace, apostrophe or
    hyphen becomes its own token: "Ein Hund." -> "Ein Hund . ".
    """
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if strip_punctuation:
        texts = tf.strings.regex_replace(texts, _APOSTROPHES, "")
        return tf.strings.regex_replace(texts, _ASCII_PUNCTUATION, " ")
    return tf.strings.regex_replace(texts, _SEPARATE, r" \1 ")


def detokenize(tokens: tf.RaggedTensor) -> tf.Tensor:
    """Joins tokens [batch, (time)] into strings [batch], gluing punctuation back: "a dog ." -> "a dog."."""
    texts = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    texts = tf.strings.regex_replace(texts, _NO_SPACE_BEFORE, r"\1")
    return tf.strings.regex_replace(texts, _NO_SPACE_AFTER, r"\1")


def teacher_forcing(target_ids: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Target ids [batch, (time)] -> decoder inputs ([START] + ids) and labels (ids + [END])."""
    batch_size = target_ids.nrows(out_type=tf.int32)
    start = tf.RaggedTensor.from_tensor(tf.fill([batch_size, 1], START_ID))  # (batch, 1)
    end = tf.RaggedTensor.from_tensor(tf.fill([batch_size, 1], END_ID))  # (batch, 1)
    return tf.concat([start, target_ids], axis=1), tf.concat([target_ids, end], axis=1)
