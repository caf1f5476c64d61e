"""Config keys of the models whose word embedding and recurrent stack may start from trained weights: another
run's encoder (`model.initialize_from`) or a file of pretrained word vectors (`model.pretrained_embeddings`).

Sentiment and tagging model blocks subclass `RecurrentEncoderConfig`; `pipeline.warm_start` applies the keys
at the start of a fresh run.
"""

import dataclasses
from typing import Optional

from pipeline.config import common, errors


@dataclasses.dataclass(frozen=True)
class PretrainedEmbeddingsConfig:
    """Word vectors that fill the token embedding's rows before training.

    Attributes:
        path: A GloVe (`word v1 v2 ...`), word2vec text (first line `count dim`) or fastText `.vec` file,
            plain or gzip; null uses none. Only the vectors of vocabulary words are kept (exact match first,
            then, when the run lower-cases its text, the first word of the file that lower-cases to it).
            Words not found keep their random initialization.
        trainable: Fine-tune the vectors with the model; false freezes the whole embedding (also the rows
            of words not found) for the run, its resumption and its export.
    """

    path: Optional[str] = None
    trainable: bool = True

    def __post_init__(self):
        if self.path is not None and not self.path.strip():
            raise errors.ConfigError("model.pretrained_embeddings.path: must be null or a vectors file path "
                                     "(got an empty string)")
        if self.path is None and not self.trainable:
            raise errors.ConfigError("model.pretrained_embeddings.trainable: false freezes pretrained vectors; "
                                     "set model.pretrained_embeddings.path too")


@dataclasses.dataclass(frozen=True)
class RecurrentEncoderConfig(common.RecurrentConfig):
    """Embedding and recurrent stack, optionally started from trained weights.

    Attributes:
        initialize_from: A trained run directory (a language-model run, or any run whose model has a token
            embedding and a recurrent stack) whose best epoch's weights start this run: the embedding row of
            every word both vocabularies hold, and recurrent layer i from its layer i (a bidirectional
            layer's backward direction only from a bidirectional source). Applied when the run starts, not
            when it resumes; `cell`, `units` and `embedding_dim` must match the source's. null starts from
            random weights.
        pretrained_embeddings: Word vectors for the token embedding (not together with `initialize_from`).
    """

    initialize_from: Optional[str] = None
    pretrained_embeddings: PretrainedEmbeddingsConfig = PretrainedEmbeddingsConfig()

    def __post_init__(self):
        super().__post_init__()
        if self.initialize_from is not None and not self.initialize_from.strip():
            raise errors.ConfigError("model.initialize_from: must be null or a run directory (got an empty string)")
        if self.initialize_from is not None and self.pretrained_embeddings.path is not None:
            raise errors.ConfigError(
                "model.pretrained_embeddings: cannot be combined with model.initialize_from: both set the token "
                "embedding, and the run in initialize_from already holds trained word vectors (give "
                "pretrained_embeddings to that run instead, or drop one of the two keys)")

    def input_paths(self) -> dict[str, list[str]]:
        """The source run directory and the word-vectors file, when set."""
        paths = dict(super().input_paths())
        if self.initialize_from is not None:
            paths["model.initialize_from"] = [self.initialize_from]
        if self.pretrained_embeddings.path is not None:
            paths["model.pretrained_embeddings.path"] = [self.pretrained_embeddings.path]
        return paths
