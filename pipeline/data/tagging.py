"""Tagged sentences for many-to-many tagging: splits from CoNLL-U/column files, TFDS or synthetic data."""

import dataclasses
import logging
import typing

import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline.data import conll
from pipeline.data import files
from pipeline.data import sources as sources_lib
from pipeline.data import splits as splits_lib
from pipeline.data import synthetic
from pipeline.data import tfds_source

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SentenceSplit:
    """One split: tokens and tag indices per sentence."""

    tokens: list[list[str]]
    tag_ids: list[list[int]]
    origin: str
    skipped_rows: int = 0

    def __len__(self) -> int:
        return len(self.tokens)


@dataclasses.dataclass(frozen=True)
class TaggedSplits(splits_lib.SplitSet):
    """Train, validation and (optionally) test splits sharing one tag set."""

    tag_names: tuple[str, ...]


def load_splits(data_config: config_lib.TaggingDataConfig, seed: int) -> TaggedSplits:
    """Reads every split, fixes the tag set from train, and carves validation from train if needed.

    Raises:
        files.DataError: Malformed files, a tag in validation/test that train never uses, or no training data.
    """
    raw = sources_lib.load_splits(data_config, seed, read_files=_file_splits, read_tfds=_tfds_splits,
                                  generate=_generate)
    splits_lib.require_training_examples(raw, data_config.source, "sentences")
    tag_names = tuple(sorted({tag for sentence in raw["train"].tags for tag in sentence}))
    splits = {split_name: _index_tags(read, tag_names, split_name) for split_name, read in raw.items()}
    splits = splits_lib.with_validation(splits, data_config.validation_fraction, seed, _take)
    for split_name, split in splits.items():
        logger.info("%s: %d sentences, %d tokens from %s", split_name, len(split.tokens),
                    sum(map(len, split.tokens)), split.origin)
    return TaggedSplits(splits=splits, tag_names=tag_names)


def _generate(count: int, seed: int, origin: str) -> conll.TaggedSentences:
    tokens, tags = synthetic.tagging_examples(count, seed=seed)
    return conll.TaggedSentences(tokens=tokens, tags=tags, skipped_rows=0, source=origin)


def _file_splits(data_config) -> dict[str, conll.TaggedSentences]:
    return {split_name: conll.read_tagged_sentences(
                path, file_format=data_config.file_format, tags=data_config.tags,
                token_column=data_config.token_column, tag_column=data_config.tag_column,
                on_bad_rows=data_config.on_bad_rows)
            for split_name, path in sources_lib.split_paths(data_config).items()}


def _tfds_splits(name: str, data_config) -> dict[str, conll.TaggedSentences]:
    """`universal_dependencies/<treebank>` (upos or xpos) and `xtreme_pos/<language>` (upos)."""
    builder = tfds_source.prepared_builder(name, data_config.tfds_data_dir)
    tag_feature = builder.info.features[data_config.tags]
    names = getattr(getattr(tag_feature, "feature", None), "names", None)  # ClassLabel sequences
    raw = {}
    for split_name, examples in tfds_source.split_examples(builder, sources_lib.SPLITS):
        tokens, tags = [], []
        for number, example in enumerate(examples, start=1):
            tokens.append([token.decode("utf-8") for token in example["tokens"]])
            tags.append([names[int(tag)] if names else tag.decode("utf-8") for tag in example[data_config.tags]])
            if len(tokens[-1]) != len(tags[-1]):
                raise files.DataError(f"tfds:{name}/{split_name}: example {number} has {len(tokens[-1])} tokens "
                                      f"but {len(tags[-1])} {data_config.tags} tags")
        raw[split_name] = conll.TaggedSentences(tokens=tokens, tags=tags, skipped_rows=0,
                                                source=f"tfds:{name}/{split_name}")
    return raw


def _index_tags(read: conll.TaggedSentences, tag_names: tuple[str, ...], split_name: str) -> SentenceSplit:
    index = {name: position for position, name in enumerate(tag_names)}
    tag_ids = []
    for sentence_number, sentence in enumerate(read.tags, start=1):
        unknown = [tag for tag in sentence if tag not in index]
        if unknown:
            raise files.DataError(
                f"{read.source}: sentence {sentence_number} of the {split_name} split has tag {unknown[0]!r}, "
                f"which the training split never uses (training tags: {list(tag_names)})")
        tag_ids.append([index[tag] for tag in sentence])
    return SentenceSplit(tokens=read.tokens, tag_ids=tag_ids, origin=read.source, skipped_rows=read.skipped_rows)


def _take(split: SentenceSplit, rows: np.ndarray, origin: str, skipped: int) -> SentenceSplit:
    return SentenceSplit(tokens=[split.tokens[row] for row in rows], tag_ids=[split.tag_ids[row] for row in rows],
                         origin=origin, skipped_rows=skipped)


def sentence_dataset(split: SentenceSplit,
                     encode: typing.Callable[[tf.RaggedTensor], tuple[tf.RaggedTensor, tf.RaggedTensor]]
                     ) -> tf.data.Dataset:
    """Vectorizes sentences in batches into ({"token_ids": [time], "char_ids": [time, chars]}, tag_ids [time]).

    Args:
        split: Sentences and tag ids.
        encode: Maps ragged tokens [batch, (time)] to ragged word ids and ragged char ids [batch, (time), (chars)].
    """
    lengths = [len(sentence) for sentence in split.tokens]
    tokens = tf.RaggedTensor.from_row_lengths(
        tf.constant([token for sentence in split.tokens for token in sentence], dtype=tf.string), lengths)
    tags = tf.RaggedTensor.from_row_lengths(
        tf.constant([tag for sentence in split.tag_ids for tag in sentence], dtype=tf.int32), lengths)

    def vectorize(batch_tokens, batch_tags):
        token_ids, char_ids = encode(batch_tokens)
        return {"token_ids": token_ids, "char_ids": char_ids}, batch_tags[:, :token_ids.bounding_shape(1)]

    dataset = tf.data.Dataset.from_tensor_slices((tokens, tags)).batch(1024).map(vectorize).unbatch()
    return dataset.map(lambda features, tag_ids: (
        {"token_ids": tf.convert_to_tensor(features["token_ids"]),
         "char_ids": features["char_ids"].to_tensor()}, tf.convert_to_tensor(tag_ids)))


def read_labelled_file(data_config: config_lib.TaggingDataConfig, path: str,
                       tag_names: typing.Sequence[str]) -> SentenceSplit:
    """One tagged file in the configured format (as `data.test` is read), tags indexed by `tag_names`.

    Raises:
        files.DataError: A malformed file, or a tag outside `tag_names`.
    """
    read = conll.read_tagged_sentences(path, file_format=data_config.file_format, tags=data_config.tags,
                                       token_column=data_config.token_column, tag_column=data_config.tag_column,
                                       on_bad_rows=data_config.on_bad_rows)
    return _index_tags(read, tuple(tag_names), "evaluation")
