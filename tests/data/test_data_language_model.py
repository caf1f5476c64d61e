"""Language-model text: files (plain, gzip, globs, lists), held-out tail, TFDS offline, tokens, batch layouts."""

import gzip

import numpy as np
import pytest
import tensorflow as tf

from pipeline import config as config_lib
from pipeline.data import files
from pipeline.data import language_model as text_stream
from pipeline.data import synthetic


def _data_config(**values) -> config_lib.LanguageModelDataConfig:
    return config_lib.from_tree({"name": "t", "task": "language_model", "data": values}).data


def _strings(tensor) -> list[str]:
    return [item.decode("utf-8") for item in tensor.numpy()]


# === Files ===


def test_files_globs_and_lists_are_read_in_order_as_one_text(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"second file\r\nwindows line\n")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as stream:
        stream.write("first file\nno newline at end")
    (tmp_path / "c.txt").write_text("held out\n", encoding="utf-8")

    splits = text_stream.load_splits(_data_config(train=str(tmp_path / "[ab].txt*"), validation=[str(tmp_path / "c.txt")]),
                                     seed=0)

    assert splits.splits["train"].text == "first file\nno newline at end\nsecond file\nwindows line\n"
    assert splits.splits["validation"].text == "held out\n"
    assert splits.skipped_rows == {"train": 0, "validation": 0}


def test_carriage_return_line_endings_keep_lines_apart(tmp_path):
    (tmp_path / "mac.txt").write_bytes(b"first line\rsecond line\r")

    assert text_stream.read_text([str(tmp_path / "mac.txt")]).text == "first line\nsecond line\n"


def test_a_glob_matching_nothing_names_the_key(tmp_path):
    with pytest.raises(files.DataError, match=r"data.test: no file matches"):
        text_stream.load_splits(_data_config(train=str(tmp_path), test=str(tmp_path / "*.txt")), seed=0)


def test_invalid_utf8_stops_with_file_and_line_or_is_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good line\nbad \xff line\nlast line\n" * 20)

    with pytest.raises(files.DataError, match=r"bad.txt:2: invalid UTF-8"):
        text_stream.load_splits(_data_config(train=str(path)), seed=0)
    splits = text_stream.load_splits(_data_config(train=str(path), on_bad_rows="skip"), seed=0)

    assert splits.skipped_rows["train"] == 20
    assert "\xff" not in splits.splits["train"].text and "bad" not in splits.splits["train"].text


# === Columns of TSV, CSV and JSON Lines files ===


def test_a_text_column_gives_one_line_per_record_from_each_format(tmp_path):
    with gzip.open(tmp_path / "reviews.tsv.gz", "wt", encoding="utf-8") as stream:  # unquoted, as the IMDB files
        stream.write('label\trating\tid\ttext\n0\t1\t7\tA "quoted" <br />review\n1\t9\t8\tSecond\n')
    (tmp_path / "notes.jsonl").write_text('{"text": "two\\nlines", "id": 1}\n\n{"text": "last"}\n', encoding="utf-8")
    (tmp_path / "table.csv").write_text('id,text\n1,"commas, and\r\nbreaks"\n', encoding="utf-8")
    (tmp_path / "plain.txt").write_text("plain\tline\n", encoding="utf-8")

    splits = text_stream.load_splits(_data_config(
        train=[str(tmp_path / name) for name in ("reviews.tsv.gz", "notes.jsonl", "table.csv", "plain.txt")],
        validation=str(tmp_path / "plain.txt")), seed=0)

    assert splits.splits["train"].text == ('A "quoted" <br />review\nSecond\ntwo lines\nlast\ncommas, and breaks\n'
                                           "plain\tline\n")


def test_the_text_column_by_index_without_a_header_or_in_an_explicit_format(tmp_path):
    (tmp_path / "rows.data").write_text("1\tfirst\n2\tsecond\n", encoding="utf-8")
    path = str(tmp_path / "rows.data")

    assert text_stream.read_text([path]).text == "1\tfirst\n2\tsecond\n"  # an unknown extension is plain text
    assert text_stream.read_text([path], file_format="tsv", text_column=1, header=False).text == "first\nsecond\n"
    with pytest.raises(files.DataError, match=r"rows.data: text_column is 'text', but without a header"):
        text_stream.read_text([path], file_format="tsv", header=False)


def test_bad_records_name_file_and_line_or_are_skipped_and_counted(tmp_path):
    (tmp_path / "unsup.tsv").write_text("id\ttext\n1\tgood\n2\ttab\tinside\n3\tgood again\n", encoding="utf-8")
    (tmp_path / "notes.jsonl").write_text('{"text": "fine"}\n{"text": 3}\n{"body": "x"}\n', encoding="utf-8")

    with pytest.raises(files.DataError, match=r"unsup.tsv:3: 3 fields, but the header \(line 1\) has 2"):
        text_stream.load_splits(_data_config(train=str(tmp_path / "unsup.tsv")), seed=0)
    with pytest.raises(files.DataError, match=r"notes.jsonl:2: text must be a string"):
        text_stream.read_text([str(tmp_path / "notes.jsonl")])
    with pytest.raises(files.DataError, match=r"unsup.tsv:1: text_column 'body' is not a column"):
        text_stream.read_text([str(tmp_path / "unsup.tsv")], text_column="body")
    skipped = text_stream.read_text([str(tmp_path / "unsup.tsv"), str(tmp_path / "notes.jsonl")], on_bad_rows="skip")

    assert skipped.text == "good\ngood again\nfine\n" and skipped.skipped_rows == 3


