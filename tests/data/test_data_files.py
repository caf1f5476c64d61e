"""Tests for reading labelled text files."""

import gzip
import json
import re

import pytest

from pipeline.data import files
from pipeline.data import text_files

IMDB_TSV = (
    "label\trating\tid\ttext\n"
    'positive\t9\t101\tA "must see" film.<br /><br />Great cast.\n'
    "negative\t2\t102\tDull, slow and \"clever\" only in name.\n"
)


def write_text(path, content):
    """Writes UTF-8 text without newline translation and returns the path as a string."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(content)
    return str(path)


def write_gzip(path, content):
    """Writes gzip-compressed UTF-8 text and returns the path as a string."""
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write(content)
    return str(path)


def write_bytes(path, content):
    """Writes raw bytes and returns the path as a string."""
    path.write_bytes(content)
    return str(path)


def error_location(error_info):
    """Returns the (path, line) prefix of a DataError message."""
    match = re.match(r"^(.*):(\d+): ", str(error_info.value))
    assert match, str(error_info.value)
    return match.group(1), int(match.group(2))


# Formats, plain and compressed ------------------------------------------------

SAMPLES = {
    "csv": ("data.csv", "text,label\nfine film,positive\nweak plot,negative\n"),
    "tsv": ("data.tsv", "text\tlabel\nfine film\tpositive\nweak plot\tnegative\n"),
    "jsonl": ("data.jsonl", '{"text": "fine film", "label": "positive"}\n'
                            '{"text": "weak plot", "label": "negative"}\n'),
    "label_text": ("data.txt", "positive fine film\nnegative weak plot\n"),
}


@pytest.mark.parametrize("file_format", sorted(SAMPLES))
@pytest.mark.parametrize("compressed", [False, True])
def test_reads_each_format_plain_and_gzip(tmp_path, file_format, compressed):
    name, content = SAMPLES[file_format]
    if compressed:
        path = write_gzip(tmp_path / (name + ".gz"), content)
    else:
        path = write_text(tmp_path / name, content)

    result = files.read_labeled_texts(path)

    assert result.texts == ["fine film", "weak plot"]
    assert result.labels == ["positive", "negative"]
    assert result.skipped_rows == 0
    assert result.source == path


@pytest.mark.parametrize("file_format", sorted(SAMPLES))
def test_gzip_detected_by_magic_bytes_without_suffix(tmp_path, file_format):
    path = write_gzip(tmp_path / "compressed.data", SAMPLES[file_format][1])

    result = files.read_labeled_texts(path, file_format=file_format)

    assert result.texts == ["fine film", "weak plot"]


def test_open_text_decompresses_by_magic_bytes(tmp_path):
    path = write_gzip(tmp_path / "notes.bin", "a,\"b\nc\"\r\n")

    with text_files.open_text(path) as handle:
        content = handle.read()

    assert content == "a,\"b\nc\"\r\n"


def test_open_text_missing_file_names_path(tmp_path):
    path = str(tmp_path / "absent.csv")

    with pytest.raises(files.DataError, match=re.escape(path)):
        text_files.open_text(path)


def test_read_missing_file_is_data_error(tmp_path):
    path = str(tmp_path / "absent.csv")

    with pytest.raises(files.DataError, match=re.escape(path) + ".*not found"):
        files.read_labeled_texts(path)


# CSV ----------------------------------------------------------------------------


def test_csv_quoted_comma_doubled_quote_and_newline(tmp_path):
    content = (
        "id,caption,label\n"
        '1,"red, white and blue",flag\n'
        '2,"she said ""hello""",greeting\n'
        '3,"first line\nsecond line",poem\n'
    )
    path = write_text(tmp_path / "captions.csv", content)

    result = files.read_labeled_texts(path, text_column="caption")

    assert result.texts == ["red, white and blue", 'she said "hello"', "first line\nsecond line"]
    assert result.labels == ["flag", "greeting", "poem"]


def test_csv_bad_row_after_multiline_record_reports_physical_line(tmp_path):
    content = (
        "text,label\n"                    # line 1
        '"spans\nthree\nlines",good\n'    # lines 2-4
        "only one field\n"                # line 5
    )
    path = write_text(tmp_path / "multi.csv", content)

    with pytest.raises(files.DataError, match="expected at least 2 fields, found 1") as error_info:
        files.read_labeled_texts(path)

    assert error_location(error_info) == (path, 5)


def test_csv_crlf_line_endings(tmp_path):
    path = write_text(tmp_path / "windows.csv", "text,label\r\nnice,1\r\n\"two\r\nlines\",0\r\n")

    result = files.read_labeled_texts(path)

    assert result.texts == ["nice", "two\r\nlines"]
    assert result.labels == ["1", "0"]


