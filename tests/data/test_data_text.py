"""Text standardization and vectorization: normalization rules, vocabulary round trip, id layout."""

import json

import numpy as np
import pytest
import tensorflow as tf

from pipeline.data import text as text_lib

TRAIN_TEXTS = [
    "The movie was great, really great!",
    "A dull plot.<br /><br />Bad acting.",
    "I don't like the ending",
    "great cast and a great story",
]


def standardize(texts, *, lowercase=True, strip_punctuation=True) -> list[str]:
    tensor = text_lib.standardize(tf.constant(texts), lowercase=lowercase, strip_punctuation=strip_punctuation)
    return [item.decode("utf-8") for item in tensor.numpy()]


def words(text: str, **options) -> list[str]:
    return standardize([text], **options)[0].split()


@pytest.fixture(scope="module")
def vectorizer():
    standardized = tf.data.Dataset.from_tensor_slices(tf.constant(TRAIN_TEXTS)).batch(2).map(
        lambda batch: text_lib.standardize(batch, lowercase=True, strip_punctuation=True))
    return text_lib.fit_vectorizer(standardized, vocabulary_size=50)


# === standardize ===


def test_lowercases_unicode():
    assert standardize(["ÉTÉ", "ÜBER Straße"]) == ["été", "über straße"]


def test_lowercase_false_keeps_case():
    assert words("ÉTÉ Great", lowercase=False) == ["ÉTÉ", "Great"]


@pytest.mark.parametrize("tag", ["<br />", "<br/>", "<br>", "< br / >"])
def test_line_break_tags_become_spaces(tag):
    assert words(f"one{tag}two") == ["one", "two"]


@pytest.mark.parametrize("strip_punctuation", [True, False])
def test_line_break_tags_removed_even_without_punctuation_stripping(strip_punctuation):
    assert words("one<br />two", strip_punctuation=strip_punctuation) == ["one", "two"]


def test_upper_case_line_break_tags_become_spaces():
    # HTML tags are case-insensitive; `<BR />` must not leave a `br` token behind.
    assert words("one<BR />two") == ["one", "two"]


@pytest.mark.parametrize("text, expected", [
    ("don't", ["dont"]),
    ("it’s fine", ["its", "fine"]),
    ("rock`n`roll", ["rocknroll"]),
])
def test_apostrophes_are_removed(text, expected):
    assert words(text) == expected


def test_sentence_glued_by_a_period_splits_into_words():
    assert words("good.The end") == ["good", "the", "end"]


def test_all_ascii_punctuation_becomes_space():
    punctuation = "!\"#$%&()*+,-./:;<=>?@[\\]^_{|}~"

    assert words(f"a{punctuation}b") == ["a", "b"]
    for character in punctuation:
        assert words(f"x{character}y") == ["x", "y"], character


def test_strip_punctuation_false_keeps_punctuation():
    assert words("Don't stop, good.The end!", strip_punctuation=False) == ["don't", "stop,", "good.the", "end!"]


def test_standardize_keeps_shape():
    texts = tf.constant([["A b", "C"], ["D.", ""]])

    result = text_lib.standardize(texts, lowercase=True, strip_punctuation=True)

    assert result.shape == (2, 2)
    assert result.dtype == tf.string


# === vocabulary ===


def test_vocabulary_starts_with_padding_and_unknown(vectorizer):
    vocabulary = vectorizer.get_vocabulary()

    assert vocabulary[:2] == ["", "[UNK]"]
    assert vocabulary[2] == "great"  # the most frequent word
    assert "dont" in vocabulary and "don't" not in vocabulary
    assert "br" not in vocabulary


def test_vocabulary_size_caps_the_vocabulary():
    standardized = tf.data.Dataset.from_tensor_slices(tf.constant(TRAIN_TEXTS)).batch(4).map(
        lambda batch: text_lib.standardize(batch, lowercase=True, strip_punctuation=True))

    vectorizer = text_lib.fit_vectorizer(standardized, vocabulary_size=5)

    assert vectorizer.vocabulary_size() == 5


def test_vocabulary_round_trip_gives_identical_ids(tmp_path, vectorizer):
    texts = ["the movie was great", "zebra unknown words", "", "Great! A DULL plot, don't."]
    standardized = text_lib.standardize(tf.constant(texts), lowercase=True, strip_punctuation=True)

    path = text_lib.save_vocabulary(vectorizer.get_vocabulary(), str(tmp_path / "vocab"))
    loaded = text_lib.load_vocabulary(str(tmp_path / "vocab"))
    rebuilt = text_lib.vectorizer_from_vocabulary(loaded)

    assert path == str(tmp_path / "vocab" / text_lib.VOCABULARY_FILE)
    assert loaded == vectorizer.get_vocabulary()
    original = text_lib.token_ids(vectorizer, standardized, 16).numpy()
    np.testing.assert_array_equal(text_lib.token_ids(rebuilt, standardized, 16).numpy(), original)
    assert list(original[1][:3]) == [1, 1, 1]  # unknown words map to the OOV id


