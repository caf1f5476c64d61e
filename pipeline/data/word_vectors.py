"""Pretrained word vectors from text files: GloVe, word2vec text and fastText `.vec`, plain or gzip.

The three formats are one line per word, the word then its numbers, separated by single spaces; word2vec and
fastText files start with a `count dimension` header line, GloVe files do not. The file is streamed and only
the vectors of the wanted words are kept, so a file of millions of words needs memory for the vocabulary
alone. A word may contain spaces (a few lines of the large GloVe files do): the last `dimension` fields of a
line are its numbers, everything before them the word.
"""

import dataclasses
import logging
import typing

import numpy as np

from pipeline.data import text_files

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FoundVectors:
    """The vectors of the wanted words that a file holds.

    Attributes:
        vectors: Wanted word -> its vector (float32 [dimension]).
        exact: How many words were found as they are.
        lowercased: How many more were found through a file word that lower-cases to them.
        duplicates: Lines repeating a wanted word an earlier line already gave (the first line wins).
        dimension: The size of the file's vectors.
        lines: Vector lines read (the header and blank lines not counted).
    """

    vectors: dict[str, np.ndarray]
    exact: int
    lowercased: int
    duplicates: int
    dimension: int
    lines: int


def read_word_vectors(path: str, words: typing.Iterable[str], *, dimension: int,
                      dimension_name: str = "the expected dimension", lowercase: bool = False) -> FoundVectors:
    """Reads the vectors of `words` from a GloVe, word2vec text or fastText `.vec` file.

    Every line's field count is checked; the numbers are parsed only on the lines of wanted words.

    Args:
        path: The file, plain or gzip (recognised by its first bytes).
        words: The words whose vectors are wanted.
        dimension: The vector size the caller needs.
        dimension_name: What sets `dimension` (e.g. a config key), for the error message.
        lowercase: Also match a wanted word through a file word that lower-cases to it, when the word itself
            is not in the file (the first such line wins).

    Returns:
        The vectors found and how they were found.

    Raises:
        text_files.DataError: The file is missing, empty or not UTF-8, a line is malformed (`path:line: ...`),
            or its vectors are not of `dimension` numbers.
    """
    wanted = set(words)
    exact: dict[str, np.ndarray] = {}
    by_lowercase: dict[str, np.ndarray] = {}
    duplicates = lines = 0
    header_count = None
    size = None
    for line in text_files.read_lines(path):
        if line.decode_problem is not None:
            raise text_files.DataError(text_files.located(path, line.number, line.decode_problem))
        text = line.text.rstrip()
        if not text:
            continue
        if size is None:
            header_count, size = _header_or_size(text)
            if size != dimension:
                raise text_files.DataError(text_files.located(
                    path, line.number, f"the vectors have {size} dimensions, {dimension_name} is {dimension}"))
            if header_count is not None:
                continue
        lines += 1
        word, numbers = _split(text, size, path, line.number)
        if word in wanted:
            if word in exact:
                duplicates += 1
            else:
                exact[word] = _vector(numbers, size, path, line.number)
        elif lowercase and word.lower() in wanted and word.lower() not in by_lowercase:
            by_lowercase[word.lower()] = _vector(numbers, size, path, line.number)
    if size is None:
        raise text_files.DataError(text_files.located(path, None, "no word vectors (the file is empty)"))
    if header_count is not None and header_count != lines:
        logger.warning("%s: the header announces %d vectors, the file holds %d", path, header_count, lines)
    lowercased = {word: vector for word, vector in by_lowercase.items() if word not in exact}
    return FoundVectors(vectors={**exact, **lowercased}, exact=len(exact), lowercased=len(lowercased),
                        duplicates=duplicates, dimension=size, lines=lines)


def _header_or_size(text: str) -> tuple[typing.Optional[int], int]:
    """(count, dimension) of a `count dimension` header line, else (None, dimension of this vector line)."""
    fields = text.split(" ")
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        return int(fields[0]), int(fields[1])
    return None, len(fields) - 1


def _split(text: str, size: int, path: str, number: int) -> tuple[str, list[str]]:
    """The word and the number fields of one vector line."""
    fields = text.rsplit(" ", size)
    if len(fields) != size + 1:
        raise text_files.DataError(text_files.located(
            path, number, f"expected a word and {size} numbers separated by single spaces, found "
                          f"{len(fields)} field(s)"))
    if not fields[0]:
        raise text_files.DataError(text_files.located(path, number, "the line starts with a space, not a word"))
    return fields[0], fields[1:]


def _vector(numbers: list[str], size: int, path: str, number: int) -> np.ndarray:
    try:
        vector = np.asarray(numbers, dtype=np.float32)
    except ValueError:
        bad = next(field for field in numbers if not _is_number(field))
        raise text_files.DataError(text_files.located(path, number, f"{bad!r} is not a number")) from None
    if not np.all(np.isfinite(vector)):
        raise text_files.DataError(text_files.located(path, number, "the vector holds a non-finite number"))
    return vector.reshape([size])


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True
