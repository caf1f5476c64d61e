"""Sentence pairs: TSV and aligned readers, misalignment, gzip, TFDS offline, synthetic dates."""

import gzip

import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline.data import files
from pipeline.data import synthetic
from pipeline.data import translation


def _write(path, text: str, compress: bool = False) -> str:
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


def _data_config(**values) -> config_lib.TranslationDataConfig:
    return config_lib.from_tree({"name": "t", "task": "translation", "data": values}).data


def _config_error(**values) -> str:
    with pytest.raises(config_lib.ConfigError) as error:
        _data_config(**values)
    return str(error.value)


# === TSV pairs ===


def test_tsv_pairs_keep_two_columns_and_ignore_extra_ones_and_blank_lines(tmp_path):
    path = _write(tmp_path / "fra.txt", "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\n"
                  "\n  \nHi.\tSalut !\tCC-BY 2.0\r\nRun!\tCours !\tx\n")
    pairs = translation.read_tsv_pairs(path)
    assert pairs.sources == ["Go.", "Hi.", "Run!"]
    assert pairs.targets == ["Va !", "Salut !", "Cours !"]
    assert pairs.skipped_rows == 0 and pairs.origin == path


def test_tsv_pair_with_a_stray_tab_is_an_error_or_a_counted_skip(tmp_path):
    path = _write(tmp_path / "pairs.tsv", "a\tb\nHi.\tSalut\t!\nc\td\n")
    with pytest.raises(files.DataError, match=r"pairs\.tsv:2: 3 tab-separated fields, but line 1 has 2"):
        translation.read_tsv_pairs(path)
    skipped = translation.read_tsv_pairs(path, on_bad_rows="skip")
    assert skipped.targets == ["b", "d"] and skipped.skipped_rows == 1


def test_gzip_tsv_is_read_directly(tmp_path):
    path = _write(tmp_path / "pairs.tsv.gz", "ein Hund\ta dog\n", compress=True)
    assert translation.read_tsv_pairs(path).targets == ["a dog"]


@pytest.mark.parametrize("line, problem", [("no tab here", "found no tab"), ("\tonly target", "empty source"),
                                           ("only source\t ", "empty target")])
def test_malformed_tsv_line_names_file_and_line_or_is_skipped(tmp_path, line, problem):
    path = _write(tmp_path / "pairs.tsv", f"a\tb\n{line}\nc\td\n")
    with pytest.raises(files.DataError, match=rf"pairs\.tsv:2: .*{problem}"):
        translation.read_tsv_pairs(path)
    skipped = translation.read_tsv_pairs(path, on_bad_rows="skip")
    assert skipped.sources == ["a", "c"] and skipped.skipped_rows == 1


# === Aligned files ===


@pytest.mark.parametrize("compress", [False, True])
def test_aligned_files_pair_line_by_line(tmp_path, compress):
    source = _write(tmp_path / "train.de", "Ein Hund läuft.\nZwei Männer.\n", compress)
    target = _write(tmp_path / "train.en", "A dog runs.\nTwo men.\n", compress)
    pairs = translation.read_aligned_pairs(source, target)
    assert pairs.sources == ["Ein Hund läuft.", "Zwei Männer."]
    assert pairs.targets == ["A dog runs.", "Two men."]


def test_misaligned_files_name_both_files_and_counts(tmp_path):
    source = _write(tmp_path / "train.de", "eins\nzwei\ndrei\n")
    target = _write(tmp_path / "train.en", "one\ntwo\n", compress=True)
    for policy in ("error", "skip"):
        with pytest.raises(files.DataError) as error:
            translation.read_aligned_pairs(source, target, on_bad_rows=policy)
        message = str(error.value)
        assert f"{source} has 3 lines" in message and f"{target} has 2" in message and "misaligned" in message


def test_empty_line_in_aligned_files_is_an_error_or_skipped(tmp_path):
    source = _write(tmp_path / "train.de", "eins\n\ndrei\n")
    target = _write(tmp_path / "train.en", "one\ntwo\nthree\n")
    with pytest.raises(files.DataError, match=r"train\.de:2: empty line"):
        translation.read_aligned_pairs(source, target)
    pairs = translation.read_aligned_pairs(source, target, on_bad_rows="skip")
    assert pairs.sources == ["eins", "drei"] and pairs.targets == ["one", "three"] and pairs.skipped_rows == 1


def test_load_splits_fills_the_language_into_aligned_paths_and_carves_validation(tmp_path):
    lines = [f"satz {index}" for index in range(20)]
    _write(tmp_path / "train.de.gz", "\n".join(lines) + "\n", compress=True)
    english = [line.replace("satz", "sentence") for line in lines]
    _write(tmp_path / "train.en.gz", "\n".join(english) + "\n", compress=True)
    _write(tmp_path / "test.de", "hallo\n")
    _write(tmp_path / "test.en", "hello\n")
    config = _data_config(train=str(tmp_path / "train.{language}.gz"), test=str(tmp_path / "test.{language}"),
                          source_language="de", target_language="en")
    splits = translation.load_splits(config, seed=5)
    again = translation.load_splits(config, seed=5)
    assert len(splits.splits["train"].sources) == 18 and len(splits.splits["validation"].sources) == 2
    assert splits.splits["validation"].sources == again.splits["validation"].sources
    assert "carved" in splits.splits["validation"].origin
    for source, target in zip(splits.splits["train"].sources, splits.splits["train"].targets):
        assert source.replace("satz", "sentence") == target
    assert splits.splits["test"].targets == ["hello"]
    assert splits.skipped_rows == {"train": 0, "test": 0, "validation": 0}


