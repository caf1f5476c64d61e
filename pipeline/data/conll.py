"""Reading tagged sentences: CoNLL-U (Universal Dependencies) and whitespace column files (CoNLL-2003)."""

import dataclasses
import logging
import os
import typing

from pipeline.data import files
from pipeline.data import text_files

logger = logging.getLogger(__name__)

_CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")


@dataclasses.dataclass(frozen=True)
class TaggedSentences:
    """Sentences read from one file.

    Attributes:
        tokens: One list of tokens per sentence.
        tags: One list of tags per sentence, aligned with `tokens`.
        skipped_rows: Malformed sentences skipped under `on_bad_rows="skip"`.
        source: The path read.
    """

    tokens: list[list[str]]
    tags: list[list[str]]
    skipped_rows: int
    source: str

    def __len__(self) -> int:
        return len(self.tokens)


def _sentence_blocks(path: str) -> typing.Iterator[list[text_files.Line]]:
    """Yields the non-blank lines of each blank-line-separated block, with their line numbers."""
    block: list[text_files.Line] = []
    for line in text_files.read_lines(path):
        if line.text.strip():
            block.append(line)
        elif block:
            yield block
            block = []
    if block:
        yield block


def _conllu_word(line: text_files.Line, tag_index: int) -> typing.Optional[tuple[str, str]]:
    """Parses one CoNLL-U line: (form, tag), or None for comments, multi-word ranges and empty nodes."""
    text = line.text.rstrip("\r\n")
    if text.startswith("#"):
        return None
    if line.decode_problem:
        raise ValueError(line.decode_problem)
    fields = text.split("\t")
    if len(fields) != len(_CONLLU_COLUMNS):
        raise ValueError(f"expected {len(_CONLLU_COLUMNS)} tab-separated fields, found {len(fields)}")
    word_id = fields[0]
    if "-" in word_id or "." in word_id:  # multi-word token range (1-2) or empty node (8.1)
        return None
    if not word_id.isdigit():
        raise ValueError(f"word ID {word_id!r} is not an integer, a range or an empty node")
    if not fields[1] or not fields[tag_index] or fields[tag_index] == "_":
        raise ValueError(f"missing {_CONLLU_COLUMNS[tag_index].upper()} tag for word {word_id}")
    return fields[1], fields[tag_index]


def _column_word(line: text_files.Line, token_column: int, tag_column: int) -> tuple[str, str]:
    if line.decode_problem:
        raise ValueError(line.decode_problem)
    fields = line.text.split()
    needed = max(2, token_column + 1, tag_column + 1 if tag_column >= 0 else -tag_column)
    if len(fields) < needed:
        raise ValueError(f"expected at least {needed} whitespace-separated fields, found {len(fields)}")
    return fields[token_column], fields[tag_column]


def read_tagged_sentences(path: str, *, file_format: str = "auto", tags: str = "upos", token_column: int = 0,
                          tag_column: int = -1, on_bad_rows: str = "error") -> TaggedSentences:
    """Reads a CoNLL-U or column file (plain or gzip) into tokens and tags per sentence.

    CoNLL-U: comment lines are ignored, multi-word token ranges (`1-2`) and empty nodes (`8.1`) are
    skipped, `tags` picks the UPOS or XPOS column. Column files: one token per line with its tag in
    `tag_column`, sentences separated by blank lines; `-DOCSTART-` lines are ignored.

    Raises:
        files.DataError: `path:line: reason` for a malformed line (with `on_bad_rows="error"`).
    """
    if file_format == "auto":
        name = os.path.basename(path).removesuffix(".gz")
        file_format = "conllu" if name.endswith(".conllu") else "columns"
    if file_format not in ("conllu", "columns"):
        raise ValueError(f"file_format: {file_format!r} is not one of ['auto', 'conllu', 'columns']")
    tag_index = _CONLLU_COLUMNS.index(tags)
    sentences_tokens, sentences_tags, skipped = [], [], 0
    for block in _sentence_blocks(path):
        words = []
        try:
            for line in block:
                if file_format == "conllu":
                    word = _conllu_word(line, tag_index)
                elif line.text.startswith("-DOCSTART-"):
                    word = None
                else:
                    word = _column_word(line, token_column, tag_column)
                if word is not None:
                    words.append(word)
        except ValueError as error:
            if on_bad_rows != "skip":
                raise files.DataError(text_files.located(path, line.number, str(error))) from None
            skipped += 1
            continue
        if words:
            sentences_tokens.append([token for token, _ in words])
            sentences_tags.append([tag for _, tag in words])
    files.log_skipped(path, skipped, "sentences")
    return TaggedSentences(tokens=sentences_tokens, tags=sentences_tags, skipped_rows=skipped, source=path)
