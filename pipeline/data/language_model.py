"""Plain text for language modelling: files, TFDS or synthetic text read as one token stream, and its batches.

Readers return raw text (one string per split), or, for a training split streamed from its files
(`data.cache: false`), a `StreamedText` that reads them again on every pass. `tokenize` and `detokenize`
are core TensorFlow ops, so the exported SavedModel splits prompts and joins generations exactly as
training did. Two batch layouts turn a split's token ids into (inputs, next-token labels):

- `stream_batches` (truncated backpropagation through time): the stream is cut into `rows` equal parts,
  one per batch row, and each part is read in consecutive chunks, so row i of batch k+1 continues row i of
  batch k. A model that carries its recurrent state across batches sees the text without breaks.
  Streamed: `streamed_stream_batches`, each row a stream of whole lines of its own.
- `window_batches` (independent sequences): the stream is cut into windows of `steps` tokens that are
  batched (and, for training, shuffled) independently; each starts from a zero state. Streamed:
  `streamed_window_batches`, shuffled through a bounded buffer.
"""

import dataclasses
import functools
import glob
import itertools
import logging
import re
import typing

import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline.data import batching
from pipeline.data import files
from pipeline.data import text_files
from pipeline.data import sequence_text
from pipeline.data import sources as sources_lib
from pipeline.data import splits as splits_lib
from pipeline.data import synthetic
from pipeline.data import text as text_lib
from pipeline.data import tfds_source

logger = logging.getLogger(__name__)

PADDING_TOKEN, UNKNOWN_TOKEN, NEWLINE_TOKEN = "", "[UNK]", "\n"
PADDING_ID, UNKNOWN_ID, NEWLINE_ID = 0, 1, 2
RESERVED = (PADDING_TOKEN, UNKNOWN_TOKEN, NEWLINE_TOKEN)
TFDS_TEXT_FEATURE = "text"

_HORIZONTAL_SPACE = r"[^\S\n]+"  # whitespace other than line breaks
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True)
class TextSplit:
    """One split: its whole text.

    Attributes:
        text: The text, lines joined by "\\n".
        origin: Where it came from, for messages.
        skipped_rows: Lines skipped for invalid UTF-8 (`data.on_bad_rows: skip`).
    """

    text: str
    origin: str
    skipped_rows: int = 0

    def __len__(self) -> int:
        return len(self.text)


@dataclasses.dataclass(frozen=True)
class StreamedText:
    """A training split read from its files on every pass and never held in memory (`data.cache: false`).

    Attributes:
        lines: Iterator factory: every call reads the files again from the start, yielding each line
            (without its line break), or None for each bad line or record skipped under
            `data.on_bad_rows: skip` (counted per pass, in the log).
        origin: Where the text comes from, for messages.
        skipped_rows: 0: skips are counted per pass, in the log.
    """

    lines: typing.Callable[[], typing.Iterator[typing.Optional[str]]]
    origin: str
    skipped_rows: int = 0

    def read(self) -> typing.Iterator[str]:
        """One pass over the lines."""
        return files.without_skipped(self.lines(), self.origin, "lines or records in this pass")


@dataclasses.dataclass(frozen=True)
class TextSplits(splits_lib.SplitSet):
    """Train, validation and (optionally) test text."""


# === Readers ===


