"""Config blocks of the translation task: sentence pairs and an attentional encoder-decoder."""

import dataclasses
from typing import Literal, Optional, Union

from pipeline.config import bounds, common, errors, subwords

LANGUAGE_PLACEHOLDER = "{language}"


def tfds_language_pair(name: str) -> Optional[tuple[str, str]]:
    """Source and target language codes from a TFDS translation config name, e.g. `pt_to_en`, `de-en`."""
    config_name = name.rpartition("/")[2]
    for separator in ("_to_", "-"):
        source, found, target = config_name.partition(separator)
        if found and source.isalpha() and target.isalpha():
            return source, target
    return None


@dataclasses.dataclass(frozen=True)
class ParallelFiles:
    """One split as two line-aligned files named separately, so that each side may live anywhere.

    Attributes:
        source: File of source sentences, plain or gzip.
        target: File of target sentences: line i translates line i of `source`.
    """

    source: Optional[str] = None
    target: Optional[str] = None


SplitFiles = Union[str, ParallelFiles, None]


@dataclasses.dataclass(frozen=True)
class TranslationDataConfig(common.DataConfig):
    """Sentence pairs (TSV pairs, line-aligned files, TFDS or synthetic) and their vectorization.

    Attributes:
        train: Training pairs (source `files`): one TSV file, one aligned-files path containing
            `{language}`, or `{source: PATH, target: PATH}` naming the two aligned files separately.
        validation: Validation pairs, in the same forms; null carves `validation_fraction` of train.
        test: Test pairs, in the same forms; null skips the test split.
        file_format: `tsv`: `source<TAB>target[<TAB>anything]` per line (Tatoeba/ManyThings);
            `aligned`: one file per language and split, line i of one translating line i of the other,
            each split given as one path containing `{language}` (e.g. `train.{language}.gz`);
            `auto`: `aligned` when the train path contains `{language}`, else `tsv`.
        source_language: Language code of the source side: fills `{language}` in aligned paths and
            names the TFDS feature; null takes it from a TFDS name such as `pt_to_en` or `de-en`.
        target_language: Language code of the target side, same rules.
        tokenizer: `words`: words and punctuation split by rules, the most frequent kept, the rest
            out-of-vocabulary; `sentencepiece`: subwords of a SentencePiece model trained on the training
            split (`data.sentencepiece`), which spell every word, so nothing is out-of-vocabulary.
        sentencepiece: Training settings of the SentencePiece models (`tokenizer: sentencepiece`).
        source_vocabulary_size: Largest source vocabulary, including padding and out-of-vocabulary (with
            SentencePiece: the most pieces, reserved ones included; a small corpus may yield fewer).
        target_vocabulary_size: Largest target vocabulary, including padding, out-of-vocabulary,
            start and end tokens (with SentencePiece: the most pieces, as for the source).
        max_source_length: Source tokens kept per sentence (the first ones).
        max_target_length: Target tokens kept per sentence (before the start/end token is added).
        lowercase: Lower-case both sides (the model then never sees case, and outputs lower case).
        strip_punctuation: Remove punctuation; by default it is kept, split off as separate tokens
            (`dog.` -> `dog .`) and glued back on output, which scores better in BLEU (`words` only:
            SentencePiece keeps the text as it is).
        copy_numbers: Replace each run of digits in a source by one placeholder piece for the model, and
            the translation's k-th placeholder by the source's k-th run of digits, so that numbers come
            through exactly however rare they are in training (`sentencepiece` only; the targets' digit
            runs that their source also holds become placeholders in training).
    """

    train: SplitFiles = None
    validation: SplitFiles = None
    test: SplitFiles = None
    file_format: Literal["auto", "tsv", "aligned"] = "auto"
    tokenizer: Literal["words", "sentencepiece"] = "words"
    sentencepiece: subwords.SentencepieceConfig = subwords.SentencepieceConfig()
    source_language: Optional[str] = None
    target_language: Optional[str] = None
    source_vocabulary_size: int = bounds.bounded(10000, minimum=3)
    target_vocabulary_size: int = bounds.bounded(10000, minimum=5)
    max_source_length: int = bounds.bounded(50, minimum=1)
    max_target_length: int = bounds.bounded(50, minimum=1)
    lowercase: bool = True
    strip_punctuation: bool = False
    copy_numbers: bool = False

    def __post_init__(self):
        super().__post_init__()
        for key in ("source_language", "target_language"):
            value = getattr(self, key)
            if value is not None and (not value.strip() or "/" in value or "{" in value):
                raise errors.ConfigError(f"data.{key}: must be a language code such as 'de' (got {value!r})")
        if self.source_language is not None and self.source_language == self.target_language:
            raise errors.ConfigError(f"data.target_language: must differ from data.source_language "
                                     f"(both {self.source_language!r})")
        self._check_sentencepiece()
        kind, _, name = self.source.partition(":")
        if kind == "files":
            self._check_file_layout()
            if not self.cache and self.validation is None:
                raise errors.ConfigError("data.validation: required with data.cache: false (the training pairs "
                                         "are streamed from their files, never held, so no validation split "
                                         "can be carved from them)")
        elif kind == "tfds" and None in (self.source_language, self.target_language):
            if tfds_language_pair(name) is None:
                raise errors.ConfigError(f"data.source_language: required for {self.source!r}, whose name does "
                                         "not tell the languages (set data.source_language and "
                                         "data.target_language to its feature names)")

    def input_paths(self) -> dict[str, list[str]]:
        """The split files: an aligned split's path names one file per language; separate files one per side."""
        if self.source != "files":
            return {}
        paths = {}
        for name in ("train", "validation", "test"):
            value = getattr(self, name)
            if isinstance(value, ParallelFiles):
                paths.update({f"data.{name}.{side}": [getattr(value, side)] for side in ("source", "target")
                              if getattr(value, side) is not None})
            elif value is not None and LANGUAGE_PLACEHOLDER in value:
                paths[f"data.{name}"] = [value.replace(LANGUAGE_PLACEHOLDER, language)
                                         for language in (self.source_language, self.target_language)]
            elif value is not None:
                paths[f"data.{name}"] = [value]
        return paths

    def _check_sentencepiece(self) -> None:
        if self.tokenizer != "sentencepiece":
            if self.copy_numbers:
                raise errors.ConfigError("data.copy_numbers: only for data.tokenizer: sentencepiece (its "
                                         "placeholder is one SentencePiece piece)")
            return
        if self.strip_punctuation:
            raise errors.ConfigError("data.strip_punctuation: only for data.tokenizer: words (SentencePiece "
                                     "keeps the text as it is)")
        if self.sentencepiece.shared and self.source_vocabulary_size != self.target_vocabulary_size:
            raise errors.ConfigError(
                f"data.target_vocabulary_size: must equal data.source_vocabulary_size with "
                f"data.sentencepiece.shared: true (one model serves both sides; got "
                f"{self.source_vocabulary_size} and {self.target_vocabulary_size})")
        for key in ("source_vocabulary_size", "target_vocabulary_size"):
            self.sentencepiece.check_vocabulary_size(getattr(self, key), f"data.{key}")

    def _check_file_layout(self) -> None:
        paths = {split_name: getattr(self, split_name) for split_name in ("train", "validation", "test")}
        first_path = next((path for path in paths.values() if isinstance(path, str)), "")
        aligned = self.file_format == "aligned" or (
            self.file_format == "auto" and LANGUAGE_PLACEHOLDER in first_path)
        needs_languages = False
        for split_name, path in paths.items():
            if isinstance(path, ParallelFiles):
                self._check_parallel_files(split_name, path)
            elif path is not None and (LANGUAGE_PLACEHOLDER in path) != aligned:
                raise errors.ConfigError(
                    f"data.{split_name}: aligned files are given as one path containing '{LANGUAGE_PLACEHOLDER}' "
                    f"(e.g. train.{LANGUAGE_PLACEHOLDER}.gz) and TSV files without it; got {path!r} with "
                    f"data.file_format {self.file_format!r}")
            else:
                needs_languages = needs_languages or (path is not None and aligned)
        if needs_languages:
            for key in ("source_language", "target_language"):
                if getattr(self, key) is None:
                    raise errors.ConfigError(f"data.{key}: required for aligned files (it replaces "
                                             f"'{LANGUAGE_PLACEHOLDER}' in the paths), e.g. 'de'")

    def _check_parallel_files(self, split_name: str, files: ParallelFiles) -> None:
        for side in ("source", "target"):
            if not getattr(files, side):
                raise errors.ConfigError(f"data.{split_name}.{side}: required: the file of the {split_name} "
                                         f"split's {side} sentences (or give data.{split_name} as one path)")
        if self.file_format == "tsv":
            raise errors.ConfigError(f"data.file_format: 'tsv' takes one file per split, but data.{split_name} "
                                     "names source and target files; use 'auto' or 'aligned'")