def test_csv_unclosed_quote_reports_record_start(tmp_path):
    path = write_text(tmp_path / "open.csv", 'text,label\nfine,1\n"never closed,0\nmore,1\n')

    with pytest.raises(files.DataError, match="malformed CSV") as error_info:
        files.read_labeled_texts(path)

    assert error_location(error_info) == (path, 3)


def test_csv_byte_order_mark_is_ignored(tmp_path):
    path = write_bytes(tmp_path / "bom.csv", "\ufefftext,label\nhi,1\n".encode("utf-8"))

    result = files.read_labeled_texts(path)

    assert result.texts == ["hi"]


# TSV ----------------------------------------------------------------------------


def test_tsv_quotes_are_ordinary_text(tmp_path):
    path = write_text(tmp_path / "imdb.tsv", IMDB_TSV)

    result = files.read_labeled_texts(path)

    assert result.texts == [
        'A "must see" film.<br /><br />Great cast.',
        'Dull, slow and "clever" only in name.',
    ]
    assert result.labels == ["positive", "negative"]


def test_tsv_leading_quote_does_not_start_quoted_field(tmp_path):
    path = write_text(tmp_path / "quotes.tab", 'text\tlabel\n"unbalanced quote\tpos\nnext\tneg\n')

    result = files.read_labeled_texts(path)

    assert result.texts == ['"unbalanced quote', "next"]


# Headers and columns --------------------------------------------------------------


def test_header_columns_selected_by_index(tmp_path):
    path = write_text(tmp_path / "imdb.tsv", IMDB_TSV)

    result = files.read_labeled_texts(path, text_column=3, label_column=1)

    assert result.labels == ["9", "2"]
    assert result.texts[1] == 'Dull, slow and "clever" only in name.'


def test_no_header_uses_integer_columns(tmp_path):
    path = write_text(tmp_path / "plain.csv", "1,great fun\n0,waste of time\n")

    result = files.read_labeled_texts(path, header=False, text_column=1, label_column=0)

    assert result.texts == ["great fun", "waste of time"]
    assert result.labels == ["1", "0"]


def test_no_header_rejects_column_names(tmp_path):
    path = write_text(tmp_path / "plain.csv", "1,great fun\n")

    with pytest.raises(files.DataError, match="0-based index"):
        files.read_labeled_texts(path, header=False)


def test_unknown_column_suggests_close_match(tmp_path):
    path = write_text(tmp_path / "reviews.csv", "review_text,label\nok,1\n")

    with pytest.raises(files.DataError) as error_info:
        files.read_labeled_texts(path, text_column="review_txt")

    message = str(error_info.value)
    assert error_location(error_info) == (path, 1)
    assert "'review_txt'" in message
    assert "did you mean 'review_text'?" in message
    assert "'label'" in message


def test_column_index_beyond_header_is_reported(tmp_path):
    path = write_text(tmp_path / "narrow.csv", "text,label\nok,1\n")

    with pytest.raises(files.DataError, match="out of range"):
        files.read_labeled_texts(path, text_column=5)


@pytest.mark.parametrize("column", [-1, 1.5, True, None])
def test_invalid_column_argument_is_value_error(tmp_path, column):
    path = write_text(tmp_path / "data.csv", "text,label\nok,1\n")

    with pytest.raises(ValueError, match="text_column"):
        files.read_labeled_texts(path, text_column=column)


# Labels and texts -------------------------------------------------------------------


def test_integer_and_string_labels_become_strings(tmp_path):
    lines = [{"text": "a", "label": 1}, {"text": "b", "label": " positive "}, {"text": "c", "label": 0}]
    path = write_text(tmp_path / "mixed.jsonl", "".join(json.dumps(line) + "\n" for line in lines))

    result = files.read_labeled_texts(path)

    assert result.labels == ["1", "positive", "0"]


def test_labels_stripped_but_texts_kept(tmp_path):
    path = write_text(tmp_path / "spaces.csv", 'text,label\n"  padded text  ", pos \n')

    result = files.read_labeled_texts(path)

    assert result.texts == ["  padded text  "]
    assert result.labels == ["pos"]


def test_empty_text_is_kept(tmp_path):
    csv_path = write_text(tmp_path / "empty.csv", "text,label\n,1\n\"\",0\n")
    jsonl_path = write_text(tmp_path / "empty.jsonl", '{"text": "", "label": "x"}\n')
    label_text_path = write_text(tmp_path / "empty.txt", "1\n0 \n")

    assert files.read_labeled_texts(csv_path).texts == ["", ""]
    assert files.read_labeled_texts(jsonl_path).texts == [""]
    label_text = files.read_labeled_texts(label_text_path)
    assert label_text.texts == ["", ""]
    assert label_text.labels == ["1", "0"]


