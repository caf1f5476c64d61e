"""Source and target files named separately per split (`data.train: {source: PATH, target: PATH}`)."""

import gzip

import pytest

import helpers
from pipeline import config as config_lib
from pipeline.data import files
from pipeline.data import translation as translation_data

TINY = str(helpers.REPOSITORY / "configs/tiny/translation.yaml")


def _write(path, lines, compress=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{line}\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return str(path)


def _overrides(tmp_path, **splits):
    return ["data.source=files"] + [f"data.{name}={{source: {source}, target: {target}}}"
                                    for name, (source, target) in splits.items()]


def test_each_side_may_live_in_its_own_folder(tmp_path):
    german = [f"Satz {index}." for index in range(20)]
    english = [f"Sentence {index}." for index in range(20)]
    overrides = _overrides(
        tmp_path,
        train=(_write(tmp_path / "de" / "train.gz", german, compress=True), _write(tmp_path / "en" / "t.txt", english)),
        test=(_write(tmp_path / "a" / "test.de", german[:3]), _write(tmp_path / "b" / "c" / "test.en", english[:3])))
    config = config_lib.load_config([TINY], overrides)

    splits = translation_data.load_splits(config.data, seed=1).splits

    assert isinstance(config.data.train, config_lib.ParallelFiles)
    assert splits["test"].sources == german[:3] and splits["test"].targets == english[:3]
    assert len(splits["train"]) + len(splits["validation"]) == 20
    assert set(zip(splits["train"].sources, splits["train"].targets)) <= set(zip(german, english))


def test_a_missing_side_is_named(tmp_path):
    source = _write(tmp_path / "train.de", ["Satz."])
    config = config_lib.load_config([TINY], _overrides(tmp_path, train=(source, tmp_path / "nowhere.en")))

    with pytest.raises(files.DataError, match=r"data.train.target: file not found: .*nowhere.en"):
        translation_data.load_splits(config.data, seed=1)


@pytest.mark.parametrize("override, message", [
    ("data.train={source: a.de}", "data.train.target: required"),
    ("data.train={target: a.en}", "data.train.source: required"),
])
def test_a_side_left_out_of_the_config_is_named(override, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load_config([TINY], ["data.source=files", override])


def test_separate_files_refuse_the_tsv_format():
    with pytest.raises(config_lib.ConfigError, match="data.file_format: 'tsv' takes one file per split"):
        config_lib.load_config([TINY], ["data.source=files", "data.file_format=tsv",
                                        "data.train={source: a.de, target: a.en}"])
