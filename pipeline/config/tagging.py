"""Config blocks of the tagging task: tagged sentences and a recurrent tagger with a character encoder."""

import dataclasses
from typing import Literal

from pipeline.config import bounds, common, warm_start


@dataclasses.dataclass(frozen=True)
class TaggingDataConfig(common.DataConfig):
    """Tagged sentences (CoNLL-U, whitespace column files, TFDS or synthetic) and their vectorization.

    Attributes:
        file_format: `conllu` (Universal Dependencies) or `columns` (token and tag per line, sentences
            separated by blank lines, CoNLL-2003 style); `auto` picks `conllu` for `.conllu` files.
        tags: Which CoNLL-U (or TFDS Universal Dependencies) column holds the tags: `upos` or `xpos`.
        token_column: 0-based column of the token in `columns` files.
        tag_column: 0-based column of the tag in `columns` files; -1 is the last column.
        vocabulary_size: Largest word vocabulary, including the padding and out-of-vocabulary tokens.
        char_vocabulary_size: Largest character vocabulary, same convention.
        max_sequence_length: Tokens kept per sentence (the first ones).
        max_word_length: Characters kept per word for the character encoder.
        lowercase: Look words up lower-cased (characters keep their case).
    """

    file_format: Literal["auto", "conllu", "columns"] = "auto"
    tags: Literal["upos", "xpos"] = "upos"
    token_column: int = 0
    tag_column: int = -1
    vocabulary_size: int = bounds.bounded(30000, minimum=3)
    char_vocabulary_size: int = bounds.bounded(300, minimum=3)
    max_sequence_length: int = bounds.bounded(256, minimum=1)
    max_word_length: int = bounds.bounded(20, minimum=1)
    lowercase: bool = True


@dataclasses.dataclass(frozen=True)
class TaggerModelConfig(warm_start.RecurrentEncoderConfig):
    """Many-to-many tagger: word embedding (+ character encoder) -> recurrent stack -> softmax per token.

    Attributes:
        bidirectional: Tagging sees both sides of each word, so bidirectional is the default.
        char_encoder: Character-level word features, so unseen words still get useful features: `cnn`
            (convolution and max-pooling over characters), `bilstm`, or `none`.
        char_embedding_dim: Size of the character embedding.
        char_units: CNN filters, or BiLSTM units per direction, of the character encoder.
        word_dropout: Probability of replacing a training word by the out-of-vocabulary token, so the
            model learns what to do with words it has never seen.
    """

    bidirectional: bool = True
    char_encoder: Literal["none", "cnn", "bilstm"] = "cnn"
    char_embedding_dim: int = bounds.bounded(32, minimum=1)
    char_units: int = bounds.bounded(32, minimum=1)
    word_dropout: float = bounds.bounded(0.0, minimum=0, exclusive_maximum=1)


SCHEMA = common.TaskSchema(data=TaggingDataConfig, model=TaggerModelConfig,
                           monitor_choices=("val_accuracy", "val_loss", "val_span_f1"),
                           scored_monitors=("val_span_f1",), has_layer_groups=True)