def test_validation_is_the_tail_of_train_cut_at_a_line_start():
    split = text_stream.TextSplit("".join(f"line {index}\n" for index in range(100)), "corpus")

    train, validation = text_stream.hold_out_tail(split, 0.1)

    assert train.text + validation.text == split.text
    assert train.text.endswith("\n") and validation.text.startswith("line ")
    assert 0.08 < len(validation.text) / len(split.text) < 0.12
    with pytest.raises(files.DataError, match="too short"):
        text_stream.hold_out_tail(text_stream.TextSplit("x", "tiny"), 0.1)


def test_empty_training_text_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(files.DataError, match="training text is empty"):
        text_stream.load_splits(_data_config(train=str(tmp_path / "empty.txt")), seed=0)


def test_synthetic_corpus_is_deterministic_and_counts_down():
    text = synthetic.language_model_text(50, seed=3)
    assert text == synthetic.language_model_text(50, seed=3) != synthetic.language_model_text(50, seed=4)
    numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for line in text.splitlines():
        words = line.split()
        assert words[0] == words[words.index("now") + 1]  # the same person at the end
        assert numbers.index(words[2]) - 1 == numbers.index(words[words.index("now") + 3])


def test_tfds_tiny_shakespeare_offline():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=1):
        splits = text_stream.load_splits(_data_config(source="tfds:tiny_shakespeare"), seed=0)

    assert {"train", "validation", "test"} <= set(splits.splits)
    assert all(split.text.endswith("\n") and len(split.text) > 1 for split in splits.splits.values())
    assert splits.splits["train"].origin == "tfds:tiny_shakespeare/train"


# === Tokens ===


def test_characters_round_trip_including_unicode_and_line_breaks():
    texts = tf.constant(["Ein Hund läuft.\nZwei", "", "日本"])

    tokens = text_stream.tokenize(texts, level="char", lowercase=False)

    assert tokens.to_list()[0][:3] == [b"E", b"i", b"n"] and tokens.row_lengths().numpy().tolist() == [20, 0, 2]
    assert _strings(text_stream.detokenize(tokens, level="char")) == ["Ein Hund läuft.\nZwei", "", "日本"]


def test_words_split_off_punctuation_and_line_breaks_and_join_back():
    tokens = text_stream.tokenize(tf.constant(["A dog, running.\nThe  cat\n"]), level="word", lowercase=True)

    assert [token.decode() for token in tokens.to_list()[0]] == ["a", "dog", ",", "running", ".", "\n", "the", "cat",
                                                                  "\n"]
    assert _strings(text_stream.detokenize(tokens, level="word")) == ["a dog, running.\nthe cat\n"]


# === Batch layouts ===


def test_stream_batches_continue_each_row_from_the_previous_batch():
    token_ids = np.arange(1, 1 + 4 * 23, dtype=np.int32)  # 4 rows of 23 tokens

    batches = list(text_stream.stream_batches(token_ids, batch_size=4, steps=5))

    assert len(batches) == 5  # 22 predicted positions per row: chunks of 5, 5, 5, 5, 2
    inputs = np.concatenate([features["token_ids"].numpy() for features, _ in batches], axis=1)
    labels = np.concatenate([labels.numpy() for _, labels in batches], axis=1)
    np.testing.assert_array_equal(inputs, token_ids.reshape(4, 23)[:, :-1])  # row i runs on without a break
    np.testing.assert_array_equal(labels, inputs + 1)
    assert [features["token_ids"].shape[1] for features, _ in batches] == [5, 5, 5, 5, 2]


def test_stream_uses_fewer_rows_when_the_text_is_short():
    token_ids = np.arange(1, 31, dtype=np.int32)

    batches = list(text_stream.stream_batches(token_ids, batch_size=32, steps=10))

    assert text_stream.stream_rows(30, 32, 10) == 2
    assert all(features["token_ids"].shape[0] == 2 for features, _ in batches)


def test_windows_tile_the_stream_and_shuffle_with_the_seed():
    token_ids = np.arange(1, 42, dtype=np.int32)  # 41 tokens: 4 windows of 10, the last token only a label

    ordered = list(text_stream.window_batches(token_ids, batch_size=8, steps=10))
    shuffled = [list(text_stream.window_batches(token_ids, batch_size=8, steps=10, shuffle_buffer=100, seed=seed))
                for seed in (1, 1, 2)]

    inputs, labels = ordered[0][0]["token_ids"].numpy(), ordered[0][1].numpy()
    np.testing.assert_array_equal(inputs, np.arange(1, 41).reshape(4, 10))
    np.testing.assert_array_equal(labels, inputs + 1)
    first_rows = [batches[0][0]["token_ids"].numpy()[:, 0].tolist() for batches in shuffled]
    assert first_rows[0] == first_rows[1] and sorted(first_rows[0]) == [1, 11, 21, 31]
    assert first_rows[0] != first_rows[2] or first_rows[0] != [1, 11, 21, 31]