def test_save_vocabulary_writes_a_json_list_of_strings(tmp_path):
    path = text_lib.save_vocabulary(["neg", "pos", "été"], str(tmp_path), "labels.json")

    with open(path, encoding="utf-8") as stream:
        assert json.load(stream) == ["neg", "pos", "été"]
    assert text_lib.load_vocabulary(str(tmp_path), "labels.json") == ["neg", "pos", "été"]
    assert not (tmp_path / "labels.json.tmp").exists()


def test_load_vocabulary_missing_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocabulary.json"):
        text_lib.load_vocabulary(str(tmp_path))


# === token ids ===


def test_token_ids_keep_the_first_tokens(vectorizer):
    standardized = tf.constant(["great cast and a great story"])
    full = text_lib.token_ids(vectorizer, standardized, 100).numpy()

    truncated = text_lib.token_ids(vectorizer, standardized, 3).numpy()

    assert truncated.shape == (1, 3)
    np.testing.assert_array_equal(truncated[0], full[0, :3])


def test_token_ids_right_pad_with_zero(vectorizer):
    ids = text_lib.token_ids(vectorizer, tf.constant(["great", "great cast and a"]), 10)

    assert ids.dtype == tf.int32
    assert ids.shape == (2, 4)  # padded to the longest text, not to max_sequence_length
    row = ids.numpy()[0]
    assert row[0] != 0
    assert list(row[1:]) == [0, 0, 0]


def test_token_ids_for_empty_texts_have_one_column(vectorizer):
    ids = text_lib.token_ids(vectorizer, tf.constant(["", "", ""]), 10)

    assert ids.shape == (3, 1)
    assert ids.dtype == tf.int32
    assert not ids.numpy().any()


def test_ragged_token_ids_rows_have_at_least_one_token(vectorizer):
    standardized = tf.constant(["", "great story", "zebra", "great cast and a great story"])

    ragged = text_lib.ragged_token_ids(vectorizer, standardized, 4)

    assert isinstance(ragged, tf.RaggedTensor)
    assert ragged.dtype == tf.int32
    assert ragged.row_lengths().numpy().tolist() == [1, 2, 1, 4]
    assert ragged[0].numpy().tolist() == [0]
    assert ragged[2].numpy().tolist() == [1]


def test_token_ids_work_inside_a_tf_function(vectorizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encode(texts):
        return text_lib.token_ids(vectorizer, text_lib.standardize(texts, lowercase=True,
                                                                   strip_punctuation=True), 5)

    eager = text_lib.token_ids(vectorizer, text_lib.standardize(
        tf.constant(["Great story!", ""]), lowercase=True, strip_punctuation=True), 5)

    np.testing.assert_array_equal(encode(tf.constant(["Great story!", ""])).numpy(), eager.numpy())


def test_a_vocabulary_file_keeps_its_order_and_passes_over_reserved_and_whitespace_tokens(tmp_path):
    json_file = tmp_path / "vocabulary.json"
    json_file.write_text(json.dumps(["", "[UNK]", "\n", "the", "film", "a b", "good"]), encoding="utf-8")
    lines_file = tmp_path / "vocabulary.txt"
    lines_file.write_text("the\nfilm\n\ngood\nbad\n", encoding="utf-8")

    assert text_lib.read_vocabulary_file(str(json_file), 5) == (["", "[UNK]", "the", "film", "good"], 4)
    assert text_lib.read_vocabulary_file(str(lines_file), 4) == (["", "[UNK]", "the", "film"], 1)


def test_a_vocabulary_file_with_a_repeated_or_no_usable_token_is_refused_with_its_line(tmp_path):
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("the\nfilm\nthe\n", encoding="utf-8")
    empty = tmp_path / "empty.json"
    empty.write_text('["", "[UNK]"]', encoding="utf-8")

    with pytest.raises(ValueError, match=r"repeated.txt: line 3 repeats the token 'the' of line 1"):
        text_lib.read_vocabulary_file(str(repeated), 10)
    with pytest.raises(ValueError, match="empty.json: no usable token"):
        text_lib.read_vocabulary_file(str(empty), 10)

