"""Streamed training pairs (`data.cache: false`): read from the files on every pass, never held in memory."""

import gzip

import pytest

import helpers
from pipeline import config as config_lib
from pipeline import tasks
from pipeline.data import files
from pipeline.data import translation as translation_data

TINY = str(helpers.REPOSITORY / "configs/tiny/translation.yaml")


def _write(path, lines):
    path.write_bytes(gzip.compress("".join(f"{line}\n" for line in lines).encode()))


@pytest.fixture
def corpus(tmp_path):
    _write(tmp_path / "train.de.gz", [f"Satz Nummer {index}." for index in range(300)])
    _write(tmp_path / "train.en.gz", [f"Sentence number {index}." for index in range(300)])
    _write(tmp_path / "val.de.gz", ["Ein Satz.", "Zwei Sätze."])
    _write(tmp_path / "val.en.gz", ["One sentence.", "Two sentences."])
    return ["data.source=files", "data.file_format=aligned", "data.source_language=de", "data.target_language=en",
            f"data.train={tmp_path}/train.{{language}}.gz", f"data.validation={tmp_path}/val.{{language}}.gz",
            "data.cache=false", "data.shuffle_buffer=50", f"runtime.run_dir={tmp_path}/run"]


def test_training_pairs_stream_from_the_files_on_every_pass(corpus):
    config = config_lib.load_config([TINY], corpus + ["train.steps_per_epoch=3"])

    splits = translation_data.load_splits(config.data, seed=1).splits

    train = splits["train"]
    assert isinstance(train, translation_data.StreamedPairs)
    assert isinstance(splits["validation"], translation_data.Pairs)
    assert next(train.read()) == ("Satz Nummer 0.", "Sentence number 0.")
    assert list(train.read()) == list(train.read()) and len(list(train.targets)) == 300


@pytest.mark.slow  # trains SentencePiece models and traces the input pipeline
def test_streamed_batches_are_vectorized_and_uncounted(corpus):
    subword_settings = ["train.steps_per_epoch=3", "data.tokenizer=sentencepiece", "data.source_vocabulary_size=40",
                        "data.target_vocabulary_size=40", "data.sentencepiece.byte_fallback=false",
                        "data.lowercase=false"]
    config = config_lib.load_config([TINY], corpus + subword_settings)
    task = tasks.create_task(config)
    splits = task.load_splits()
    datasets = task.datasets(splits, task.fit_preprocessing(splits))

    features, labels = next(iter(datasets["train"]))
    assert features["encoder_token_ids"].shape[0] == config.train.batch_size and labels.shape[0] == 32
    assert datasets["train"].cardinality() < 0 and datasets["validation"].cardinality() == 1
    assert sum(int(batch[1].shape[0]) for batch in datasets["train"]) == 300


def test_streaming_needs_steps_per_epoch_and_a_validation_split(corpus):
    with pytest.raises(config_lib.ConfigError, match="train.steps_per_epoch: required with data.cache: false"):
        tasks.create_task(config_lib.load_config([TINY], corpus)).load_splits()
    with pytest.raises(config_lib.ConfigError, match="data.validation: required with data.cache: false"):
        config_lib.load_config([TINY], corpus + ["data.validation=null"])


def test_an_empty_streamed_training_file_is_an_error(corpus, tmp_path):
    _write(tmp_path / "train.de.gz", [])
    _write(tmp_path / "train.en.gz", [])
    config = config_lib.load_config([TINY], corpus + ["train.steps_per_epoch=3"])

    with pytest.raises(files.DataError, match="the training split has no sentence pairs"):
        translation_data.load_splits(config.data, seed=1)