@pytest.mark.skipif(not (helpers.SHARED_DATA / "multi30k").is_dir(), reason="../shared/data/multi30k is absent")
def test_real_multi30k_validation_split_is_aligned():
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/translation_multi30k_de_en.yaml")]).data
    pairs = translation.read_aligned_pairs(config.validation.replace("{language}", "de"),
                                           config.validation.replace("{language}", "en"))
    assert len(pairs.sources) == 1014 and pairs.targets[0].startswith("A group of men")


# === Config checks ===


def test_aligned_files_need_both_languages():
    assert _config_error(train="train.{language}.gz", source_language="de").startswith("data.target_language:")
    assert "required for aligned files" in _config_error(train="train.{language}.gz")


def test_placeholder_must_match_the_file_format():
    assert _config_error(train="pairs.tsv", file_format="aligned", source_language="de",
                         target_language="en").startswith("data.train:")
    message = _config_error(train="train.{language}", test="test.tsv", source_language="de", target_language="en")
    assert message.startswith("data.test:") and "{language}" in message


def test_tfds_languages_come_from_the_name_or_the_config():
    assert config_lib.tfds_language_pair("ted_hrlr_translate/pt_to_en") == ("pt", "en")
    assert config_lib.tfds_language_pair("wmt14_translate/de-en") == ("de", "en")
    assert _config_error(source="tfds:some_corpus").startswith("data.source_language:")
    config = _data_config(source="tfds:some_corpus", source_language="fr", target_language="en")
    assert translation.language_pair(config) == ("fr", "en")
    same = _config_error(source="tfds:x", source_language="en", target_language="en")
    assert same.startswith("data.target_language:")


# === TFDS (offline) ===


def _translation_examples(builder, *args, split=None, **kwargs):
    """Mock TFDS examples: features named by language code, as in ted_hrlr_translate and wmt14_translate."""
    languages = list(builder.info.features)
    count = {"train": 12, "validation": 4, "test": 3}.get(str(split), 2)
    return tf.data.Dataset.from_tensor_slices(
        {language: [f"{language} {split} sentence {index}" for index in range(count)] for language in languages})


@pytest.mark.parametrize("name, source, target", [("ted_hrlr_translate/pt_to_en", "pt", "en"),
                                                  ("wmt14_translate/de-en", "de", "en")])
def test_tfds_translation_sets_offline(name, source, target):
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(as_dataset_fn=_translation_examples):
        splits = translation.load_splits(_data_config(source=f"tfds:{name}"), seed=0)
    assert {"train", "validation", "test"} <= set(splits.splits)
    train = splits.splits["train"]
    assert train.sources[0] == f"{source} train sentence 0" and train.targets[0] == f"{target} train sentence 0"
    assert len(splits.splits["validation"].sources) == 4 and "carved" not in splits.splits["validation"].origin


def test_tfds_direction_can_be_reversed_and_unknown_feature_is_reported():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(as_dataset_fn=_translation_examples):
        reversed_splits = translation.load_splits(
            _data_config(source="tfds:wmt14_translate/de-en", source_language="en", target_language="de"), seed=0)
        assert reversed_splits.splits["train"].sources[0].startswith("en ")
        with pytest.raises(files.DataError, match=r"tfds:wmt14_translate/de-en: no feature 'fr'"):
            translation.load_splits(_data_config(source="tfds:wmt14_translate/de-en", source_language="fr",
                                                 target_language="en"), seed=0)


def test_tfds_random_mock_data_loads_strings():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=6):
        splits = translation.load_splits(_data_config(source="tfds:ted_hrlr_translate/pt_to_en", on_bad_rows="skip"),
                                         seed=0)
    assert all(isinstance(text, str) for text in splits.splits["train"].sources + splits.splits["train"].targets)


# === Synthetic dates ===


def test_synthetic_dates_are_deterministic_per_seed():
    assert synthetic.translation_examples(50, seed=3) == synthetic.translation_examples(50, seed=3)
    assert synthetic.translation_examples(50, seed=3) != synthetic.translation_examples(50, seed=4)
    sources, targets = synthetic.translation_examples(300, seed=0)
    assert len(sources) == len(targets) == 300 and len(set(sources)) > 250


def test_synthetic_date_pair_reverses_the_fields_and_spells_digits():
    assert synthetic.date_pair(23, 5, 1984) == ("twenty three of may nineteen eighty four", "1 9 8 4 - 0 5 - 2 3")
    assert synthetic.date_pair(1, 1, 2000) == ("one of january two thousand", "2 0 0 0 - 0 1 - 0 1")
    assert synthetic.date_pair(30, 11, 2012) == ("thirty of november twenty twelve", "2 0 1 2 - 1 1 - 3 0")
    assert synthetic.date_pair(7, 3, 2021)[0] == "seven of march twenty twenty one"
    with pytest.raises(ValueError, match="no such date"):
        synthetic.date_pair(30, 2, 1990)
    _, targets = synthetic.translation_examples(200, seed=1)
    assert all(len(target.split()) == 10 for target in targets)


def test_synthetic_source_loads_with_a_test_split():
    splits = translation.load_splits(_data_config(source="synthetic:translation", synthetic_examples=100), seed=2)
    assert [len(splits.splits[name].sources) for name in ("train", "validation", "test")] == [90, 10, 25]
    assert len(synthetic.translation_demo_texts()) == 4
