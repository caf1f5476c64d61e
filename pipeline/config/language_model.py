"""Config blocks of the language-model task: a text stream, a next-token predictor, truncated backpropagation."""

import dataclasses
from typing import Literal, Union

from pipeline.config import bounds, common, errors, subwords

TextFiles = Union[str, tuple[str, ...], None]


@dataclasses.dataclass(frozen=True)
class LanguageModelDataConfig(common.DataConfig):
    """Text (files, TFDS or synthetic) read as one stream of characters or words.

    Attributes:
        train: Training text: a file, a glob pattern (`books/*.txt.gz`) or a list of them, plain or gzip,
            read in order as one stream.
        file_format: How files are read: `text` (every line is a line of the stream), or one column of a
            `tsv` (unquoted), `csv` or `jsonl` file, each record one line of the stream (line breaks inside
            a record become spaces). `auto` picks it per file from the extension, a trailing .gz ignored:
            .tsv/.tab, .csv, .jsonl/.ndjson; .txt and any other extension are `text`.
        text_column: Column name (or 0-based index; JSON Lines: key) of the text in tsv/csv/jsonl files.
        header: TSV/CSV files start with a header row naming the columns.
        validation: Held-out text, same forms; null holds out the last `validation_fraction` of train.
        test: Test text, same forms; null skips the test split.
        level: `char` predicts the next character; `word` the next word (punctuation and line breaks are
            tokens of their own); `sentencepiece` the next subword of a SentencePiece model trained on the
            training lines (`sentencepiece`), tokenized and detokenized inside the export by TF Text, line
            breaks tokens of their own.
        sentencepiece: Training settings of the SentencePiece model (`level: sentencepiece`; one model,
            so `shared` does not apply).
        vocabulary_size: Largest vocabulary, including padding, out-of-vocabulary and line-break tokens;
            the most frequent training tokens are kept (SentencePiece: the most pieces).
        lowercase: Lower-case the text first.
        cache: Read the training files once and hold their token ids in memory. False streams them (source
            `files`): every pass reads and tokenizes the files again, the vocabulary is counted in one pass,
            and memory stays bounded whatever their size; `data.validation` and `train.steps_per_epoch` are
            then required, and `shuffle_buffer` bounds the shuffling of `train.carry_state: false` windows.
        strip_punctuation: `level: word` only: standardize as the sentiment task does (`<br />` tags
            become spaces, apostrophes are removed, other ASCII punctuation becomes a space), then split
            on whitespace, line breaks kept as tokens. With the same `lowercase`, the words are exactly
            those a sentiment classifier reads, so its embedding and recurrent layers can start from this
            model's. False splits punctuation off as tokens of its own.
    """

    train: TextFiles = None
    validation: TextFiles = None
    test: TextFiles = None
    file_format: Literal["auto", "text", "tsv", "csv", "jsonl"] = "auto"
    text_column: Union[str, int] = "text"
    header: bool = True
    level: Literal["char", "word", "sentencepiece"] = "char"
    sentencepiece: subwords.SentencepieceConfig = subwords.SentencepieceConfig()
    vocabulary_size: int = bounds.bounded(10000, minimum=4)
    lowercase: bool = False
    cache: bool = True
    strip_punctuation: bool = False

    def __post_init__(self):
        super().__post_init__()
        for split_name in ("train", "validation", "test"):
            paths = getattr(self, split_name)
            items = paths if isinstance(paths, tuple) else (paths,)
            if paths is not None and not (items and all(items)):
                raise errors.ConfigError(f"data.{split_name}: expected a path, a glob pattern or a non-empty "
                                         f"list of them (got {paths!r})")
        if self.source == "files" and not self.cache and self.validation is None:
            raise errors.ConfigError("data.validation: required with data.cache: false (the training text is "
                                     "streamed from its files, never held, so no validation part can be held "
                                     "out of it)")
        if isinstance(self.text_column, int) and self.text_column < 0:
            raise errors.ConfigError(f"data.text_column: must be a column name or a 0-based index >= 0 "
                                     f"(got {self.text_column})")
        if self.file_format == "jsonl" and isinstance(self.text_column, int):
            raise errors.ConfigError(f"data.text_column: JSON Lines records are objects, so the text column is "
                                     f"a key name, not an index (got {self.text_column})")
        if self.strip_punctuation and self.level != "word":
            raise errors.ConfigError(f"data.strip_punctuation: only for data.level: word (level is "
                                     f"{self.level!r}); {self.level} tokens keep the punctuation")
        if self.level == "sentencepiece":
            if self.sentencepiece.shared:
                raise errors.ConfigError("data.sentencepiece.shared: a language model has one SentencePiece "
                                         "model; set it to false")
            self.sentencepiece.check_vocabulary_size(self.vocabulary_size, "data.vocabulary_size")