def test_sst_layout(tmp_path):
    content = "1 a gorgeous , witty , seductive movie .\n\n0 the story is  thin .\r\n"
    path = write_text(tmp_path / "stsa.binary.train.txt", content)

    result = files.read_labeled_texts(path)

    assert result.texts == ["a gorgeous , witty , seductive movie .", "the story is  thin ."]
    assert result.labels == ["1", "0"]


@pytest.mark.parametrize("name, content", [
    ("empty.csv", ""),
    ("header_only.csv", "text,label\n"),
    ("empty.jsonl", "\n\n"),
    ("empty.txt", ""),
])
def test_empty_file_gives_empty_lists(tmp_path, name, content):
    result = files.read_labeled_texts(write_text(tmp_path / name, content))

    assert result.texts == []
    assert result.labels == []
    assert result.skipped_rows == 0


# Bad rows ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, content, line, reason", [
    ("short.csv", "text,label\na,1\nno label here\n", 3, "expected at least 2 fields, found 1"),
    ("blank_label.csv", "text,label\na,1\nb,  \n", 3, "empty label"),
    ("short.tsv", "text\tlabel\na\t1\n\nb\n", 4, "expected at least 2 fields, found 1"),
    ("broken.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": \n', 2, "invalid JSON"),
    ("no_label.jsonl", '{"text": "a"}\n', 1, "missing key 'label'"),
    ("number.jsonl", '{"text": "a", "label": 1}\n{"text": 7, "label": 1}\n', 2,
     "text must be a string, found int"),
    ("null.jsonl", '{"text": null, "label": 1}\n', 1, "text must be a string, found null"),
    ("list.jsonl", "[1, 2]\n", 1, "expected a JSON object, found list"),
    ("float.jsonl", '{"text": "a", "label": 0.5}\n', 1, "label must be a string or an integer"),
    ("space.txt", "1 fine\n bad start\n", 2, "empty label"),
])
def test_bad_row_message_has_path_line_and_reason(tmp_path, name, content, line, reason):
    path = write_text(tmp_path / name, content)

    with pytest.raises(files.DataError, match=re.escape(reason)) as error_info:
        files.read_labeled_texts(path)

    assert error_location(error_info) == (path, line)


def test_invalid_json_reports_column(tmp_path):
    path = write_text(tmp_path / "broken.jsonl", '{"text": "a", "label": }\n')

    with pytest.raises(files.DataError) as error_info:
        files.read_labeled_texts(path)

    assert str(error_info.value) == f"{path}:1: invalid JSON: Expecting value at column 24"


def test_skip_counts_bad_rows(tmp_path):
    content = (
        "text,label\n"
        "good one,1\n"
        "missing label\n"
        "blank label,\n"
        '"quoted, fine",0\n'
    )
    path = write_text(tmp_path / "mixed.csv", content)

    result = files.read_labeled_texts(path, on_bad_rows="skip")

    assert result.texts == ["good one", "quoted, fine"]
    assert result.labels == ["1", "0"]
    assert result.skipped_rows == 2


def test_skip_counts_bad_json_lines(tmp_path):
    content = '{"text": "a", "label": 1}\nnot json\n{"text": null, "label": 1}\n{"text": "b", "label": 0}\n'
    path = write_text(tmp_path / "mixed.jsonl", content)

    result = files.read_labeled_texts(path, on_bad_rows="skip")

    assert result.texts == ["a", "b"]
    assert result.skipped_rows == 2


def test_invalid_on_bad_rows_is_value_error(tmp_path):
    path = write_text(tmp_path / "data.csv", "text,label\n")

    with pytest.raises(ValueError, match="on_bad_rows"):
        files.read_labeled_texts(path, on_bad_rows="ignore")


@pytest.mark.parametrize("name", ["bad.csv", "bad.tsv", "bad.jsonl", "bad.txt"])
def test_invalid_utf8_reported_with_line(tmp_path, name):
    good = {"bad.csv": b"a,1\n", "bad.tsv": b"a\t1\n", "bad.jsonl": b'{"text": "a", "label": 1}\n',
            "bad.txt": b"1 a\n"}[name]
    header = {"bad.csv": b"text,label\n", "bad.tsv": b"text\tlabel\n"}.get(name, b"")
    broken = good.replace(b"a", b"caf\xe9", 1)
    path = write_bytes(tmp_path / name, header + good + broken + good)

    with pytest.raises(files.DataError, match="invalid UTF-8") as error_info:
        files.read_labeled_texts(path)

    assert error_location(error_info) == (path, 3 if header else 2)
    skipped = files.read_labeled_texts(path, on_bad_rows="skip")
    assert skipped.skipped_rows == 1
    assert len(skipped.texts) == 2


