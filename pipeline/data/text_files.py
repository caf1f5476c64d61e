"""Text files read line by line: gzip or plain, UTF-8 with each line's decoding problem kept, CSV/TSV records.

Every reader of `pipeline.data` opens files through here, so that errors name the file and the line
(`path:line: reason`) the same way everywhere.
"""

from __future__ import annotations

import collections.abc
import csv
import dataclasses
import gzip
import io
import os
import typing
import zlib

_GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """Bad input data.

    The message has the form ``<path>:<line>: <what is wrong>``; the line is
    left out when the problem does not belong to a single line.
    """


@dataclasses.dataclass(frozen=True)
class Line:
    """One physical line of a file, decoded as UTF-8."""

    number: int
    text: str
    decode_problem: str | None


@dataclasses.dataclass(frozen=True)
class DelimitedRow:
    """The fields of one CSV or TSV record and the line on which it starts.

    Attributes:
        line: The line on which the record starts.
        fields: Its fields (empty when `problem` says it could not be split).
        problem: Why the record is malformed (quoting, invalid UTF-8), or None.
    """

    line: int
    fields: list[str]
    problem: str | None


def located(path: str, line: int | None, reason: str) -> str:
    """Formats an error message as ``path:line: reason``."""
    if line is None:
        return f"{path}: {reason}"
    return f"{path}:{line}: {reason}"


def _open_binary(path: str) -> typing.BinaryIO:
    """Opens a file for binary reading, decompressing it if it is gzip data."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(len(_GZIP_MAGIC))
        if magic == _GZIP_MAGIC:
            return gzip.open(path, "rb")
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(located(path, None, "file not found")) from None
    except IsADirectoryError:
        raise DataError(located(path, None, "is a directory, expected a file")) from None


def open_text(path: str) -> typing.TextIO:
    """Opens a UTF-8 text file for reading, decompressing gzip data transparently.

    Gzip files are recognised by their magic bytes (``1f 8b``), not by their
    suffix. The file is opened with ``newline=""`` so that the ``csv`` module
    can handle newlines inside quoted fields. A leading byte order mark is
    dropped.

    Args:
        path: The file to open.

    Returns:
        A text stream; the caller closes it.

    Raises:
        DataError: If the file does not exist or is a directory.
    """
    path = os.fspath(path)
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def _raw_lines(binary: typing.BinaryIO, path: str) -> collections.abc.Iterator[bytes]:
    """Yields the raw lines of a binary stream, turning read failures into DataError."""
    try:
        yield from binary
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(located(path, None, f"cannot read the file: {error}")) from error


def _decode_line(raw: bytes, number: int) -> Line:
    """Decodes one raw line, remembering where invalid UTF-8 was found."""
    try:
        text = raw.decode("utf-8")
        problem = None
    except UnicodeDecodeError as error:
        text = raw.decode("utf-8", errors="replace")
        problem = f"invalid UTF-8: byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the line"
    if number == 1:
        text = text.removeprefix("\ufeff")
    return Line(number, text, problem)


def read_lines(path: str) -> collections.abc.Iterator[Line]:
    """Yields the decoded physical lines of a file, keeping their line endings."""
    with _open_binary(path) as binary:
        for number, raw in enumerate(_raw_lines(binary, path), start=1):
            yield _decode_line(raw, number)


def strip_newline(text: str) -> str:
    """Removes one trailing ``\\n`` or ``\\r\\n``."""
    return text.removesuffix("\n").removesuffix("\r")


class _LineFeed:
    """Feeds line texts to ``csv.reader`` and remembers which lines failed to decode."""

    def __init__(self, lines: collections.abc.Iterator[Line]):
        self._lines = lines
        self._decode_problems: dict[int, str] = {}

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        if line.decode_problem is not None:
            self._decode_problems[line.number] = line.decode_problem
        return line.text

    def problem_between(self, first_line: int, last_line: int) -> str | None:
        """Returns the first decoding problem in a range of lines, if any."""
        for number in range(first_line, last_line + 1):
            if number in self._decode_problems:
                return self._decode_problems[number]
        return None


def _csv_reader(feed: _LineFeed, file_format: str) -> typing.Any:
    """Creates a reader for RFC 4180 CSV or for unquoted tab-separated values."""
    if file_format == "tsv":
        return csv.reader(feed, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(feed, strict=True)


def delimited_rows(lines: collections.abc.Iterator[Line],
                   file_format: str) -> collections.abc.Iterator[DelimitedRow]:
    """Yields the non-blank records of a CSV or TSV file with their first line numbers.

    Args:
        lines: The file's lines, from :func:`read_lines`.
        file_format: ``"csv"`` (RFC 4180 quoting) or ``"tsv"`` (unquoted tab-separated values).
    """
    feed = _LineFeed(lines)
    reader = _csv_reader(feed, file_format)
    while True:
        first_line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield DelimitedRow(first_line, [], f"malformed {file_format.upper()}: {error}")
            if reader.line_num < first_line:
                return
            continue
        problem = feed.problem_between(first_line, reader.line_num)
        if fields or problem is not None:
            yield DelimitedRow(first_line, fields, problem)


def width_problem(row: DelimitedRow, reference: DelimitedRow, file_format: str, *,
                  reference_is_header: bool) -> str | None:
    """Why a record's number of fields does not fit the file, or None when it fits.

    A record with more fields than the header was split at a delimiter inside a field, so reading it
    would cut that field short; it is malformed. Without a header the first record sets the count,
    and every record must have as many fields as it has.

    Args:
        row: The record to check.
        reference: The header row, or the first record of a file without a header.
        file_format: ``"csv"`` or ``"tsv"``, for the advice in the message.
        reference_is_header: Whether ``reference`` is the header (then fewer fields are allowed: the
            caller checks that the columns it reads are there).
    """
    found, expected = len(row.fields), len(reference.fields)
    if found == expected or (reference_is_header and found < expected):
        return None
    where = (f"the header (line {reference.line})" if reference_is_header
             else f"the first record (line {reference.line})")
    problem = f"{found} fields, but {where} has {expected}"
    if found < expected:
        return f"{problem}: a field is missing"
    if file_format == "tsv":
        return f"{problem}: a field holds a tab, which TSV cannot quote; remove it, or use CSV or JSON Lines"
    return f"{problem}: a field holds an unquoted ','; put that field in double quotes"
