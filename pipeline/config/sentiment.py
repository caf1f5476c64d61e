"""Config blocks of the sentiment task: labelled texts and a many-to-one recurrent classifier."""

import dataclasses
from typing import Literal, Optional, Union

from pipeline.config import bounds, common, errors, warm_start


@dataclasses.dataclass(frozen=True)
class TextClassificationDataConfig(common.DataConfig):
    """Labelled texts (CSV, TSV, JSONL, `label text` lines, TFDS or synthetic) and their vectorization.

    Attributes:
        file_format: File layout; `auto` picks it from the extension (a trailing .gz is ignored).
        header: CSV/TSV files start with a header row naming the columns.
        text_column: Column name (or 0-based index) of the text.
        label_column: Column name (or 0-based index) of the label.
        labels: Class names in class-index order; integer labels in files index this list. Null
            collects them from the training split (sorted; numerically when all are integers).
        vocabulary_size: Largest vocabulary, including the padding and out-of-vocabulary tokens.
        vocabulary_file: Take the vocabulary from this file instead of counting the training split: a JSON
            list (a run's `vocab/vocabulary.json`) or one token per line, most important first; its first
            `vocabulary_size` tokens are kept. With `model.initialize_from`, the source run's vocabulary
            (e.g. a language model's, counted on far more text) keeps every word it learned, words the
            labelled training split never shows included (ULMFiT's recipe). null counts the training split.
        max_sequence_length: Tokens kept per text (the first ones).
        lowercase: Lower-case text before splitting.
        strip_punctuation: Remove ASCII punctuation (and `<br />` tags) before splitting.
    """

    file_format: Literal["auto", "csv", "tsv", "jsonl", "label_text"] = "auto"
    header: bool = True
    text_column: Union[str, int] = "text"
    label_column: Union[str, int] = "label"
    labels: Optional[tuple[str, ...]] = None
    vocabulary_size: int = bounds.bounded(20000, minimum=3)
    vocabulary_file: Optional[str] = None
    max_sequence_length: int = bounds.bounded(256, minimum=1)
    lowercase: bool = True
    strip_punctuation: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.vocabulary_file is not None and not self.vocabulary_file.strip():
            raise errors.ConfigError("data.vocabulary_file: must be null or a file path (got an empty string)")
        if self.labels is None:
            return
        if len(self.labels) < 2:
            raise errors.ConfigError(f"data.labels: needs at least 2 classes (got {list(self.labels)})")
        if len(set(self.labels)) != len(self.labels):
            raise errors.ConfigError(f"data.labels: class names must be unique (got {list(self.labels)})")

    def input_paths(self) -> dict[str, list[str]]:
        """The data files, and the vocabulary file when set."""
        paths = dict(super().input_paths())
        if self.vocabulary_file is not None:
            paths["data.vocabulary_file"] = [self.vocabulary_file]
        return paths


@dataclasses.dataclass(frozen=True)
class SentimentModelConfig(warm_start.RecurrentEncoderConfig):
    """Many-to-one classifier: embedding, recurrent stack, pooling over time, softmax.

    Attributes:
        pooling: How the sequence becomes one vector: the final state (`last`), a masked `mean` or
            `max` over time, both concatenated (`mean_max`), or learned `attention` weights over time steps.
        word_dropout: Probability of replacing a training word by the out-of-vocabulary token (a
            regularizer; it also trains the out-of-vocabulary embedding).
    """

    pooling: Literal["last", "mean", "max", "mean_max", "attention"] = "last"
    word_dropout: float = bounds.bounded(0.0, minimum=0, exclusive_maximum=1)


SCHEMA = common.TaskSchema(data=TextClassificationDataConfig, model=SentimentModelConfig,
                           monitor_choices=("val_accuracy", "val_loss"), has_layer_groups=True)
