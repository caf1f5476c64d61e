"""Sentence pairs for translation: TSV pairs, line-aligned files, TFDS or synthetic data, and their vectors.

Readers return raw strings; the tf.data pipeline below turns them into `encoder_token_ids`,
`decoder_token_ids` (the target shifted right behind the start token) and labels (the target followed by
the end token), with 0 as padding. `pipeline.data.sequence_text` holds the reserved tokens and the
standardization and detokenization, core TensorFlow ops that the exported SavedModel runs too.
"""

import dataclasses
import functools
import itertools
import logging
import os
import typing

import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline.data import files
from pipeline.data import text_files
from pipeline.data import sequence_text
from pipeline.data import sources as sources_lib
from pipeline.data import splits as splits_lib
from pipeline.data import synthetic
from pipeline.data import tfds_source

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Pairs:
    """One split of sentence pairs.

    Attributes:
        sources: Raw source sentences.
        targets: Raw target sentences (the references of BLEU and chrF), aligned with `sources`.
        origin: Where they came from, for messages.
        skipped_rows: Malformed pairs skipped while reading (`data.on_bad_rows: skip`).
    """

    sources: list[str]
    targets: list[str]
    origin: str
    skipped_rows: int = 0

    def __len__(self) -> int:
        return len(self.sources)


@dataclasses.dataclass(frozen=True)
class ParallelSplits(splits_lib.SplitSet):
    """Train, validation and (optionally) test pairs."""


# === Readers ===


def _bad_pair(path: str, line: int, reason: str, on_bad_rows: str) -> None:
    if on_bad_rows != "skip":
        raise files.DataError(text_files.located(path, line, reason))


def read_tsv_pairs(path: str, *, on_bad_rows: str = "error") -> Pairs:
    """Reads `source<TAB>target[<TAB>anything]` lines (the Tatoeba/ManyThings layout), plain or gzip.

    Blank lines are ignored. The first pair sets the number of fields (two, or more with an attribution
    column); lines with another number of fields (a stray tab would cut a sentence short), an empty
    side or invalid UTF-8 are malformed: the first stops reading (`on_bad_rows="error"`) or each is
    skipped and counted ("skip").

    Raises:
        files.DataError: `path:line: reason` for a malformed line, or a missing file.
    """
    return _collect(iter_tsv_pairs(path, on_bad_rows=on_bad_rows), path)


def iter_tsv_pairs(path: str, *, on_bad_rows: str = "error") -> typing.Iterator[typing.Optional[tuple[str, str]]]:
    """`read_tsv_pairs` one line at a time: (source, target) per pair, None per skipped malformed line."""
    width = None  # (fields, line) of the first well-formed pair
    for line in text_files.read_lines(path):
        text = line.text.rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split("\t")
        if line.decode_problem:
            problem = line.decode_problem
        elif len(fields) < 2:
            problem = "expected source<TAB>target, found no tab"
        elif width is not None and len(fields) != width[0]:
            problem = (f"{len(fields)} tab-separated fields, but line {width[1]} has {width[0]}: "
                       "a sentence holds a tab or a field is missing")
        elif not fields[0].strip() or not fields[1].strip():
            problem = f"empty {'source' if not fields[0].strip() else 'target'} sentence"
        else:
            width = width or (len(fields), line.number)
            yield fields[0].strip(), fields[1].strip()
            continue
        _bad_pair(path, line.number, problem, on_bad_rows)
        yield None


def read_aligned_pairs(source_path: str, target_path: str, *, on_bad_rows: str = "error") -> Pairs:
    """Reads two line-aligned files (Multi30k layout, plain or gzip): line i of one translates line i of the other.

    A line pair where either side is blank or not UTF-8 is malformed (error or skip as in
    `read_tsv_pairs`; the message names the file and line).

    Raises:
        files.DataError: The files have different numbers of lines (the message names both files and
            both counts), a file is missing, or a line pair is malformed under `on_bad_rows="error"`.
    """
    return _collect(iter_aligned_pairs(source_path, target_path, on_bad_rows=on_bad_rows),
                    f"{source_path} -> {target_path}")


def iter_aligned_pairs(source_path: str, target_path: str, *,
                       on_bad_rows: str = "error") -> typing.Iterator[typing.Optional[tuple[str, str]]]:
    """`read_aligned_pairs` one line pair at a time: (source, target), or None per skipped malformed pair."""
    source_count = target_count = 0
    for source_line, target_line in itertools.zip_longest(text_files.read_lines(source_path),
                                                          text_files.read_lines(target_path)):
        source_count += source_line is not None
        target_count += target_line is not None
        if source_line is None or target_line is None:
            continue  # Keep counting the longer file for the error below.
        bad = [(path, line, line.decode_problem or "empty line") for path, line in
               ((source_path, source_line), (target_path, target_line))
               if line.decode_problem or not line.text.strip()]
        if bad:
            path, line, reason = bad[0]
            _bad_pair(path, line.number, f"{reason} (line pair {line.number} of the aligned files)", on_bad_rows)
            yield None
            continue
        yield source_line.text.strip(), target_line.text.strip()
    if source_count != target_count:
        raise files.DataError(
            f"misaligned files: {source_path} has {source_count} lines but {target_path} has {target_count}; "
            "aligned files must have the same number of lines")


