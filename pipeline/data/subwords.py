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
                character_coverage: float = 1.0, byte_fallback: bool = True, seed: int = 0) -> bytes:
    """Trains a SentencePiece model on `texts` and returns it serialized.

    Numbers are split into single digits, so that any number is spelled and copied through; with
    `byte_fallback`, characters outside the model are spelled as UTF-8 bytes instead of becoming unknown.
    `vocabulary_size` is an upper bound: a small corpus may not fill it.

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
        hard_vocab_limit=False, pad_id=sequence_text.PADDING_ID, unk_id=sequence_text.UNKNOWN_ID,
        bos_id=sequence_text.START_ID, eos_id=sequence_text.END_ID,
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
