"""Reading labelled text examples from CSV, TSV, JSON Lines and label-text files.

Every reader reports bad input as a :class:`DataError` whose message starts
with ``<path>:<line>:`` so the user can jump straight to the offending record.
Files may be gzip-compressed; compression is recognised by the file's magic
bytes, so a compressed file does not need a ``.gz`` suffix.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import functools
import json
import logging
import os

from pipeline.data import text_files

logger = logging.getLogger(__name__)

FILE_FORMATS = ("csv", "tsv", "jsonl", "label_text")
"""Formats accepted by :func:`read_labeled_texts` besides ``"auto"``."""

BAD_ROW_POLICIES = ("error", "skip")

# The error every reader raises; defined with the line reading it shares.
DataError = text_files.DataError
"""Values accepted by the ``on_bad_rows`` argument of :func:`read_labeled_texts`."""

_FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "label_text",
}





@dataclasses.dataclass(frozen=True)
class LabeledTexts:
    """Texts and their labels read from one file.

    Attributes:
        texts: The example texts, in file order.
        labels: The raw label strings, stripped of surrounding whitespace
            (an integer label ``1`` becomes ``"1"``).
        skipped_rows: Number of bad rows skipped under ``on_bad_rows="skip"``.
        source: The path that was read.
    """

    texts: list[str]
    labels: list[str]
    skipped_rows: int
    source: str


class _BadRow(Exception):
    """Raised while parsing one record; the message says what is wrong with it."""





@dataclasses.dataclass(frozen=True)
class _Record:
    """One parsed example, or the reason it could not be parsed."""

    line: int
    text: str = ""
    label: str = ""
    problem: str | None = None





def _clean_label(raw: str) -> str:
    """Strips a label and rejects it when nothing is left."""
    label = raw.strip()
    if not label:
        raise _BadRow("empty label")
    return label


def _to_record(line: int, parse: collections.abc.Callable[..., tuple[str, str]], *arguments) -> _Record:
    """Runs a parser for one record and captures its complaint, if any."""
    try:
        text, label = parse(*arguments)
    except _BadRow as bad_row:
        return _Record(line, problem=str(bad_row))
    return _Record(line, text, label)


# JSON Lines -----------------------------------------------------------------


def _type_name(value: object) -> str:
    """Names the type of a decoded JSON value for error messages."""
    if value is None:
        return "null"
    return type(value).__name__


def _json_text(value: object) -> str:
    """Validates a JSON text value."""
    if not isinstance(value, str):
        raise _BadRow(f"text must be a string, found {_type_name(value)}")
    return value


def _json_label(value: object) -> str:
    """Converts a JSON label value to its string form."""
    if isinstance(value, str):
        return _clean_label(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _BadRow(f"label must be a string or an integer, found {_type_name(value)}")


def _json_field(record: dict, key: str) -> object:
    """Looks up a key in a JSON object."""
    if key not in record:
        raise _BadRow(f"missing key {key!r}")
    return record[key]


def _parse_json_line(line: text_files.Line, text_key: str, label_key: str | None) -> tuple[str, str]:
    """Extracts the text and label ("" without a label key) from one JSON Lines record."""
    if line.decode_problem is not None:
        raise _BadRow(line.decode_problem)
    try:
        record = json.loads(text_files.strip_newline(line.text))
    except json.JSONDecodeError as error:
        raise _BadRow(f"invalid JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(record, dict):
        raise _BadRow(f"expected a JSON object, found {_type_name(record)}")
    text = _json_text(_json_field(record, text_key))
    label = "" if label_key is None else _json_label(_json_field(record, label_key))
    return text, label


def _jsonl_records(lines: collections.abc.Iterable[text_files.Line], text_key: str,
                   label_key: str | None) -> collections.abc.Iterator[_Record]:
    """Parses a JSON Lines file; blank lines are ignored."""
    for line in lines:
        if not line.text.strip():
            continue
        yield _to_record(line.number, _parse_json_line, line, text_key, label_key)


# Label-text -----------------------------------------------------------------


def _parse_label_text_line(line: text_files.Line) -> tuple[str, str]:
    """Splits ``<label> <text>`` at the first space."""
    if line.decode_problem is not None:
        raise _BadRow(line.decode_problem)
    label, _, text = text_files.strip_newline(line.text).partition(" ")
    if not label.strip():
        raise _BadRow("empty label (the line must start with '<label> ')")
    if "\t" in label:
        raise _BadRow(f"the label {label!r} holds a tab: the file looks tab-separated, but it is read as "
                      "'<label> <text>' lines (file format label_text); set data.file_format: tsv")
    return text, label.strip()


def _label_text_records(lines: collections.abc.Iterable[text_files.Line]) -> collections.abc.Iterator[_Record]:
    """Parses a label-text file; blank lines are ignored."""
    for line in lines:
        if not line.text.strip():
            continue
        yield _to_record(line.number, _parse_label_text_line, line)


# CSV and TSV ----------------------------------------------------------------


def _check_column_argument(column: str | int, argument: str) -> None:
    """Rejects column selectors that are neither names nor non-negative indices."""
    if isinstance(column, bool) or not isinstance(column, (str, int)):
        raise ValueError(f"{argument} must be a column name or a 0-based index, got {column!r}")
    if isinstance(column, int) and column < 0:
        raise ValueError(f"{argument} must be a non-negative 0-based index, got {column}")


def _column_by_name(path: str, header: text_files.DelimitedRow, name: str, argument: str) -> int:
    """Finds a named column in the header row."""
    names = [field.strip() for field in header.fields]
    if name.strip() in names:
        return names.index(name.strip())
    reason = f"{argument} {name!r} is not a column in the header"
    suggestions = difflib.get_close_matches(name, names, n=1)
    if suggestions:
        reason += f"; did you mean {suggestions[0]!r}?"
    reason += f" Available columns: {', '.join(repr(column) for column in names)}"
    raise DataError(text_files.located(path, header.line, reason))


def _column_in_header(path: str, header: text_files.DelimitedRow, column: str | int, argument: str) -> int:
    """Resolves a column name or index against the header row."""
    if isinstance(column, str):
        return _column_by_name(path, header, column, argument)
    if column >= len(header.fields):
        reason = (f"{argument} index {column} is out of range: the header has "
                  f"{len(header.fields)} columns ({', '.join(header.fields)})")
        raise DataError(text_files.located(path, header.line, reason))
    return column


def _column_without_header(path: str, column: str | int, argument: str) -> int:
    """Checks that a column is given by index when the file has no header."""
    if isinstance(column, str):
        reason = (f"{argument} is {column!r}, but without a header columns are selected "
                  f"by 0-based index; pass an integer or set header=True")
        raise DataError(text_files.located(path, None, reason))
    return column


def _parse_delimited_row(row: text_files.DelimitedRow, text_index: int, label_index: int | None,
                         width: collections.abc.Callable[[text_files.DelimitedRow], str | None]) -> tuple[str, str]:
    """Extracts the text and label ("" without a label column) fields from one CSV or TSV record."""
    if row.problem is not None:
        raise _BadRow(row.problem)
    needed = max(text_index, -1 if label_index is None else label_index) + 1
    if len(row.fields) < needed:
        raise _BadRow(f"expected at least {needed} fields, found {len(row.fields)}")
    problem = width(row)
    if problem is not None:
        raise _BadRow(problem)
    return row.fields[text_index], "" if label_index is None else _clean_label(row.fields[label_index])


def _header_row(path: str, rows: collections.abc.Iterator[text_files.DelimitedRow]) -> text_files.DelimitedRow | None:
    """Reads the header row, or returns None for an empty file."""
    header = next(rows, None)
    if header is not None and header.problem is not None:
        raise DataError(text_files.located(path, header.line, f"cannot read the header: {header.problem}"))
    return header


def _delimited_records(path: str, lines: collections.abc.Iterator[text_files.Line], file_format: str,
                       text_column: str | int, label_column: str | int | None,
                       header: bool) -> collections.abc.Iterator[_Record]:
    """Parses a CSV or TSV file (texts only when `label_column` is None)."""
    rows = text_files.delimited_rows(lines, file_format)
    reference = None
    if header:
        reference = _header_row(path, rows)
        if reference is None:
            return
        text_index = _column_in_header(path, reference, text_column, "text_column")
        label_index = None if label_column is None else _column_in_header(path, reference, label_column,
                                                                          "label_column")
    else:
        text_index = _column_without_header(path, text_column, "text_column")
        label_index = None if label_column is None else _column_without_header(path, label_column, "label_column")
    for row in rows:
        if reference is None and row.problem is None:
            reference = row  # without a header, the first well-formed record sets the number of fields
        width = functools.partial(text_files.width_problem, reference=reference, file_format=file_format,
                                  reference_is_header=header)
        yield _to_record(row.line, _parse_delimited_row, row, text_index, label_index, width)


# Entry point ----------------------------------------------------------------


def format_from_name(path: str) -> str | None:
    """The format a file name implies (a trailing ``.gz`` ignored): ``csv``, ``tsv``, ``jsonl``,
    ``label_text`` for ``.txt``, or None for any other extension."""
    name = os.path.basename(path).lower().removesuffix(".gz")
    return _FORMAT_BY_SUFFIX.get(os.path.splitext(name)[1])


def resolve_format(path: str, file_format: str) -> str:
    """Returns the explicit format, or infers it from the file name for ``"auto"``."""
    if file_format != "auto":
        if file_format not in FILE_FORMATS:
            raise ValueError(f"file_format must be 'auto' or one of {', '.join(FILE_FORMATS)}; "
                             f"got {file_format!r}")
        return file_format
    inferred = format_from_name(path)
    if inferred is not None:
        return inferred
    suffix = os.path.splitext(os.path.basename(path).lower().removesuffix(".gz"))[1]
    described = f"extension {suffix!r}" if suffix else "no extension"
    reason = (f"cannot infer the file format from the name ({described}); set the format "
              f"explicitly to one of: {', '.join(FILE_FORMATS)}")
    raise DataError(text_files.located(path, None, reason))


def _json_key(column: str | int, argument: str) -> str:
    """Checks that a JSON Lines column selector is a key name."""
    if not isinstance(column, str):
        raise ValueError(f"jsonl records are JSON objects, so {argument} must be a key name, "
                         f"got {column!r}")
    return column


def _records(path: str, file_format: str, text_column: str | int, label_column: str | int | None,
             header: bool) -> collections.abc.Iterator[_Record]:
    """Dispatches to the parser for a file format (texts only when `label_column` is None)."""
    lines = text_files.read_lines(path)
    if file_format == "jsonl":
        return _jsonl_records(lines, _json_key(text_column, "text_column"),
                              None if label_column is None else _json_key(label_column, "label_column"))
    if file_format == "label_text":
        return _label_text_records(lines)
    return _delimited_records(path, lines, file_format, text_column, label_column, header)


def read_labeled_texts(path: str, *, file_format: str = "auto", text_column: str | int = "text",
                       label_column: str | int = "label", header: bool = True,
                       on_bad_rows: str = "error") -> LabeledTexts:
    """Reads texts and their labels from a CSV, TSV, JSON Lines or label-text file.

    Formats:
        * ``"csv"``: RFC 4180; quoted fields may hold commas, doubled quotes
          and newlines.
        * ``"tsv"``: tab-separated and unquoted; quote characters are text.
        * ``"jsonl"``: one JSON object per line; the columns are keys.
        * ``"label_text"``: one ``<label> <text>`` example per line, as in
          the SST ``stsa.*.txt`` files; the columns and ``header`` are ignored.
        * ``"auto"``: chosen from the file name without a trailing ``.gz``:
          ``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson`` or ``.txt``.

    Blank lines are ignored. Texts are kept as they are; labels are stripped
    of surrounding whitespace. An empty file yields empty lists.

    Args:
        path: The file to read; it may be gzip-compressed.
        file_format: One of ``"auto"``, ``"csv"``, ``"tsv"``, ``"jsonl"``,
            ``"label_text"``.
        text_column: Column holding the text: a header name or a 0-based
            index for CSV/TSV (an index when ``header`` is False), a key for
            JSON Lines.
        label_column: Column holding the label, selected like ``text_column``.
        header: Whether the first CSV/TSV row names the columns.
        on_bad_rows: ``"error"`` to raise on the first bad row, ``"skip"`` to
            skip bad rows and count them.

    Returns:
        The texts, their labels and the number of skipped rows.

    Raises:
        text_files.DataError: If the file is missing or unreadable, its format cannot be
            inferred, a column does not exist, or a row is bad and
            ``on_bad_rows`` is ``"error"``. The message names the file and,
            where it applies, the line on which the record starts.
        ValueError: If an argument has an invalid value.
    """
    path = os.fspath(path)
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"on_bad_rows must be one of {', '.join(BAD_ROW_POLICIES)}; got {on_bad_rows!r}")
    _check_column_argument(text_column, "text_column")
    _check_column_argument(label_column, "label_column")
    file_format = resolve_format(path, file_format)
    texts: list[str] = []
    labels: list[str] = []
    skipped_rows = 0
    for record in _records(path, file_format, text_column, label_column, header):
        if record.problem is None:
            texts.append(record.text)
            labels.append(record.label)
        elif on_bad_rows == "skip":
            skipped_rows += 1
        else:
            raise DataError(text_files.located(path, record.line, record.problem))
    return LabeledTexts(texts=texts, labels=labels, skipped_rows=skipped_rows, source=path)


TEXT_FORMATS = ("csv", "tsv", "jsonl")
"""Formats :func:`iter_texts` reads a column of."""


def iter_texts(path: str, *, file_format: str, text_column: str | int = "text", header: bool = True,
               on_bad_rows: str = "error") -> collections.abc.Iterator[str | None]:
    """Yields one column of every record of a CSV, TSV or JSON Lines file, in file order, without labels.

    Records are parsed exactly as :func:`read_labeled_texts` parses them (blank lines ignored, TSV unquoted,
    records wider than the header refused), so the same bad-row rules apply.

    Args:
        path: The file to read; it may be gzip-compressed.
        file_format: ``"csv"``, ``"tsv"`` or ``"jsonl"``.
        text_column: Header name or 0-based index (CSV/TSV), or key (JSON Lines) of the text.
        header: Whether the first CSV/TSV row names the columns.
        on_bad_rows: ``"error"`` raises on the first bad record; ``"skip"`` yields None in its place,
            so that the caller counts it.

    Raises:
        text_files.DataError: A missing file, an unknown column, or a bad record under ``"error"``; the
            message names the file and the line on which the record starts.
        ValueError: An invalid argument.
    """
    path = os.fspath(path)
    if file_format not in TEXT_FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(TEXT_FORMATS)}; got {file_format!r}")
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"on_bad_rows must be one of {', '.join(BAD_ROW_POLICIES)}; got {on_bad_rows!r}")
    _check_column_argument(text_column, "text_column")
    for record in _records(path, file_format, text_column, None, header):
        if record.problem is None:
            yield record.text
        elif on_bad_rows == "skip":
            yield None
        else:
            raise DataError(text_files.located(path, record.line, record.problem))


def log_skipped(origin: str, count: int, what: str) -> None:
    """Logs how many malformed `what` (rows, pairs, ...) `data.on_bad_rows: skip` left out of `origin`, if any."""
    if count:
        logger.warning("%s: skipped %d malformed %s (data.on_bad_rows: skip)", origin, count, what)


def without_skipped(items: collections.abc.Iterable, origin: str, what: str) -> collections.abc.Iterator:
    """The items that are not None, in order; the Nones (bad records a reader skipped) are counted and logged
    with `log_skipped` once the items run out."""
    skipped = 0
    for item in items:
        if item is None:
            skipped += 1
        else:
            yield item
    log_skipped(origin, skipped, what)