def test_invalid_utf8_inside_multiline_csv_record(tmp_path):
    content = b'text,label\n"first\nsecond \xff",1\nok,0\n'
    path = write_bytes(tmp_path / "bad.csv", content)

    with pytest.raises(files.DataError, match="invalid UTF-8") as error_info:
        files.read_labeled_texts(path)

    assert error_location(error_info) == (path, 2)


def test_corrupt_gzip_is_data_error(tmp_path):
    path = write_bytes(tmp_path / "broken.csv.gz", b"\x1f\x8b" + b"not really gzip data")

    with pytest.raises(files.DataError, match=re.escape(path)):
        files.read_labeled_texts(path)


# Format selection ---------------------------------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("a.csv", "csv"), ("a.CSV.gz", "csv"), ("a.tsv", "tsv"), ("a.tab", "tsv"),
    ("a.jsonl", "jsonl"), ("a.ndjson.gz", "jsonl"), ("a.txt", "label_text"),
])
def test_auto_format_from_suffix(tmp_path, name, expected):
    content = SAMPLES[expected][1]
    if name.endswith(".gz"):
        path = write_gzip(tmp_path / name, content)
    else:
        path = write_text(tmp_path / name, content)

    assert files.read_labeled_texts(path).labels == ["positive", "negative"]


def test_unknown_extension_asks_for_explicit_format(tmp_path):
    path = write_text(tmp_path / "reviews.dat", "text,label\nok,1\n")

    with pytest.raises(files.DataError) as error_info:
        files.read_labeled_texts(path)

    message = str(error_info.value)
    assert message.startswith(path)
    assert "'.dat'" in message
    for file_format in files.FILE_FORMATS:
        assert file_format in message
    assert files.read_labeled_texts(path, file_format="csv").texts == ["ok"]


def test_unknown_format_name_is_value_error(tmp_path):
    path = write_text(tmp_path / "data.csv", "text,label\n")

    with pytest.raises(ValueError, match="file_format"):
        files.read_labeled_texts(path, file_format="parquet")


def test_jsonl_requires_key_names(tmp_path):
    path = write_text(tmp_path / "data.jsonl", '{"text": "a", "label": 1}\n')

    with pytest.raises(ValueError, match="key name"):
        files.read_labeled_texts(path, text_column=0)


def test_jsonl_custom_keys(tmp_path):
    path = write_text(tmp_path / "data.jsonl", '{"review": "a", "stars": 5}\n')

    result = files.read_labeled_texts(path, text_column="review", label_column="stars")

    assert (result.texts, result.labels) == (["a"], ["5"])


# Rows wider than the header -------------------------------------------------------


@pytest.mark.parametrize("name, content, hint", [
    ("comma.csv", "label,text\n1,fine\n0,unquoted, comma in text\n1,\"quoted, fine\"\n", "unquoted ','"),
    ("tab.tsv", "label\ttext\n1\tfine\n0\ta tab\tinside\n1\tlast\n", "holds a tab"),
])
def test_row_with_more_fields_than_the_header_is_an_error_or_a_counted_skip(tmp_path, name, content, hint):
    path = write_text(tmp_path / name, content)

    with pytest.raises(files.DataError, match=re.escape("3 fields, but the header (line 1) has 2")) as error_info:
        files.read_labeled_texts(path)
    assert error_location(error_info) == (path, 3)
    assert hint in str(error_info.value)

    result = files.read_labeled_texts(path, on_bad_rows="skip")
    assert result.skipped_rows == 1
    assert len(result.texts) == 2 and not any(text in ("unquoted", "a tab") for text in result.texts)


def test_without_header_every_row_has_the_first_rows_number_of_fields(tmp_path):
    path = write_text(tmp_path / "plain.csv", "1,fine\n0,unquoted, comma\n1,good\n")

    with pytest.raises(files.DataError, match=re.escape("3 fields, but the first record (line 1) has 2")):
        files.read_labeled_texts(path, header=False, text_column=1, label_column=0)

    result = files.read_labeled_texts(path, header=False, text_column=1, label_column=0, on_bad_rows="skip")
    assert result.texts == ["fine", "good"] and result.skipped_rows == 1


def test_rows_narrower_than_the_header_keep_the_columns_they_need(tmp_path):
    path = write_text(tmp_path / "notes.csv", "text,label,note\nfine,1,kept\nalso fine,0\n")

    assert files.read_labeled_texts(path).texts == ["fine", "also fine"]


def test_label_text_file_with_tabs_points_to_the_file_format_key(tmp_path):
    path = write_text(tmp_path / "data.txt", "label\ttext\n1\tgreat movie\n")

    with pytest.raises(files.DataError, match="set data.file_format: tsv") as error_info:
        files.read_labeled_texts(path, file_format="label_text")
    assert error_location(error_info) == (path, 1)