@dataclasses.dataclass(frozen=True)
class Seq2SeqModelConfig(common.RecurrentConfig):
    """Encoder-decoder translator: recurrent encoder, recurrent decoder with attention, in-graph decoding.

    `cell`, `units`, `layers` and `dropout` apply to both encoder and decoder; `bidirectional` to the
    encoder only (the decoder generates left to right).

    Attributes:
        attention: How each decoder step reads the encoder outputs: `bahdanau` (additive scores),
            `luong` (multiplicative "general" scores), or `none` (the encoder's final state only).
        label_smoothing: Share of the target probability spread evenly over the vocabulary in the loss.
        decoding: Decoding of the `serving_default` signature and of BLEU/chrF in evaluation:
            `beam`, `greedy`, or `sample` (evaluation then uses greedy).
        beam_size: Hypotheses kept per input by beam search.
        length_penalty: GNMT length-normalization exponent of beam search; 0 ranks by log-probability.
        temperature: Softmax temperature of `serving_default` when `decoding` is `sample`.
        max_decode_length: Most generated tokens (end token included); null uses
            `data.max_target_length + 1`.
    """

    attention: Literal["bahdanau", "luong", "none"] = "bahdanau"
    label_smoothing: float = bounds.bounded(0.0, minimum=0, exclusive_maximum=1)
    decoding: Literal["beam", "greedy", "sample"] = "beam"
    beam_size: int = bounds.bounded(4, minimum=1)
    length_penalty: float = bounds.bounded(0.6, minimum=0)
    temperature: float = bounds.bounded(1.0, exclusive_minimum=0)
    max_decode_length: Optional[int] = bounds.bounded(None, minimum=1)

    def check_with_data(self, data: common.DataConfig) -> None:
        if isinstance(data, TranslationDataConfig):
            self._check_decode_length("max_target_length", data.max_target_length, "targets")

    def _check_decode_length(self, length_key: str, length: int, sequences: str) -> None:
        """Training never sees sequences longer than the data's `length_key`, so decoding stops by twice that."""
        limit = 2 * length
        if self.max_decode_length is not None and self.max_decode_length > limit:
            raise errors.ConfigError(f"model.max_decode_length: must be <= 2 x data.{length_key} = {limit} "
                                     f"(got {self.max_decode_length}); training never sees longer {sequences}")


SCHEMA = common.TaskSchema(data=TranslationDataConfig, model=Seq2SeqModelConfig,
                           monitor_choices=("val_loss", "val_accuracy", "val_bleu", "val_chrf"),
                           scored_monitors=("val_bleu", "val_chrf"))