# === Streamed layouts (data.cache: false) ===


def _documents(count: int, seed: int = 0) -> list[np.ndarray]:
    """Documents of 1-29 ids counting up, each starting 2 above the previous one's end (so breaks show)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, size=count)
    starts = np.cumsum([3] + [int(length) + 1 for length in lengths[:-1]])
    return [np.arange(start, start + length, dtype=np.int32) for start, length in zip(starts, lengths)]


def test_each_streamed_row_reads_whole_documents_in_order_and_continues_from_batch_to_batch():
    documents = _documents(200)

    batches = list(text_stream.streamed_stream_batches(iter(documents), batch_size=4, steps=10))

    inputs = np.concatenate([batch[0] for batch in batches], axis=1)  # (rows, time): each row's stream
    labels = np.concatenate([batch[1] for batch in batches], axis=1)
    np.testing.assert_array_equal(labels[:, :-1], inputs[:, 1:])  # row i of batch k+1 continues row i of batch k
    starts = {int(document[0]): index for index, document in enumerate(documents)}
    for row in inputs:
        # The row is documents laid end to end, each whole (ids count up inside a document), in stream order.
        breaks = np.flatnonzero(np.diff(row) != 1) + 1
        pieces = np.split(row, breaks)
        order = [starts[int(piece[0])] for piece in pieces]
        assert order == sorted(order)
        assert all(np.array_equal(piece, documents[index]) for piece, index in zip(pieces[1:-1], order[1:-1]))
    trained = inputs.size + len(batches[-1][0])  # every input, and each row's last label
    assert sum(len(document) for document in documents) - trained < 4 * (10 + 30)  # only the tail is left


def test_streamed_rows_stay_within_a_document_of_each_other_so_memory_stays_bounded():
    waiting = []
    original = np.concatenate

    def recording_concatenate(arrays, *args, **kwargs):
        result = original(arrays, *args, **kwargs)
        waiting.append(len(result))
        return result

    documents = (np.arange(int(length), dtype=np.int32) + 3
                 for length in np.random.default_rng(0).integers(1, 50, size=5000))
    try:
        np.concatenate = recording_concatenate
        count = sum(1 for _ in text_stream.streamed_stream_batches(documents, batch_size=8, steps=16))
    finally:
        np.concatenate = original

    assert count > 500 and max(waiting) <= 16 + 2 * 50  # never more than a chunk and about two documents


def test_streamed_windows_are_the_in_memory_windows_and_shuffle_with_the_seed():
    documents = _documents(50)
    stream = np.concatenate(documents)

    windows = np.stack(list(text_stream.streamed_windows(iter(documents), steps=10)))
    in_memory = next(iter(text_stream.window_batches(stream, batch_size=1000, steps=10)))

    np.testing.assert_array_equal(windows[:, :-1], in_memory[0]["token_ids"].numpy())
    np.testing.assert_array_equal(windows[:, 1:], in_memory[1].numpy())
    passes = [[batch[0]["token_ids"].numpy()[:, 0].tolist() for batch in text_stream.streamed_batches(
        lambda: iter(documents), batch_size=8, steps=10, carry_state=False, shuffle_buffer=20, seed=seed)]
        for seed in (1, 1, 2)]
    assert passes[0] == passes[1] != passes[2]
    assert sorted(sum(passes[0], [])) == sorted(windows[:, 0].tolist())


def test_a_streamed_training_split_is_read_again_on_every_pass_and_counts_its_skips(tmp_path, caplog):
    (tmp_path / "train.jsonl").write_text('{"text": "one"}\n{"text": 2}\n{"text": "three"}\n', encoding="utf-8")
    (tmp_path / "valid.txt").write_text("held out\n", encoding="utf-8")
    config = config_lib.from_tree({"name": "t", "task": "language_model", "train": {"steps_per_epoch": 5}, "data": {
        "train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "valid.txt"), "cache": False,
        "on_bad_rows": "skip"}}).data

    splits = text_stream.load_splits(config, seed=0)

    train = splits.splits["train"]
    assert isinstance(train, text_stream.StreamedText) and splits.splits["validation"].text == "held out\n"
    assert list(train.read()) == ["one", "three"] == list(train.read())
    assert "skipped 1 malformed lines or records in this pass" in caplog.text
    with pytest.raises(config_lib.ConfigError, match=r"^data.validation: required with data.cache: false"):
        _data_config(train=str(tmp_path / "train.jsonl"), cache=False)
    with pytest.raises(config_lib.ConfigError, match=r"^train.steps_per_epoch: required with data.cache: false"):
        _data_config(train=str(tmp_path / "train.jsonl"), validation=str(tmp_path / "valid.txt"), cache=False)