def expand_paths(patterns: typing.Union[str, typing.Sequence[str]], key: str) -> list[str]:
    """Paths and glob patterns -> the files, patterns expanded in sorted order.

    Raises:
        files.DataError: A pattern matches nothing (the message names the config key).
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    paths = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise files.DataError(f"data.{key}: no file matches {pattern!r}")
            paths.extend(matches)
        else:
            paths.append(pattern)
    return paths


TEXT_FORMAT = "text"


def file_format_of(path: str, configured: str) -> str:
    """The format a file is read in: `configured`, or for `auto` the one its extension names (a trailing
    .gz ignored: .tsv/.tab, .csv, .jsonl/.ndjson), else plain `text` (.txt and any other extension)."""
    if configured != "auto":
        return configured
    inferred = files.format_from_name(path)
    return inferred if inferred in files.TEXT_FORMATS else TEXT_FORMAT


def iter_lines(path: str, *, file_format: str = TEXT_FORMAT, text_column: typing.Union[str, int] = "text",
               header: bool = True, on_bad_rows: str = "error") -> typing.Iterator[typing.Optional[str]]:
    """The lines of the stream one file gives, without line endings: its lines (`text`), or one column of
    its records (`tsv`, `csv`, `jsonl`), each record one line (line breaks inside it become spaces).

    Yields None in place of each bad line or record skipped under `on_bad_rows="skip"` (counted by the
    caller); under `"error"` the first one raises.

    Raises:
        files.DataError: A missing file, an unknown column, or `path:line: reason` for a bad line or record.
    """
    if file_format != TEXT_FORMAT:
        for text in files.iter_texts(path, file_format=file_format, text_column=text_column, header=header,
                                     on_bad_rows=on_bad_rows):
            yield None if text is None else _one_line(text)
        return
    for line in text_files.read_lines(path):
        if line.decode_problem:
            if on_bad_rows != "skip":
                raise files.DataError(text_files.located(path, line.number, line.decode_problem))
            yield None
            continue
        # A lone carriage return ends a line too (old Mac files); kept, it would join two lines.
        yield from line.text.removesuffix("\n").removesuffix("\r").split("\r")


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text)


def read_text(paths: typing.Sequence[str], *, on_bad_rows: str = "error", file_format: str = "auto",
              text_column: typing.Union[str, int] = "text", header: bool = True) -> TextSplit:
    """Reads files (plain or gzip) in order as one text: see `iter_lines`; every line ends with "\n".

    Raises:
        files.DataError: A missing file, an unknown column, or `path:line: reason` for a bad line or record
            under `on_bad_rows="error"`.
    """
    lines = list(iter_file_lines(paths, file_format=file_format, text_column=text_column, header=header,
                                 on_bad_rows=on_bad_rows))
    skipped = lines.count(None)
    files.log_skipped(", ".join(paths), skipped, "lines or records")
    text = "".join(line + "\n" for line in lines if line is not None)
    return TextSplit(text=text, origin=", ".join(paths), skipped_rows=skipped)


def load_splits(data_config: config_lib.LanguageModelDataConfig, seed: int) -> TextSplits:
    """Reads every split; without a validation split, the last `validation_fraction` of train is held out.

    Raises:
        files.DataError: Unreadable files, an unknown TFDS feature, or no training text.
    """
    splits = sources_lib.load_splits(data_config, seed, read_files=_file_splits, read_tfds=_tfds_splits,
                                     generate=_generate)
    if isinstance(splits.get("train"), StreamedText):
        if not any(line.strip() for line in itertools.islice(splits["train"].read(), 10000)):
            raise files.DataError(f"{splits['train'].origin}: the training text is empty (or starts with "
                                  "10000 empty lines)")
        logger.info("train: streamed from %s (data.cache: false)", splits["train"].origin)
    elif not splits.get("train") or not splits["train"].text.strip():
        raise files.DataError(f"{data_config.source}: the training text is empty")
    if "validation" not in splits:
        splits["train"], splits["validation"] = hold_out_tail(splits["train"], data_config.validation_fraction)
    for split_name, split in splits.items():
        if isinstance(split, TextSplit):
            logger.info("%s: %d characters from %s", split_name, len(split.text), split.origin)
    return TextSplits(splits=splits)


def hold_out_tail(split: TextSplit, fraction: float) -> tuple[TextSplit, TextSplit]:
    """Splits off the last `fraction` of a text, at a line start when there is one near the cut.

    A contiguous tail (rather than random lines) keeps both parts running text, as held-out text should be.

    Raises:
        files.DataError: The text is too short to leave something on both sides.
    """
    cut = int(len(split.text) * (1.0 - fraction))
    line_start = split.text.find("\n", cut) + 1
    if 0 < line_start < len(split.text):
        cut = line_start
    if not 0 < cut < len(split.text):
        raise files.DataError(f"{split.origin}: the training text ({len(split.text)} characters) is too short to "
                              "hold out a validation part; give data.validation")
    return (TextSplit(split.text[:cut], split.origin, split.skipped_rows),
            TextSplit(split.text[cut:], f"{split.origin} (last {fraction:.0%} held out for validation)"))


def _file_splits(data_config) -> dict[str, typing.Union[TextSplit, StreamedText]]:
    paths = {split_name: expand_paths(patterns, split_name)  # every pattern is checked before any file is read
             for split_name, patterns in sources_lib.split_paths(data_config).items()}
    result = {}
    for split_name, split_paths in paths.items():
        if split_name == "train" and not data_config.cache:
            for path in split_paths:
                text_files.open_text(path).close()  # a missing file fails now, not in the first training step
            result[split_name] = StreamedText(functools.partial(iter_file_lines, split_paths,
                                                                **reading_settings(data_config)),
                                              ", ".join(split_paths))
        else:
            result[split_name] = read_text(split_paths, **reading_settings(data_config))
    return result


def iter_file_lines(paths: typing.Sequence[str], *, file_format: str = "auto", **settings
                    ) -> typing.Iterator[typing.Optional[str]]:
    """The lines of several files in order (see `iter_lines`), each file's format resolved from `file_format`."""
    for path in paths:
        yield from iter_lines(path, file_format=file_format_of(path, file_format), **settings)


