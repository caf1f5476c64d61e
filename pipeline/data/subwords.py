"""SentencePiece subwords: models trained with the `sentencepiece` package, run inside graphs by TF Text.

A model is plain bytes (SentencePiece's serialized `ModelProto`), saved with the run and embedded in the
export. Its reserved ids are those of `pipeline.data.sequence_text`: 0 padding, 1 unknown, 2 start, 3 end,
so a model's ids are the ids the translation model reads and writes. Tokenizing and detokenizing run
`tensorflow_text.SentencepieceTokenizer`, whose ops TF Serving links in: the only module of the package
that imports TF Text is this one.
"""

import hashlib
import io
import os
import random
import typing

import sentencepiece
import tensorflow as tf
import tensorflow_text

from pipeline.data import sequence_text


def sample_sentences(texts: typing.Iterable[str], size: int, seed: int) -> list[str]:
    """A seeded uniform sample of at most `size` non-blank texts (all of them when `size` is 0).

    Reservoir sampling: one pass, and memory bounded by `size` whatever the length of `texts`.
    """
    generator = random.Random(seed)
    sample: list[str] = []
    for seen, text in enumerate(text for text in texts if text.strip()):
        if not size or len(sample) < size:
            sample.append(text)
        else:
            slot = generator.randint(0, seen)
            if slot < size:
                sample[slot] = text
    return sample


def train_model(texts: typing.Sequence[str], *, vocabulary_size: int, model_type: str = "unigram",
                character_coverage: float = 1.0, byte_fallback: bool = True, seed: int = 0,
                symbols: typing.Sequence[str] = ()) -> bytes:
    """Trains a SentencePiece model on `texts` and returns it serialized.

    Numbers are split into single digits, so that any number is spelled and copied through; with
    `byte_fallback`, characters outside the model are spelled as UTF-8 bytes instead of becoming unknown.
    `vocabulary_size` is an upper bound: a small corpus may not fill it. Each of `symbols` is one piece
    wherever it occurs (SentencePiece's user-defined symbols), whether or not the texts hold it.

    Raises:
        ValueError: No text to train on.
    """
    if not texts:
        raise ValueError("no text to train a SentencePiece model on")
    sentencepiece.set_random_generator_seed(seed)
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=model, vocab_size=vocabulary_size, model_type=model_type,
        character_coverage=character_coverage, byte_fallback=byte_fallback, split_digits=True,
        hard_vocab_limit=False, user_defined_symbols=list(symbols), pad_id=sequence_text.PADDING_ID,
        unk_id=sequence_text.UNKNOWN_ID, bos_id=sequence_text.START_ID, eos_id=sequence_text.END_ID,
        num_threads=min(os.cpu_count() or 1, 8), minloglevel=2)
    return model.getvalue()


def pieces(model: bytes) -> list[str]:
    """The model's pieces by id, the reserved ones named as in word vocabularies ("", "[UNK]", ...)."""
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    names = list(sequence_text.TARGET_RESERVED)
    return [names[index] if index < len(names) else processor.id_to_piece(index)
            for index in range(processor.get_piece_size())]


def tokenizer(model: bytes) -> tensorflow_text.SentencepieceTokenizer:
    """The in-graph tokenizer of a model: strings -> int32 ids and back (deterministic, no sampling).

    Create it eagerly, outside any traced function, so that its resource belongs to no graph.
    """
    # Two tokenizers with the default name in one SavedModel both run the first one's model once the
    # export is loaded (TF Text 2.21); a name derived from the model keeps different models apart.
    name = f"sentencepiece_{hashlib.sha256(model).hexdigest()[:16]}"
    return tensorflow_text.SentencepieceTokenizer(model=model, out_type=tf.int32, name=name)


def detokenize(model_tokenizer: tensorflow_text.SentencepieceTokenizer, token_ids: tf.Tensor) -> tf.Tensor:
    """Generated ids [batch, time] -> plain text [batch]: padding, start, end and unknown ids dropped."""
    ids = tf.convert_to_tensor(token_ids)
    return model_tokenizer.detokenize(tf.ragged.boolean_mask(ids, ids > sequence_text.END_ID))


def tokenize_lines(model_tokenizer: tensorflow_text.SentencepieceTokenizer, texts: tf.Tensor,
                   newline_id: int) -> tf.RaggedTensor:
    """Strings [batch] that may hold line breaks -> ids [batch, (time)], each "\\n" as `newline_id`.

    SentencePiece treats a line break as whitespace, so each line is tokenized on its own and the breaks
    are put back between them (a text that ends with "\\n" ends with `newline_id`).
    """
    lines = tf.strings.split(texts, sep="\n")  # (batch, (lines))
    line_ids = model_tokenizer.tokenize(lines.flat_values)  # (lines, (pieces))
    last_lines = tf.cast(lines.row_limits() - 1, tf.int32)
    total = tf.cast(tf.shape(lines.flat_values)[0], tf.int32)
    breaks = tf.tensor_scatter_nd_update(tf.ones([total], tf.int64), last_lines[:, tf.newaxis],
                                         tf.zeros_like(last_lines, tf.int64))  # no break after a text's last line
    suffixes = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(breaks)], newline_id), breaks)
    with_breaks = tf.concat([line_ids, tf.cast(suffixes, line_ids.dtype)], axis=1)  # (lines, (pieces))
    return tf.RaggedTensor.from_row_lengths(with_breaks, lines.row_lengths()).merge_dims(1, 2)


def detokenize_lines(model_tokenizer: tensorflow_text.SentencepieceTokenizer, token_ids: tf.RaggedTensor,
                     newline_id: int) -> tf.Tensor:
    """Ids [batch, (time)] with `newline_id` as line breaks -> text [batch]; reserved ids (0 to 3) other than
    `newline_id` are dropped."""
    flat, rows = token_ids.flat_values, token_ids.value_rowids()  # (tokens,)
    newline = tf.equal(flat, newline_id)
    after_newline = tf.concat([[False], newline[:-1]], axis=0)
    row_start = tf.concat([[True], tf.not_equal(rows[1:], rows[:-1])], axis=0)
    starts = tf.logical_or(row_start, after_newline)[:tf.shape(flat)[0]]  # each line ends at its "\n"
    count = tf.reduce_sum(tf.cast(starts, tf.int64))
    line_of_token = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    lines = tf.RaggedTensor.from_value_rowids(flat, line_of_token, nrows=count)  # (lines, (tokens))
    texts = model_tokenizer.detokenize(tf.ragged.boolean_mask(lines, lines > sequence_text.END_ID))
    ends_with_break = tf.reduce_any(tf.equal(lines, newline_id), axis=1)
    texts = tf.strings.join([texts, tf.where(ends_with_break, "\n", "")])
    by_row = tf.RaggedTensor.from_value_rowids(texts, tf.boolean_mask(rows, starts), nrows=token_ids.nrows())
    return tf.strings.reduce_join(by_row, axis=1)
