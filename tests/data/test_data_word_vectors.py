"""Word-vector files: GloVe, word2vec text and fastText .vec, plain or gzip; coverage; errors with file and line."""

import gzip
import logging

import numpy as np
import pytest

from pipeline.data import text_files
from pipeline.data import word_vectors

VECTORS = {"the": [0.1, 0.2, 0.3], "film": [1.0, -1.0, 0.5], "Paris": [2.0, 2.5, -3.0], "great": [0.0, 4.0, 1.5]}


def lines(vectors: dict, header: bool = False, trailing_space: bool = False) -> list[str]:
    body = [f"{word} {' '.join(str(value) for value in values)}{' ' if trailing_space else ''}"
            for word, values in vectors.items()]
    return ([f"{len(vectors)} 3"] if header else []) + body


def write(path, text_lines: list[str], compress: bool = False):
    data = ("\n".join(text_lines) + "\n").encode("utf-8")
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("name, header, trailing_space, compress", [
    ("glove.txt", False, False, False),
    ("vectors.w2v.txt", True, False, False),
    ("wiki.vec", True, True, False),
    ("glove.txt.gz", False, False, True),
    ("cc.vec.gz", True, True, True),
])
def test_every_format_plain_or_gzip_gives_the_vectors_of_wanted_words(tmp_path, name, header, trailing_space, compress):
    path = write(tmp_path / name, lines(VECTORS, header, trailing_space), compress)

    found = word_vectors.read_word_vectors(path, ["the", "film", "missing"], dimension=3)

    assert sorted(found.vectors) == ["film", "the"]
    np.testing.assert_array_equal(found.vectors["film"], np.float32([1.0, -1.0, 0.5]))
    assert (found.exact, found.lowercased, found.duplicates, found.dimension, found.lines) == (2, 0, 0, 3, 4)


def test_lower_cased_match_only_when_asked_and_exact_match_wins(tmp_path):
    path = write(tmp_path / "cased.vec", lines({"The": [9, 9, 9], "Paris": [1, 2, 3], "PARIS": [4, 5, 6],
                                                "the": [0.5, 0.5, 0.5]}, header=True))

    cased = word_vectors.read_word_vectors(path, ["the", "paris"], dimension=3)
    lowered = word_vectors.read_word_vectors(path, ["the", "paris"], dimension=3, lowercase=True)

    assert sorted(cased.vectors) == ["the"]
    np.testing.assert_array_equal(lowered.vectors["the"], np.float32([0.5, 0.5, 0.5]))  # exact, though later
    np.testing.assert_array_equal(lowered.vectors["paris"], np.float32([1, 2, 3]))  # the first cased line
    assert (lowered.exact, lowered.lowercased) == (1, 1)


def test_duplicate_words_keep_the_first_line_and_are_counted(tmp_path):
    path = write(tmp_path / "glove.txt", ["film 1 1 1", "the 2 2 2", "film 3 3 3", "other 4 4 4", "other 5 5 5"])

    found = word_vectors.read_word_vectors(path, ["film", "the"], dimension=3)

    np.testing.assert_array_equal(found.vectors["film"], np.float32([1, 1, 1]))
    assert found.duplicates == 1  # counted for the wanted words


def test_a_word_with_spaces_and_blank_lines_are_read(tmp_path):
    path = write(tmp_path / "glove.txt", ["the 1 1 1", "", "at&t . com 2 2 2", "film 3 3 3"])

    found = word_vectors.read_word_vectors(path, ["film", "at&t . com"], dimension=3)

    assert sorted(found.vectors) == ["at&t . com", "film"]


@pytest.mark.parametrize("text_lines, line, message", [
    (["the 0.1 0.2"], 1, "the vectors have 2 dimensions, model.embedding_dim is 3"),
    (["2 4", "the 1 2 3 4"], 1, "the vectors have 4 dimensions, model.embedding_dim is 3"),
])
def test_a_dimension_mismatch_names_the_file_line_both_sizes_and_the_key(tmp_path, text_lines, line, message):
    path = write(tmp_path / "small.txt", text_lines)

    with pytest.raises(text_files.DataError) as error:
        word_vectors.read_word_vectors(path, ["the"], dimension=3, dimension_name="model.embedding_dim")

    assert str(error.value) == f"{path}:{line}: {message}"


@pytest.mark.parametrize("bad_line, message", [
    ("film 1 2", "expected a word and 3 numbers separated by single spaces, found 3 field(s)"),
    ("film 1 two 3", "'two' is not a number"),
    ("film 1 nan 3", "the vector holds a non-finite number"),
    (" 1 2 3", "the line starts with a space, not a word"),
])
def test_a_malformed_line_names_the_file_and_line(tmp_path, bad_line, message):
    path = write(tmp_path / "glove.txt", ["the 1 2 3", "great 4 5 6", bad_line])

    with pytest.raises(text_files.DataError) as error:
        word_vectors.read_word_vectors(path, ["film", "the"], dimension=3)

    assert str(error.value) == f"{path}:3: {message}"


def test_missing_empty_and_undecodable_files_are_errors(tmp_path):
    with pytest.raises(text_files.DataError, match="file not found"):
        word_vectors.read_word_vectors(str(tmp_path / "absent.txt"), ["the"], dimension=3)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(text_files.DataError, match="no word vectors"):
        word_vectors.read_word_vectors(str(tmp_path / "empty.txt"), ["the"], dimension=3)
    (tmp_path / "latin1.txt").write_bytes(b"the 1 2 3\ncaf\xe9 1 2 3\n")
    with pytest.raises(text_files.DataError, match=r"latin1.txt:2: invalid UTF-8"):
        word_vectors.read_word_vectors(str(tmp_path / "latin1.txt"), ["the"], dimension=3)


def test_a_header_announcing_another_count_is_a_warning(tmp_path, caplog):
    path = write(tmp_path / "cut.vec", ["5 3", "the 1 2 3", "film 4 5 6"])

    with caplog.at_level(logging.WARNING):
        found = word_vectors.read_word_vectors(path, ["the"], dimension=3)

    assert found.lines == 2 and "the header announces 5 vectors, the file holds 2" in caplog.text