def _collect(pairs: typing.Iterator[typing.Optional[tuple[str, str]]], origin: str) -> Pairs:
    sources, targets, skipped = [], [], 0
    for pair in pairs:
        if pair is None:
            skipped += 1
            continue
        sources.append(pair[0])
        targets.append(pair[1])
    files.log_skipped(origin, skipped, "pairs")
    return Pairs(sources=sources, targets=targets, origin=origin, skipped_rows=skipped)


@dataclasses.dataclass(frozen=True)
class StreamedPairs:
    """A training split read from its files on every pass and never held in memory (`data.cache: false`).

    Attributes:
        pairs: Iterator factory: every call reads the files again from the start, (source, target) per
            pair or None per skipped malformed one (`data.on_bad_rows: skip`; logged at the end of a pass).
        origin: Where the pairs come from, for messages.
        skipped_rows: 0: skips are counted per pass, in the log.
    """

    pairs: typing.Callable[[], typing.Iterator[typing.Optional[tuple[str, str]]]]
    origin: str
    skipped_rows: int = 0

    def read(self) -> typing.Iterator[tuple[str, str]]:
        """One pass over the well-formed pairs."""
        return files.without_skipped(self.pairs(), self.origin, "pairs")

    @property
    def sources(self) -> typing.Iterator[str]:
        return (source for source, _ in self.read())

    @property
    def targets(self) -> typing.Iterator[str]:
        return (target for _, target in self.read())


def language_pair(data_config: config_lib.TranslationDataConfig) -> tuple[typing.Optional[str], typing.Optional[str]]:
    """The (source, target) language codes: as configured, else from a TFDS name such as `pt_to_en`."""
    source, target = data_config.source_language, data_config.target_language
    data_source = sources_lib.parse(data_config.source)
    if data_source.kind == "tfds" and None in (source, target):
        inferred = config_lib.tfds_language_pair(data_source.name)
        source, target = source or inferred[0], target or inferred[1]
    return source, target


# === Splits ===


def load_splits(data_config: config_lib.TranslationDataConfig, seed: int) -> ParallelSplits:
    """Reads every split and carves a seeded validation split from train when none is given.

    Raises:
        files.DataError: Malformed or misaligned files, a missing TFDS feature, or no training pairs.
    """
    splits = sources_lib.load_splits(data_config, seed, read_files=_file_splits, read_tfds=_tfds_splits,
                                     generate=_generate)
    if isinstance(splits.get("train"), StreamedPairs):
        if next(splits["train"].read(), None) is None:
            raise files.DataError(f"{data_config.source}: the training split has no sentence pairs")
        logger.info("train: sentence pairs streamed from %s (data.cache: false)", splits["train"].origin)
    else:
        splits_lib.require_training_examples(splits, data_config.source, "sentence pairs")
        splits = splits_lib.with_validation(splits, data_config.validation_fraction, seed, _take)
    for split_name, split in splits.items():
        if isinstance(split, Pairs):
            logger.info("%s: %d sentence pairs from %s", split_name, len(split.sources), split.origin)
    return ParallelSplits(splits=splits)


def _file_splits(data_config) -> dict[str, Pairs]:
    source_language, target_language = language_pair(data_config)
    placeholder = config_lib.LANGUAGE_PLACEHOLDER
    result = {}
    for split_name, path in sources_lib.split_paths(data_config).items():
        if isinstance(path, config_lib.ParallelFiles):
            origin = f"{path.source} -> {path.target}"
            pairs = functools.partial(iter_aligned_pairs, _existing(path.source, f"data.{split_name}.source"),
                                      _existing(path.target, f"data.{split_name}.target"),
                                      on_bad_rows=data_config.on_bad_rows)
        elif placeholder in path:
            source_path, target_path = path.replace(placeholder, source_language), path.replace(placeholder,
                                                                                                target_language)
            origin = f"{source_path} -> {target_path}"
            pairs = functools.partial(iter_aligned_pairs, source_path, target_path, on_bad_rows=data_config.on_bad_rows)
        else:
            origin, pairs = path, functools.partial(iter_tsv_pairs, path, on_bad_rows=data_config.on_bad_rows)
        streamed = split_name == "train" and not data_config.cache
        result[split_name] = StreamedPairs(pairs, origin) if streamed else _collect(pairs(), origin)
    return result


