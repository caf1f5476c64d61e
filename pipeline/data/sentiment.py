"""Labelled texts for many-to-one classification: splits from files, TFDS or synthetic data, as tf.data."""

import dataclasses
import logging
import typing

import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline.data import files
from pipeline.data import sources as sources_lib
from pipeline.data import splits as splits_lib
from pipeline.data import synthetic
from pipeline.data import tfds_source

logger = logging.getLogger(__name__)

# TFDS data sets whose text feature is not called `text`.
_TFDS_TEXT_FEATURES = {"glue/sst2": "sentence"}


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: raw texts and class indices.

    Attributes:
        texts: Raw (unstandardized) texts.
        labels: Class indices, int32 [examples].
        origin: Where the split came from, for messages.
        skipped_rows: Malformed rows skipped while reading (explicit skip policy).
    """

    texts: list[str]
    labels: np.ndarray
    origin: str
    skipped_rows: int = 0

    def __len__(self) -> int:
        return len(self.texts)


@dataclasses.dataclass(frozen=True)
class LabeledSplits(splits_lib.SplitSet):
    """Train, validation and (optionally) test splits sharing one list of class names."""

    label_names: tuple[str, ...]


def load_splits(data_config: config_lib.TextClassificationDataConfig, seed: int) -> LabeledSplits:
    """Reads every split named by the data config, maps labels to indices and carves validation if needed.

    Raises:
        files.DataError: Malformed files, unknown labels, or an empty training split.
    """
    raw = sources_lib.load_splits(data_config, seed, read_files=_file_splits, read_tfds=_tfds_splits,
                                  generate=_generate)
    if "train" not in raw:
        raise files.DataError(f"{data_config.source}: there is no training split")
    if not raw["train"].texts:
        raise files.DataError(f"{raw['train'].source}: the training split has no examples")
    _refuse_comma_separated_labels(raw["train"], data_config.file_format)
    label_names = _label_names(data_config.labels, raw["train"])
    indices_allowed = data_config.labels is not None
    splits = {split_name: _index_labels(read, label_names, split_name, indices_allowed, data_config.file_format)
              for split_name, read in raw.items()}
    splits = splits_lib.with_validation(splits, data_config.validation_fraction, seed, _take)
    for split_name, split in splits.items():
        logger.info("%s: %d examples from %s", split_name, len(split.texts), split.origin)
        files.log_skipped(split.origin, split.skipped_rows, "rows")
    return LabeledSplits(splits=splits, label_names=label_names)


def _generate(count: int, seed: int, origin: str) -> files.LabeledTexts:
    texts, labels = synthetic.sentiment_examples(count, seed=seed)
    return files.LabeledTexts(texts=texts, labels=labels, skipped_rows=0, source=origin)


def _file_splits(data_config) -> dict[str, files.LabeledTexts]:
    return {split_name: files.read_labeled_texts(
                path, file_format=data_config.file_format, text_column=data_config.text_column,
                label_column=data_config.label_column, header=data_config.header,
                on_bad_rows=data_config.on_bad_rows)
            for split_name, path in sources_lib.split_paths(data_config).items()}


def _tfds_splits(name: str, data_config) -> dict[str, files.LabeledTexts]:
    builder = tfds_source.prepared_builder(name, data_config.tfds_data_dir)
    label_names = builder.info.features["label"].names
    text_key = _TFDS_TEXT_FEATURES.get(name, "text")
    raw = {}
    for split_name, examples in tfds_source.split_examples(builder, sources_lib.SPLITS):
        texts, labels = [], []
        for example in examples:
            texts.append(example[text_key].decode("utf-8"))
            labels.append(int(example["label"]))
        if labels and min(labels) < 0:  # e.g. GLUE test splits, which are unlabelled
            logger.info("tfds:%s/%s has no labels; not evaluated", name, split_name)
            continue
        raw[split_name] = files.LabeledTexts(
            texts=texts, labels=[label_names[label] for label in labels], skipped_rows=0,
            source=f"tfds:{name}/{split_name}")
    return raw


def _label_names(configured: typing.Optional[tuple[str, ...]], train: files.LabeledTexts) -> tuple[str, ...]:
    if configured is not None:
        return tuple(configured)
    found = sorted(set(train.labels))
    if all(_is_integer(label) for label in found):
        found = sorted(found, key=int)
    if len(found) < 2:
        raise files.DataError(f"{train.source}: the training split has only the label(s) {found}; "
                              "a classifier needs at least 2 classes")
    return tuple(found)


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _index_labels(read: files.LabeledTexts, label_names: tuple[str, ...], split_name: str,
                  indices_allowed: bool, file_format: str = "auto") -> Split:
    """Maps label names to class indices; integer labels index `data.labels` when it is configured."""
    index = {name: position for position, name in enumerate(label_names)}
    indices = np.empty(len(read.labels), dtype=np.int32)
    for row, label in enumerate(read.labels):
        if label in index:
            indices[row] = index[label]
        elif indices_allowed and _is_integer(label) and 0 <= int(label) < len(label_names):
            indices[row] = int(label)
        else:
            raise files.DataError(
                f"{read.source}: example {row + 1} of the {split_name} split has label {label!r}, "
                f"which is not one of the training labels {list(label_names)} "
                f"({_unknown_label_fix(read.source, file_format, label)})")
    return Split(texts=list(read.texts), labels=indices, origin=read.source, skipped_rows=read.skipped_rows)


_CSV_READ_AS_LABEL_TEXT = ("the file looks comma-separated but is read as '<label> <text>' lines; "
                           "set data.file_format: csv")


def _read_as_label_text(source: str, file_format: str) -> bool:
    try:
        return files.resolve_format(source, file_format) == "label_text"
    except files.DataError:  # not a file (TFDS, synthetic)
        return False


def _refuse_comma_separated_labels(train: files.LabeledTexts, file_format: str) -> None:
    """A CSV file read as `<label> <text>` lines gives labels such as `1,great`: stop before they become classes."""
    label = next((label for label in train.labels if "," in label), None)
    if label is not None and _read_as_label_text(train.source, file_format):
        raise files.DataError(f"{train.source}: the training split has the label {label!r}: {_CSV_READ_AS_LABEL_TEXT}")


def _unknown_label_fix(source: str, file_format: str, label: str) -> str:
    """What to change when a label is unknown: the file format when a CSV row was read as label-text."""
    if "," in label and _read_as_label_text(source, file_format):
        return _CSV_READ_AS_LABEL_TEXT
    return "set data.labels to fix the class list"


def _take(split: Split, rows: np.ndarray, origin: str, skipped: int) -> Split:
    return Split(texts=[split.texts[row] for row in rows], labels=split.labels[rows], origin=origin,
                 skipped_rows=skipped)


def token_dataset(split: Split, encode: typing.Callable[[tf.Tensor], tf.RaggedTensor]) -> tf.data.Dataset:
    """Vectorizes a split in batches (not per element) into ({"token_ids": [time]}, label) examples.

    Args:
        split: Texts and labels.
        encode: Maps a batch of raw strings to ragged int32 token ids (standardize + vectorize).
    """
    texts = tf.constant(split.texts, dtype=tf.string) if split.texts else tf.zeros([0], tf.string)
    dataset = tf.data.Dataset.from_tensor_slices((texts, split.labels))
    # Sequential on purpose: it runs once before the cache, and parallel maps over lookup tables are
    # rewritten to sequential ones (with a log line) when op determinism is on.
    dataset = dataset.batch(1024).map(lambda text, label: ({"token_ids": encode(text)}, label))
    # Unbatched ragged rows are rank-1 ragged specs; as plain tensors they can be padded and bucketed.
    return dataset.unbatch().map(lambda features, label: (
        {"token_ids": tf.convert_to_tensor(features["token_ids"])}, label))


def read_labelled_file(data_config: config_lib.TextClassificationDataConfig, path: str,
                       label_names: typing.Sequence[str]) -> Split:
    """One labelled file in the configured format (as `data.test` is read), labels indexed by `label_names`.

    Raises:
        files.DataError: A malformed file, or a label outside `label_names`.
    """
    read = files.read_labeled_texts(path, file_format=data_config.file_format, text_column=data_config.text_column,
                                    label_column=data_config.label_column, header=data_config.header,
                                    on_bad_rows=data_config.on_bad_rows)
    return _index_labels(read, tuple(label_names), "evaluation", data_config.labels is not None)