def reading_settings(data_config) -> dict:
    """The keyword arguments of `read_text` and `iter_lines` the data block sets."""
    return {"on_bad_rows": data_config.on_bad_rows, "file_format": data_config.file_format,
            "text_column": data_config.text_column, "header": data_config.header}


def _generate(lines: int, seed: int, origin: str) -> TextSplit:
    return TextSplit(synthetic.language_model_text(lines, seed), origin)


def _tfds_splits(name: str, data_config) -> dict[str, TextSplit]:
    """TFDS text corpora with a `text` feature (`tiny_shakespeare`: one example per split)."""
    builder = tfds_source.prepared_builder(name, data_config.tfds_data_dir)
    features = list(builder.info.features)
    if TFDS_TEXT_FEATURE not in features:
        raise files.DataError(f"tfds:{name}: no {TFDS_TEXT_FEATURE!r} feature; its features are {features}")
    result = {}
    for split_name, examples in tfds_source.split_examples(builder, sources_lib.SPLITS):
        texts = [example[TFDS_TEXT_FEATURE].decode("utf-8") for example in examples]
        text = "".join(item if item.endswith("\n") else item + "\n" for item in texts)
        result[split_name] = TextSplit(text.replace("\r\n", "\n"), f"tfds:{name}/{split_name}")
    return result


# === Tokens ===


def tokenize(texts: tf.Tensor, *, level: str, lowercase: bool, strip_punctuation: bool = False) -> tf.RaggedTensor:
    """Raw strings [batch] -> tokens [batch, (time)]: characters, or words with "\\n" split off.

    Words have punctuation split off as tokens of their own, or, with `strip_punctuation`, are standardized
    exactly as the sentiment task's texts (see `words_as_classified`). Core TensorFlow ops only, so exports
    tokenize prompts exactly as training did.
    """
    if level == "word" and strip_punctuation:
        return words_as_classified(texts, lowercase=lowercase)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if level == "char":
        return tf.strings.unicode_split(texts, "UTF-8")
    texts = sequence_text.standardize(texts, lowercase=False, strip_punctuation=False)  # "dog." -> "dog . "
    texts = tf.strings.regex_replace(texts, "\n", " \n ")
    texts = tf.strings.regex_replace(texts, _HORIZONTAL_SPACE, " ")
    tokens = tf.strings.split(texts, sep=" ")
    return tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)


def words_as_classified(texts: tf.Tensor, *, lowercase: bool) -> tf.RaggedTensor:
    """Raw strings [batch] -> the words the sentiment task reads, each line followed by a "\\n" token.

    Every line is standardized by `text.standardize` (`<br />` tags, apostrophes and ASCII punctuation go)
    and split on whitespace as the sentiment vectorizer splits it, so that, line breaks left out, the
    tokens are exactly a sentiment classifier's.
    """
    lines = tf.strings.split(texts, sep="\n")  # (batch, (lines)); "a\nb\n" -> ["a", "b", ""]
    words = tf.strings.split(text_lib.standardize(lines.flat_values, lowercase=lowercase, strip_punctuation=True))
    line_number = tf.ragged.range(lines.row_lengths()).flat_values  # (lines,)
    is_last = tf.equal(line_number, tf.gather(lines.row_lengths() - 1, lines.value_rowids()))
    breaks = tf.RaggedTensor.from_row_lengths(  # (lines, (0 or 1)): a line break after every line but the last
        tf.fill([tf.reduce_sum(1 - tf.cast(is_last, tf.int64))], NEWLINE_TOKEN), 1 - tf.cast(is_last, tf.int64))
    tokens = tf.concat([words, breaks], axis=1)  # (lines, (words + break))
    return tf.RaggedTensor.from_row_lengths(tokens, lines.row_lengths()).merge_dims(1, 2)