def _existing(path: str, key: str) -> str:
    """`path`, or a DataError naming the config key of the missing side."""
    if not os.path.exists(path):
        raise files.DataError(f"{key}: file not found: {path}")
    return path


def _generate(count: int, seed: int, origin: str) -> Pairs:
    sources, targets = synthetic.translation_examples(count, seed=seed)
    return Pairs(sources=sources, targets=targets, origin=origin)


def _tfds_splits(name: str, data_config) -> dict[str, Pairs]:
    """TFDS translation sets whose features are named by language code (`ted_hrlr_translate`, `wmt14_translate`)."""
    source_language, target_language = language_pair(data_config)
    builder = tfds_source.prepared_builder(name, data_config.tfds_data_dir)
    features = list(builder.info.features)
    for language in (source_language, target_language):
        if language not in features:
            raise files.DataError(f"tfds:{name}: no feature {language!r}; its features are {features} "
                                  "(set data.source_language and data.target_language to two of them)")
    result = {}
    for split_name, examples in tfds_source.split_examples(builder, sources_lib.SPLITS):
        sources, targets, skipped = [], [], 0
        for example in examples:
            source = example[source_language].decode("utf-8").strip()
            target = example[target_language].decode("utf-8").strip()
            if not source or not target:
                _bad_pair(f"tfds:{name}/{split_name}", len(sources) + skipped + 1, "empty sentence",
                          data_config.on_bad_rows)
                skipped += 1
                continue
            sources.append(source)
            targets.append(target)
        result[split_name] = Pairs(sources=sources, targets=targets, skipped_rows=skipped,
                                   origin=f"tfds:{name}/{split_name} ({source_language} -> {target_language})")
    return result


def _take(split: Pairs, rows: np.ndarray, origin: str, skipped: int) -> Pairs:
    return Pairs(sources=[split.sources[row] for row in rows], targets=[split.targets[row] for row in rows],
                 origin=origin, skipped_rows=skipped)


# === tf.data ===


def pair_dataset(split: typing.Union[Pairs, StreamedPairs],
                 encode_source: typing.Callable[[tf.Tensor], tf.RaggedTensor],
                 encode_target: typing.Callable[[tf.Tensor, tf.Tensor], tf.RaggedTensor]) -> tf.data.Dataset:
    """Vectorizes pairs in batches into (features, labels) examples of 1-D int32 tensors.

    Features: `encoder_token_ids` (source ids), `decoder_token_ids` ([START] + target ids), and the raw
    `source_text` and `target_text` strings (the references of BLEU/chrF; the model ignores them).
    Labels: target ids + [END].

    Args:
        split: The pairs; `StreamedPairs` are read from their files on every pass.
        encode_source: Raw strings [batch] -> ragged source ids [batch, (time)].
        encode_target: Raw target strings [batch] and their raw sources [batch] -> ragged target ids
            [batch, (time)] without start/end tokens.
    """
    if isinstance(split, StreamedPairs):
        pairs = tf.data.Dataset.from_generator(split.read, output_signature=(tf.TensorSpec([], tf.string),) * 2)
    else:
        sources = tf.constant(split.sources, dtype=tf.string) if split.sources else tf.zeros([0], tf.string)
        targets = tf.constant(split.targets, dtype=tf.string) if split.targets else tf.zeros([0], tf.string)
        pairs = tf.data.Dataset.from_tensor_slices((sources, targets))

    def vectorize(sources, targets):
        decoder_token_ids, labels = sequence_text.teacher_forcing(encode_target(targets, sources))  # (batch, (time))
        return ({"encoder_token_ids": encode_source(sources), "decoder_token_ids": decoder_token_ids,
                 "source_text": sources, "target_text": targets}, labels)

    dataset = pairs.batch(1024).map(vectorize).unbatch()
    # Unbatched ragged rows become plain tensors so that they can be padded and bucketed.
    return dataset.map(lambda features, labels: (
        {key: tf.convert_to_tensor(value) for key, value in features.items()}, tf.convert_to_tensor(labels)))


def read_labelled_file(data_config: config_lib.TranslationDataConfig, path: str) -> Pairs:
    """Sentence pairs from one TSV file, or from aligned files when `path` contains `{language}`."""
    placeholder = config_lib.LANGUAGE_PLACEHOLDER
    if placeholder not in path:
        return read_tsv_pairs(path, on_bad_rows=data_config.on_bad_rows)
    source_language, target_language = language_pair(data_config)
    if None in (source_language, target_language):
        raise files.DataError(f"{path}: aligned files need data.source_language and data.target_language")
    return read_aligned_pairs(path.replace(placeholder, source_language), path.replace(placeholder, target_language),
                              on_bad_rows=data_config.on_bad_rows)
