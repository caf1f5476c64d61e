"""The SentencePiece block shared by the tasks that may tokenize into subwords (translation, language model)."""

import dataclasses
from typing import Literal

from pipeline.config import bounds, errors

# Four reserved ids plus enough pieces for SentencePiece to hold every character of a small corpus.
MINIMUM_SUBWORD_VOCABULARY = 8
# Bytes as pieces of their own (byte fallback) take 256 ids; below this a vocabulary would be mostly bytes.
MINIMUM_BYTE_FALLBACK_VOCABULARY = 320


@dataclasses.dataclass(frozen=True)
class SentencepieceConfig:
    """How the SentencePiece models of `data.tokenizer: sentencepiece` are trained (on the training split).

    Attributes:
        model_type: `unigram` (SentencePiece's default) or `bpe` (byte-pair merges).
        character_coverage: Share of the training characters the model covers with pieces of their own;
            the rarest others are spelled as UTF-8 bytes (byte fallback), so no text is ever unknown.
            1.0 suits alphabets; 0.9995 is SentencePiece's advice for Chinese or Japanese.
        byte_fallback: Spell characters the model does not hold as UTF-8 bytes (256 pieces), so that no
            input is unknown and names in rare scripts are copied through; false maps them to unknown.
        shared: One model for both sides, trained on sources and targets together (needs
            `data.source_vocabulary_size == data.target_vocabulary_size`); false trains one per side.
        input_sentence_size: Most sentences per side the trainer reads: a seeded sample of the training
            split, so training the model on a large corpus takes bounded time and memory; 0 reads them all.
    """

    model_type: Literal["unigram", "bpe"] = "unigram"
    character_coverage: float = bounds.bounded(1.0, exclusive_minimum=0, maximum=1)
    byte_fallback: bool = True
    shared: bool = False
    input_sentence_size: int = bounds.bounded(1000000, minimum=0)

    def __post_init__(self):
        bounds.check(self, "data.sentencepiece")

    def check_vocabulary_size(self, size: int, key: str) -> None:
        """Raises ConfigError when a vocabulary of `size` pieces cannot hold the reserved ids (and bytes)."""
        minimum, reason = MINIMUM_SUBWORD_VOCABULARY, "SentencePiece"
        if self.byte_fallback:
            minimum, reason = MINIMUM_BYTE_FALLBACK_VOCABULARY, "data.sentencepiece.byte_fallback: true"
        if size < minimum:
            raise errors.ConfigError(f"{key}: must be >= {minimum} with {reason} (got {size})")