@dataclasses.dataclass(frozen=True)
class LanguageModelConfig(common.RecurrentConfig):
    """Next-token predictor: embedding -> unidirectional recurrent layers -> softmax over the vocabulary.

    Attributes:
        decoding: Decoding of the export's `serving_default` signature: `sample`, `greedy` or `beam`.
        temperature: Softmax temperature of `serving_default` when `decoding` is `sample`.
        top_k: Sample only among the `top_k` most probable tokens; 0 keeps all.
        beam_size: Hypotheses kept by beam search.
        max_generate_length: Most tokens generated after the prompt.
        stop_at_newline: End a generation at the first line break (for one-sentence-per-line corpora);
            false always generates `max_generate_length` tokens.
    """

    decoding: Literal["sample", "greedy", "beam"] = "sample"
    temperature: float = bounds.bounded(0.8, exclusive_minimum=0)
    top_k: int = bounds.bounded(0, minimum=0)
    beam_size: int = bounds.bounded(4, minimum=1)
    max_generate_length: int = bounds.bounded(200, minimum=1)
    stop_at_newline: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.bidirectional:
            raise errors.ConfigError("model.bidirectional: must be false; a language model reads left to right")


@dataclasses.dataclass(frozen=True)
class LanguageModelTrainConfig(common.TrainConfig):
    """Optimisation settings of a language model: TrainConfig plus how backpropagation is truncated.

    The text is one long stream, so how far gradients reach back is a training choice, not a data one:
    both keys change what the optimizer sees, and neither changes the data, the vocabulary or the model.

    Attributes:
        monitor: `val_loss` (mean cross-entropy per token, the log of the perplexity) or `val_perplexity`.
        tbptt_steps: Tokens per training chunk: gradients flow back through at most this many steps.
        carry_state: Truncated backpropagation through time: the stream is laid out in `batch_size`
            rows read in consecutive chunks, each row's final recurrent state starts the same row of the
            next batch (reset at every epoch), and gradients stop at chunk boundaries. False trains on
            independent, shuffled chunks of `tbptt_steps` tokens, each from a zero state.
        sampled_softmax: Classes sampled per training step for a sampled softmax (drawn log-uniformly over
            the vocabulary, which is sorted by frequency; seeded, so reruns and resumed runs draw the same),
            in place of the full softmax over the vocabulary: training costs O(this) instead of O(vocabulary)
            per token, and the training `loss` is an estimate. Validation, test, perplexity and generation
            always use the full softmax. Must be below `data.vocabulary_size`; 0 trains on the full softmax.
    """

    monitor: str = "val_loss"
    tbptt_steps: int = bounds.bounded(100, minimum=1)
    carry_state: bool = True
    sampled_softmax: int = bounds.bounded(0, minimum=0)

    def check_with_data(self, data: common.DataConfig) -> None:
        if data.source == "files" and not data.cache and self.steps_per_epoch is None:
            raise errors.ConfigError("train.steps_per_epoch: required with data.cache: false (a streamed "
                                     "training text has no length known in advance)")
        vocabulary_size = getattr(data, "vocabulary_size", None)
        if self.sampled_softmax and vocabulary_size is not None and self.sampled_softmax >= vocabulary_size - 1:
            raise errors.ConfigError(
                f"train.sampled_softmax: must be below the vocabulary's {vocabulary_size - 1} non-padding tokens "
                f"(data.vocabulary_size: {vocabulary_size}; got {self.sampled_softmax}); 0 trains on the full "
                "softmax")

    def check_with_runtime(self, runtime: common.RuntimeConfig) -> None:
        if runtime.jit_compile and self.sampled_softmax:
            raise errors.ConfigError("train.sampled_softmax: not with runtime.jit_compile (XLA cannot compile "
                                     "the removal of sampled classes that are a position's own label); set one "
                                     "of them off")
        if runtime.distribution != "none" and self.carry_state:
            raise errors.ConfigError(
                f"train.carry_state: not supported with runtime.distribution: {runtime.distribution} "
                "(each replica would see a different share of the rows whose state is carried); "
                "set train.carry_state: false")


SCHEMA = common.TaskSchema(data=LanguageModelDataConfig, model=LanguageModelConfig,
                           monitor_choices=("val_loss", "val_perplexity"), train=LanguageModelTrainConfig)
