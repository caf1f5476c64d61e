"""Numbers copied through translation: digit runs become one placeholder for the model and come back in order.

A recurrent translator learns to copy a number digit by digit only from the few training sentences that
hold one (172 of Multi30k's 29,000), and it scrambles the long ones. With `data.copy_numbers`, every run of
ASCII digits in a source becomes one placeholder token, the model learns to place placeholders, and the
translation's k-th placeholder is replaced by the source's k-th digit run. On the training targets only the
digit runs that the source also holds become placeholders, so a number the source spells out ("zwei" ->
"2") is still learnt as text. Everything here is core TensorFlow string ops, so it runs inside exports.
"""

import re

import tensorflow as tf

PLACEHOLDER = "\u2985number\u2986"  # "⦅number⦆": one SentencePiece piece (a user-defined symbol)
_DIGITS = "[0-9]+"
_NOT_DIGITS = "[^0-9]+"
_SPLIT = "\u0001"  # marks where a digit run was, to split texts around them; never in stored text


def mask(texts: tf.Tensor) -> tf.Tensor:
    """Strings [batch] -> the same strings with each run of digits replaced by `PLACEHOLDER`."""
    return tf.strings.regex_replace(texts, _DIGITS, PLACEHOLDER)


def mask_string(text: str) -> str:
    """`mask` for one Python string (what a SentencePiece model is trained on)."""
    return re.sub(_DIGITS, PLACEHOLDER, text)


def digit_runs(texts: tf.Tensor) -> tf.RaggedTensor:
    """Strings [batch] -> their runs of ASCII digits in order [batch, (runs)]: "Nr. 55 und 10" -> ["55", "10"]."""
    return tf.strings.split(tf.strings.strip(tf.strings.regex_replace(texts, _NOT_DIGITS, " ")))


def mask_shared(targets: tf.Tensor, sources: tf.Tensor) -> tf.Tensor:
    """Targets [batch] with the digit runs that their source also holds replaced by `PLACEHOLDER`."""
    target_runs, source_runs = digit_runs(targets), digit_runs(sources)
    # (batch, target runs, source runs): a padded "" never equals a digit run.
    matches = tf.equal(target_runs.to_tensor()[:, :, tf.newaxis], source_runs.to_tensor()[:, tf.newaxis, :])
    shared = tf.RaggedTensor.from_tensor(tf.reduce_any(matches, axis=2), lengths=target_runs.row_lengths())
    fills = tf.ragged.map_flat_values(tf.where, shared, PLACEHOLDER, target_runs)
    return _fill(_parts(tf.strings.regex_replace(targets, _DIGITS, _SPLIT), _SPLIT), fills)


def restore(translations: tf.Tensor, sources: tf.Tensor) -> tf.Tensor:
    """Translations [batch] with their k-th `PLACEHOLDER` replaced by the k-th digit run of their source.

    A placeholder beyond the source's digit runs is removed (it has no number to stand for), with the
    space it leaves; a digit run that the translation holds no placeholder for is left out (the
    translation task's decoding writes exactly one placeholder per digit run, so neither happens there).
    SentencePiece output has single spaces and no outer ones, so collapsing spaces changes nothing else.
    """
    parts = _parts(translations, PLACEHOLDER)  # (batch, (placeholders + 1))
    slots = parts.row_lengths() - 1
    runs = digit_runs(sources)
    width = tf.maximum(tf.reduce_max(tf.concat([slots, [0]], axis=0)), runs.bounding_shape(1))
    padded = runs.to_tensor(default_value="", shape=tf.stack([runs.nrows(), width]))
    filled = _fill(parts, tf.RaggedTensor.from_tensor(padded, lengths=slots))
    return tf.strings.strip(tf.strings.regex_replace(filled, "  +", " "))


def _parts(texts: tf.Tensor, separator: str) -> tf.RaggedTensor:
    """Strings [batch] -> the pieces between separators [batch, (separators + 1)] (an empty text: [""])."""
    return tf.strings.split(texts, sep=separator)


def _fill(parts: tf.RaggedTensor, fills: tf.RaggedTensor) -> tf.Tensor:
    """Interleaves parts [batch, (n + 1)] with fills [batch, (n)]: part 0, fill 0, part 1, ..., part n."""
    leading = parts[:, :-1]
    joined = tf.strings.reduce_join(
        tf.ragged.map_flat_values(lambda part, fill: tf.strings.join([part, fill]), leading, fills), axis=1)
    last = tf.gather(parts.flat_values, parts.row_limits() - 1)
    return tf.strings.join([joined, last])