def detokenize(tokens: tf.RaggedTensor, *, level: str) -> tf.Tensor:
    """Tokens [batch, (time)] -> strings [batch]; words are joined by spaces with punctuation glued back."""
    if level == "char":
        return tf.strings.reduce_join(tokens, axis=-1)
    texts = sequence_text.detokenize(tokens)
    return tf.strings.regex_replace(texts, " ?\n ?", "\n")


def line_batches(text: str, lines_per_batch: int = 4096) -> typing.Iterator[tf.Tensor]:
    """The text as string batches of whole lines (each keeping its "\\n"), for batched tokenization."""
    lines = text.split("\n")
    yield from batches_of_lines([line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else []),
                                lines_per_batch)


def batches_of_lines(lines: typing.Iterable[str], lines_per_batch: int) -> typing.Iterator[tf.Tensor]:
    """Strings, read lazily, as string tensors of up to `lines_per_batch` each."""
    lines = iter(lines)
    while batch := list(itertools.islice(lines, lines_per_batch)):
        yield tf.constant(batch, dtype=tf.string)


# === Batch layouts ===


def stream_rows(num_tokens: int, batch_size: int, steps: int) -> int:
    """Rows of the stream layout: `batch_size`, or fewer when the text cannot fill one chunk per row."""
    return max(1, min(batch_size, (num_tokens - 1) // steps))


def stream_batches(token_ids: np.ndarray, *, batch_size: int, steps: int) -> tf.data.Dataset:
    """Consecutive chunks of a token stream laid out so that batch k+1 continues batch k row by row.

    The stream is cut into `rows` (see `stream_rows`) equal parts, dropping the last few tokens that do not
    divide evenly; part i is row i of every batch. Batch k holds tokens [k * steps, (k + 1) * steps) of each
    part and its labels the tokens one position later; the last batch may be shorter in time.

    Returns:
        Dataset of ({"token_ids": int32 [rows, time]}, labels int32 [rows, time]) in stream order.
    """
    rows = stream_rows(len(token_ids), batch_size, steps)
    per_row = len(token_ids) // rows
    table = tf.constant(np.asarray(token_ids[:rows * per_row], np.int32).reshape(rows, per_row))  # (rows, per_row)
    num_batches = max(0, -(-(per_row - 1) // steps))

    def chunk(index):
        start = tf.cast(index, tf.int32) * steps
        end = tf.minimum(start + steps, per_row - 1)  # the last token of a row is only a label
        return {"token_ids": table[:, start:end]}, table[:, start + 1:end + 1]

    dataset = tf.data.Dataset.range(num_batches).map(chunk)
    return dataset.apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(tf.data.AUTOTUNE)


def window_batches(token_ids: np.ndarray, *, batch_size: int, steps: int, shuffle_buffer: int = 0,
                   seed: typing.Optional[int] = None) -> tf.data.Dataset:
    """Independent windows of `steps` tokens (labels: the same window one token later), batched.

    The windows tile the stream without overlap; the last `(len - 1) % steps` tokens are left out.
    With `shuffle_buffer`, windows are shuffled (seeded, differently on every pass; see
    `batching.shuffle_each_pass`).

    Returns:
        Dataset of ({"token_ids": int32 [batch, steps]}, labels int32 [batch, steps]).
    """
    num_windows = max(0, (len(token_ids) - 1) // steps)
    token_ids = np.asarray(token_ids, np.int32)
    inputs = token_ids[:num_windows * steps].reshape(num_windows, steps)  # (windows, steps)
    labels = token_ids[1:num_windows * steps + 1].reshape(num_windows, steps)  # (windows, steps)
    dataset = tf.data.Dataset.from_tensor_slices(({"token_ids": inputs}, labels))
    if shuffle_buffer:
        dataset = batching.shuffle_each_pass(dataset, buffer_size=shuffle_buffer, seed=seed)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# === Streamed layouts (`data.cache: false`) ===


def streamed_stream_batches(documents: typing.Iterable[np.ndarray], *, batch_size: int, steps: int
                            ) -> typing.Iterator[tuple[np.ndarray, np.ndarray]]:
    """Truncated-BPTT batches from a stream of documents (lines), holding only a few documents per row.

    Every batch row is a stream of whole documents of its own: each document goes, in order, to the row
    with the fewest tokens waiting (the lowest row on ties), so rows stay within about one document of each
    other and memory stays bounded, whatever the corpus size. Row i of batch k+1 continues row i of batch k,
    as in `stream_batches`. At the end of the documents, the tokens waiting (fewer than `steps + 1` in some
    row) are not trained on; their count is logged.

    Args:
        documents: Token ids int32 [tokens] per document, line break included, in stream order.
        batch_size: Rows per batch.
        steps: Tokens per row per batch.

    Yields:
        (inputs int32 [batch_size, steps], labels int32 [batch_size, steps]: the same tokens one later).
    """
    rows = [np.zeros([0], np.int32) for _ in range(batch_size)]
    waiting = np.zeros(batch_size, np.int64)
    for document in documents:
        row = int(np.argmin(waiting))
        rows[row] = np.concatenate([rows[row], document])
        waiting[row] += len(document)
        while waiting.min() > steps:
            yield (np.stack([tokens[:steps] for tokens in rows]), np.stack([tokens[1:steps + 1] for tokens in rows]))
            rows = [tokens[steps:] for tokens in rows]
            waiting -= steps
    if waiting.sum():
        logger.info("streamed pass ends: the last %d tokens (fewer than %d in some row) are not trained on",
                    int(waiting.sum()), steps + 1)


def streamed_windows(documents: typing.Iterable[np.ndarray], *, steps: int) -> typing.Iterator[np.ndarray]:
    """Windows of `steps + 1` tokens tiling the documents laid end to end (each window's last token is the
    next window's first), as `window_batches` cuts them; the last tokens short of a window are left out."""
    waiting = np.zeros([0], np.int32)
    for document in documents:
        waiting = np.concatenate([waiting, document])
        while len(waiting) > steps:
            yield waiting[:steps + 1]
            waiting = waiting[steps:]


def streamed_batches(documents: typing.Callable[[], typing.Iterator[np.ndarray]], *, batch_size: int, steps: int,
                     carry_state: bool, shuffle_buffer: int, seed: int) -> tf.data.Dataset:
    """A training split's batches, read from its documents on every pass (never held whole).

    With `carry_state`, the layout of `streamed_stream_batches`, in stream order; else independent windows
    (`streamed_windows`) shuffled through a buffer of `shuffle_buffer` windows, in a new order on every
    pass that depends only on the seed and the pass (see `batching.shuffle_each_pass`).

    Args:
        documents: Iterator factory: every call yields the token ids of every document again, in order.

    Returns:
        Dataset of ({"token_ids": int32 [batch, steps]}, labels int32 [batch, steps]) of unknown length.
    """
    if carry_state:
        dataset = tf.data.Dataset.from_generator(
            lambda: streamed_stream_batches(documents(), batch_size=batch_size, steps=steps),
            output_signature=(tf.TensorSpec([batch_size, steps], tf.int32),) * 2)
        return dataset.map(lambda inputs, labels: ({"token_ids": inputs}, labels)).prefetch(tf.data.AUTOTUNE)
    windows = tf.data.Dataset.from_generator(lambda: streamed_windows(documents(), steps=steps),
                                             output_signature=tf.TensorSpec([steps + 1], tf.int32))
    windows = batching.shuffle_each_pass(windows, buffer_size=shuffle_buffer, seed=seed)
    return windows.batch(batch_size).map(
        lambda window: ({"token_ids": window[:, :-1]}, window[:, 1:])).prefetch(tf.data.AUTOTUNE)
