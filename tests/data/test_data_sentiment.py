"""Labelled splits from files, synthetic data and (mocked) TFDS; vectorized, bucketed batches."""

import collections
import os

import numpy as np
import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import tasks as tasks_lib
from pipeline.data import batching
from pipeline.data import files
from pipeline.data import sentiment
from pipeline.data import text as text_lib


def write_tsv(path, rows, header=("label", "text")) -> str:
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def data_config(**data) -> config_lib.TextClassificationDataConfig:
    return config_lib.from_tree({"name": "t", "task": "sentiment", "data": data}).data


def numbered_rows(count: int, labels=("0", "1")) -> list[tuple[str, str]]:
    return [(labels[index % len(labels)], f"text number {index}") for index in range(count)]


def label_names_of(split: sentiment.Split, label_names) -> list[str]:
    return [label_names[index] for index in split.labels]


# === Labels ===


def test_integer_labels_from_train_sort_numerically(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", [("10", "a"), ("2", "b"), ("10", "c"), ("2", "d")])
    validation = write_tsv(tmp_path / "validation.tsv", [("2", "e"), ("10", "f")])

    splits = sentiment.load_splits(data_config(train=train, validation=validation), seed=0)

    assert splits.label_names == ("2", "10")
    assert splits.splits["train"].labels.tolist() == [1, 0, 1, 0]
    assert splits.splits["validation"].labels.tolist() == [0, 1]
    assert splits.splits["train"].labels.dtype == np.int32


def test_string_labels_from_train_sort_alphabetically(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", [("pos", "a"), ("neg", "b"), ("neutral", "c")])
    validation = write_tsv(tmp_path / "validation.tsv", [("neutral", "d")])

    splits = sentiment.load_splits(data_config(train=train, validation=validation), seed=0)

    assert splits.label_names == ("neg", "neutral", "pos")
    assert splits.splits["train"].labels.tolist() == [2, 0, 1]


def test_configured_labels_map_integers_as_indices_and_names_by_name(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", [("0", "a"), ("1", "b"), ("positive", "c"), ("negative", "d")])
    validation = write_tsv(tmp_path / "validation.tsv", [("1", "e")])

    splits = sentiment.load_splits(
        data_config(train=train, validation=validation, labels=["negative", "positive"]), seed=0)

    assert splits.label_names == ("negative", "positive")
    assert splits.splits["train"].labels.tolist() == [0, 1, 1, 0]
    assert splits.splits["validation"].labels.tolist() == [1]


def test_configured_labels_keep_their_order(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", [("b", "x"), ("a", "y")])
    validation = write_tsv(tmp_path / "validation.tsv", [("a", "z")])

    splits = sentiment.load_splits(
        data_config(train=train, validation=validation, labels=["b", "a"]), seed=0)

    assert splits.label_names == ("b", "a")
    assert splits.splits["train"].labels.tolist() == [0, 1]


def test_unseen_label_in_test_names_file_and_label(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", numbered_rows(10, ("neg", "pos")))
    test = write_tsv(tmp_path / "test.tsv", [("neg", "a"), ("neutral", "b")])

    with pytest.raises(files.DataError) as error_info:
        sentiment.load_splits(data_config(train=train, test=test), seed=0)

    message = str(error_info.value)
    assert test in message
    assert "'neutral'" in message


def test_csv_read_as_label_text_points_to_the_file_format_key(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("label,text\n1,great movie\n0,dull film\n", encoding="utf-8")

    with pytest.raises(files.DataError, match="set data.file_format: csv") as error_info:
        sentiment.load_splits(data_config(train=str(train), labels=["neg", "pos"]), seed=0)

    assert "'label,text'" in str(error_info.value) and "data.labels" not in str(error_info.value)
    with pytest.raises(files.DataError, match="set data.file_format: csv"):  # without data.labels too
        sentiment.load_splits(data_config(train=str(train)), seed=0)


def test_out_of_range_integer_label_with_configured_labels_is_rejected(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", numbered_rows(10))
    test = write_tsv(tmp_path / "test.tsv", [("0", "a"), ("2", "b")])

    with pytest.raises(files.DataError, match="'2'") as error_info:
        sentiment.load_splits(data_config(train=train, test=test, labels=["neg", "pos"]), seed=0)

    assert test in str(error_info.value)


def test_unseen_integer_label_is_not_taken_as_an_index_into_collected_labels(tmp_path):
    # Star ratings 1, 2, 4, 5 in train: the collected class names are ("1", "2", "4", "5"). A test rating
    # of 3 is a label the classifier never saw; it must be rejected, not read as index 3 (class "5").
    train = write_tsv(tmp_path / "train.tsv", numbered_rows(12, ("1", "2", "4", "5")))
    test = write_tsv(tmp_path / "test.tsv", [("5", "a"), ("3", "b")])

    with pytest.raises(files.DataError, match="'3'"):
        sentiment.load_splits(data_config(train=train, test=test), seed=0)


def test_single_class_training_split_is_rejected(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", numbered_rows(10, ("pos",)))

    with pytest.raises(files.DataError, match="at least 2 classes"):
        sentiment.load_splits(data_config(train=train), seed=0)


def test_empty_training_split_is_rejected(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", [])

    with pytest.raises(files.DataError, match="no examples"):
        sentiment.load_splits(data_config(train=train), seed=0)


# === Validation carved from train ===


def carve(tmp_path, seed: int, count: int = 50, fraction: float = 0.2):
    train = write_tsv(tmp_path / "train.tsv", numbered_rows(count))
    return sentiment.load_splits(data_config(train=train, validation_fraction=fraction), seed=seed)


def test_validation_is_carved_with_the_requested_fraction_and_no_overlap(tmp_path):
    splits = carve(tmp_path, seed=3)

    train, validation = splits.splits["train"], splits.splits["validation"]
    assert len(validation.texts) == 10
    assert len(train.texts) == 40
    assert not set(train.texts) & set(validation.texts)
    assert set(train.texts) | set(validation.texts) == {f"text number {index}" for index in range(50)}
    assert "carved" in validation.origin
    assert "test" not in splits.splits


def test_carved_examples_keep_their_labels(tmp_path):
    splits = carve(tmp_path, seed=3)

    for split in splits.splits.values():
        for text, label in zip(split.texts, split.labels):
            number = int(text.rsplit(" ", 1)[1])
            assert label == number % 2, text


def test_carving_is_seeded(tmp_path):
    first = carve(tmp_path, seed=11).splits["validation"].texts
    again = carve(tmp_path, seed=11).splits["validation"].texts
    other = carve(tmp_path, seed=12).splits["validation"].texts

    assert first == again
    assert first != other


def test_given_validation_file_is_not_carved(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", numbered_rows(20))
    validation = write_tsv(tmp_path / "validation.tsv", [("1", "held out")])

    splits = sentiment.load_splits(data_config(train=train, validation=validation), seed=0)

    assert len(splits.splits["train"].texts) == 20
    assert splits.splits["validation"].texts == ["held out"]


def test_too_few_examples_to_carve_is_rejected(tmp_path):
    train = write_tsv(tmp_path / "train.tsv", [("0", "a"), ("1", "b")])

    with pytest.raises(files.DataError, match="validation"):
        sentiment.load_splits(data_config(train=train, validation_fraction=0.9), seed=0)


# === Bad rows ===


def test_skipped_rows_are_counted_per_split(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("label\ttext\n0\tfine\n1\tgood\nno tab here\n0\tok\n1\tnice\n0\tmeh\n1\tyes\n"
                     "0\tno\n1\tsure\n0\tbad\n\tempty label\n", encoding="utf-8")
    test = tmp_path / "test.tsv"
    test.write_text("label\ttext\n1\tgood\nbroken\n\tmissing\n", encoding="utf-8")

    splits = sentiment.load_splits(
        data_config(train=str(train), test=str(test), on_bad_rows="skip"), seed=0)

    assert splits.skipped_rows == {"train": 2, "test": 2, "validation": 0}
    assert len(splits.splits["train"].texts) + len(splits.splits["validation"].texts) == 9
    assert splits.splits["test"].texts == ["good"]


def test_bad_row_with_error_policy_names_file_and_line(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("label\ttext\n0\tfine\nno tab here\n", encoding="utf-8")

    with pytest.raises(files.DataError, match=f"{train}:3:"):
        sentiment.load_splits(data_config(train=str(train)), seed=0)


# === Synthetic source ===


def test_synthetic_source_gives_three_splits():
    splits = sentiment.load_splits(
        data_config(source="synthetic:sentiment", synthetic_examples=100, validation_fraction=0.2), seed=5)

    assert set(splits.splits) == {"train", "validation", "test"}
    assert splits.label_names == ("negative", "positive")
    assert len(splits.splits["train"].texts) == 80
    assert len(splits.splits["validation"].texts) == 20
    assert len(splits.splits["test"].texts) == 25
    assert set(splits.splits["train"].labels.tolist()) == {0, 1}
    assert all(isinstance(text, str) and text for text in splits.splits["test"].texts)


def test_synthetic_source_is_seeded():
    config = data_config(source="synthetic:sentiment", synthetic_examples=40)

    first = sentiment.load_splits(config, seed=1)
    again = sentiment.load_splits(config, seed=1)
    other = sentiment.load_splits(config, seed=2)

    assert first.splits["train"].texts == again.splits["train"].texts
    assert first.splits["train"].texts != other.splits["train"].texts
    assert first.splits["test"].texts != first.splits["train"].texts[:len(first.splits["test"].texts)]


# === TFDS sources, offline ===


def write_tfds_metadata(data_dir: str, name: str, split_sizes: dict[str, int]) -> None:
    """Writes the dataset_info.json a prepared TFDS data set has, so mocked builders know their splits."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    split_infos = [
        tfds.core.SplitInfo(
            name=split, shard_lengths=[size], num_bytes=0,
            filename_template=tfds.core.ShardedFileTemplate(
                data_dir=builder.data_dir, dataset_name=builder.name, split=split, filetype_suffix="tfrecord"))
        for split, size in split_sizes.items()]
    builder.info.set_splits(tfds.core.SplitDict(split_infos))
    os.makedirs(builder.data_dir, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)


def unlabelled_test_split(self, split, decoders=None, read_config=None, **kwargs):
    """Mock examples for glue/sst2 whose `test` split has label -1, like the real GLUE test sets."""
    del self, decoders, read_config, kwargs
    count = 12
    label = [-1] * count if split == "test" else [index % 2 for index in range(count)]
    return tf.data.Dataset.from_tensor_slices({
        "sentence": [f"{split} sentence {index}" for index in range(count)],
        "label": tf.constant(label, tf.int64),
        "idx": tf.range(count, dtype=tf.int32),
    })


def test_tfds_imdb_under_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    write_tfds_metadata(str(tmp_path), "imdb_reviews", {"train": 40, "test": 40, "unsupervised": 40})
    with tfds.testing.mock_data(num_examples=40, data_dir=str(tmp_path)):
        splits = sentiment.load_splits(data_config(source="tfds:imdb_reviews"), seed=0)

    assert splits.label_names == ("neg", "pos")
    assert set(splits.splits) == {"train", "validation", "test"}
    assert len(splits.splits["validation"].texts) == 4
    assert len(splits.splits["train"].texts) == 36
    assert len(splits.splits["test"].texts) == 40
    assert "carved" in splits.splits["validation"].origin
    for split in splits.splits.values():
        assert all(isinstance(text, str) for text in split.texts)
        assert set(split.labels.tolist()) <= {0, 1}


def test_tfds_imdb_under_plain_mock_data_loads_or_reports_the_source():
    # Without metadata files (the default of `mock_data`, and TFDS's state for a data set it cannot
    # describe), the source must either load or fail with a DataError naming it: never a bare KeyError.
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        try:
            splits = sentiment.load_splits(data_config(source="tfds:imdb_reviews"), seed=0)
        except files.DataError as error:
            assert "imdb_reviews" in str(error)
        else:
            assert splits.label_names == ("neg", "pos")
            assert {"train", "validation"} <= set(splits.splits)


def test_tfds_source_without_a_train_split_is_a_data_error(tmp_path):
    import tensorflow_datasets as tfds

    write_tfds_metadata(str(tmp_path), "imdb_reviews", {"test": 10})
    with tfds.testing.mock_data(num_examples=10, data_dir=str(tmp_path)):
        with pytest.raises(files.DataError, match="imdb_reviews"):
            sentiment.load_splits(data_config(source="tfds:imdb_reviews"), seed=0)


def test_tfds_glue_sst2_uses_sentence_and_drops_unlabelled_test(tmp_path):
    import tensorflow_datasets as tfds

    write_tfds_metadata(str(tmp_path), "glue/sst2", {"train": 12, "validation": 12, "test": 12})
    with tfds.testing.mock_data(data_dir=str(tmp_path), as_dataset_fn=unlabelled_test_split):
        splits = sentiment.load_splits(data_config(source="tfds:glue/sst2"), seed=0)

    assert splits.label_names == ("negative", "positive")
    assert set(splits.splits) == {"train", "validation"}
    assert splits.splits["train"].texts[:2] == ["train sentence 0", "train sentence 1"]
    assert splits.splits["validation"].labels.tolist() == [index % 2 for index in range(12)]
    assert "carved" not in splits.splits["validation"].origin


def test_tfds_glue_sst2_under_random_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    write_tfds_metadata(str(tmp_path), "glue/sst2", {"train": 16, "validation": 16, "test": 16})
    with tfds.testing.mock_data(num_examples=16, data_dir=str(tmp_path)):
        splits = sentiment.load_splits(data_config(source="tfds:glue/sst2"), seed=0)

    assert {"train", "validation"} <= set(splits.splits)
    for split in splits.splits.values():
        assert len(split.texts) == 16
        assert all(isinstance(text, str) for text in split.texts)
        assert set(split.labels.tolist()) <= {0, 1}


# === Vectorized, bucketed batches ===

BUCKET_TEXTS = [" ".join(f"w{position % 7}" for position in range(length)) for length in
                [0, 1, 1, 2, 3, 3, 4, 5, 6, 8, 9, 10, 12, 13, 15, 16, 18, 20, 22, 25, 3, 7, 11, 2]]


@pytest.fixture(scope="module")
def bucket_split():
    labels = np.array([index % 3 for index in range(len(BUCKET_TEXTS))], dtype=np.int32)
    return sentiment.Split(texts=list(BUCKET_TEXTS), labels=labels, origin="memory")


@pytest.fixture(scope="module")
def encode():
    def standardize(texts):
        return text_lib.standardize(texts, lowercase=True, strip_punctuation=True)

    vectorizer = text_lib.fit_vectorizer(
        tf.data.Dataset.from_tensor_slices(tf.constant(BUCKET_TEXTS)).batch(8).map(standardize), 20)
    return lambda texts: text_lib.ragged_token_ids(vectorizer, standardize(texts), 20)


def example_lengths(split, encode) -> np.ndarray:
    return encode(tf.constant(split.texts)).row_lengths().numpy()


def test_token_dataset_yields_one_example_per_text(bucket_split, encode):
    examples = list(sentiment.token_dataset(bucket_split, encode))

    assert len(examples) == len(BUCKET_TEXTS)
    lengths = example_lengths(bucket_split, encode)
    for (features, label), length, expected_label in zip(examples, lengths, bucket_split.labels):
        assert features["token_ids"].dtype == tf.int32
        assert features["token_ids"].shape == (length,)
        assert int(label) == expected_label
    assert examples[0][0]["token_ids"].numpy().tolist() == [0]  # the empty text keeps one padding id
    assert lengths.max() == 20  # truncated to max_sequence_length


def test_bucket_boundaries_are_strictly_increasing_ints():
    lengths = np.random.default_rng(0).integers(1, 200, size=500)

    boundaries = batching.bucket_boundaries(lengths, 8)

    assert 1 <= len(boundaries) <= 7
    assert all(isinstance(value, int) for value in boundaries)
    assert all(later > earlier for earlier, later in zip(boundaries, boundaries[1:]))
    assert boundaries[0] > lengths.min()
    assert boundaries[-1] <= lengths.max()


def test_bucket_boundaries_collapse_repeated_lengths():
    assert batching.bucket_boundaries(np.array([5] * 100), 8) == [6]
    assert len(batching.bucket_boundaries(np.array([5] * 50 + [9] * 50), 8)) < 7


@pytest.mark.parametrize("lengths, num_buckets", [(np.array([3, 4, 5]), 1), (np.zeros([0]), 4)])
def test_bucket_boundaries_empty_for_one_bucket_or_no_lengths(lengths, num_buckets):
    assert batching.bucket_boundaries(lengths, num_buckets) == []


CACHE = pytest.mark.parametrize("cache", [True, False], ids=["in_memory", "streaming"])


@CACHE
@pytest.mark.parametrize("bucketed", [True, False], ids=["bucketed", "padded"])
def test_batches_keep_every_example_as_int32_matrices(bucket_split, encode, bucketed, cache):
    lengths = example_lengths(bucket_split, encode)
    boundaries = batching.bucket_boundaries(lengths, 4) if bucketed else None
    dataset = batching.batch_examples(sentiment.token_dataset(bucket_split, encode), lengths=lengths,
                                      batch_size=4, boundaries=boundaries, shuffle_buffer=100, seed=0,
                                      cache=cache)

    seen = collections.Counter()
    total = 0
    batches = 0
    for features, labels in dataset:
        batches += 1
        token_ids = features["token_ids"]
        assert token_ids.dtype == tf.int32
        assert token_ids.shape.rank == 2
        assert token_ids.shape[0] == labels.shape[0] <= 4
        total += int(labels.shape[0])
        for row in token_ids.numpy():
            seen[tuple(int(value) for value in np.trim_zeros(row, "b"))] += 1

    assert total == len(BUCKET_TEXTS)
    assert batches == batching.count_batches(lengths, 4, boundaries) == int(dataset.cardinality())
    expected = collections.Counter(
        tuple(int(value) for value in np.trim_zeros(row, "b"))
        for row in encode(tf.constant(BUCKET_TEXTS)).to_tensor().numpy())
    assert seen == expected


@CACHE
@pytest.mark.parametrize("shuffle_buffer", [0, 100], ids=["ordered", "shuffled"])
def test_bucketed_batches_group_similar_lengths(bucket_split, encode, cache, shuffle_buffer):
    lengths = example_lengths(bucket_split, encode)
    boundaries = batching.bucket_boundaries(lengths, 4)
    dataset = batching.batch_examples(sentiment.token_dataset(bucket_split, encode), lengths=lengths,
                                      batch_size=3, boundaries=boundaries, cache=cache,
                                      shuffle_buffer=shuffle_buffer, seed=0)

    assert len(boundaries) >= 2
    for features, _ in dataset:
        token_ids = features["token_ids"].numpy()
        batch_lengths = np.maximum(np.count_nonzero(token_ids, axis=1), 1)
        buckets = set(np.searchsorted(boundaries, batch_lengths, side="right").tolist())
        assert len(buckets) == 1, (batch_lengths, boundaries)
        assert token_ids.shape[1] == batch_lengths.max()  # padded to its own longest example


@CACHE
def test_shuffled_batches_repeat_with_the_same_seed(bucket_split, encode, cache):
    lengths = example_lengths(bucket_split, encode)

    def first_epoch(seed):
        dataset = batching.batch_examples(sentiment.token_dataset(bucket_split, encode),
                                          lengths=lengths, batch_size=4, boundaries=None, shuffle_buffer=100,
                                          seed=seed, cache=cache)
        return [features["token_ids"].numpy().tolist() for features, _ in dataset]

    assert first_epoch(7) == first_epoch(7)
    assert first_epoch(7) != first_epoch(8)


@CACHE
def test_every_epoch_reshuffles_but_the_sequence_of_epochs_repeats(bucket_split, encode, cache):
    lengths = example_lengths(bucket_split, encode)

    def epochs(count):
        dataset = batching.batch_examples(sentiment.token_dataset(bucket_split, encode),
                                          lengths=lengths, batch_size=4, boundaries=[3], shuffle_buffer=100,
                                          seed=3, cache=cache)
        return [[features["token_ids"].numpy().tolist() for features, _ in dataset] for _ in range(count)]

    first, second = epochs(2)
    assert first != second
    assert epochs(2) == [first, second]


def test_unshuffled_in_memory_batches_keep_the_order_within_each_bucket(bucket_split, encode):
    lengths = example_lengths(bucket_split, encode)
    dataset = batching.batch_examples(sentiment.token_dataset(bucket_split, encode), lengths=lengths,
                                      batch_size=2, boundaries=[3], cache=True)
    encoded = [tuple(int(value) for value in np.trim_zeros(np.array(row), "b"))
               for row in encode(tf.constant(BUCKET_TEXTS)).to_list()]
    expected = ([row for row, length in zip(encoded, lengths) if length < 3]
                + [row for row, length in zip(encoded, lengths) if length >= 3])

    rows = [tuple(int(value) for value in np.trim_zeros(row, "b"))
            for features, _ in dataset for row in features["token_ids"].numpy()]

    assert rows == expected


def test_in_memory_batches_pad_ragged_features_of_any_rank():
    characters = tf.ragged.constant([[[1, 2], [3]], [[4, 5, 6]], [[7]]], dtype=tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices(({"token_ids": tf.ragged.constant([[1, 2], [3], [4]]),
                                                   "characters": characters,
                                                   "text": tf.constant(["a b", "c", "d"])},
                                                  tf.constant([0, 1, 0])))

    (features, labels), = list(batching.batch_examples(dataset, lengths=np.array([2, 1, 1]), batch_size=3,
                                                       boundaries=None, cache=True))

    assert features["characters"].numpy().tolist() == [[[1, 2, 0], [3, 0, 0]], [[4, 5, 6], [0, 0, 0]],
                                                       [[7, 0, 0], [0, 0, 0]]]
    assert features["text"].numpy().tolist() == [b"a b", b"c", b"d"]
    assert labels.numpy().tolist() == [0, 1, 0]


@pytest.mark.parametrize("boundaries, expected", [
    (None, 2), ([3], 2), ([2, 4], 3), ([10], 2), ([2, 3, 4, 5], 4)])
def test_count_batches_counts_a_partial_batch_per_bucket(boundaries, expected):
    lengths = np.array([1, 1, 2, 3, 3, 5])  # for [2, 3, 4, 5]: {1, 1}, {2}, {3, 3}, {}, {5}

    assert batching.count_batches(lengths, 3, boundaries) == expected


def test_tfds_download_failure_is_one_readable_data_error(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'ai.stanford.edu'\nmore detail")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    data = config_lib.from_tree({"name": "t", "task": "sentiment",
                                 "data": {"source": "tfds:imdb_reviews", "tfds_data_dir": str(tmp_path)}}).data
    with pytest.raises(files.DataError, match=r"tfds:imdb_reviews: could not download or prepare the data "
                                              r"\(ConnectionError: Failed to resolve 'ai.stanford.edu'\); TFDS needs"):
        sentiment.load_splits(data, seed=1)
    unknown = config_lib.from_tree({"name": "t", "task": "sentiment", "data": {"source": "tfds:no_such_set"}}).data
    with pytest.raises(files.DataError, match="tfds:no_such_set: not a TFDS data set"):
        sentiment.load_splits(unknown, seed=1)


def test_the_sentiment_task_takes_its_vocabulary_from_data_vocabulary_file(tmp_path):
    vocabulary_file = tmp_path / "vocabulary.txt"
    vocabulary_file.write_text("great\nawful\nfilm\n", encoding="utf-8")
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")], [f"data.vocabulary_file={vocabulary_file}"])
    task = tasks_lib.create_task(config)

    preprocessing = task.fit_preprocessing(task.load_splits())

    assert preprocessing.vocabulary == ["", "[UNK]", "great", "awful", "film"]
    assert config.input_paths()["data.vocabulary_file"] == [str(vocabulary_file)]
