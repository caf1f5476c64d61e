"""The data-source dispatcher: parsing `data.source`, calling the loader of its kind, synthetic split sizes."""

import types

import pytest

from pipeline.data import captioning
from pipeline.data import files
from pipeline.data import language_model
from pipeline.data import sentiment
from pipeline.data import sources
from pipeline.data import tagging
from pipeline.data import translation


def _data_config(source: str, **values) -> types.SimpleNamespace:
    defaults = {"train": None, "validation": None, "test": None, "synthetic_examples": 100}
    return types.SimpleNamespace(source=source, **{**defaults, **values})


class _Loaders:
    """Loaders that record how the dispatcher called them."""

    def __init__(self):
        self.calls = []

    def read_files(self, data_config):
        self.calls.append(("files", data_config.source))
        return {"train": "from files"}

    def read_tfds(self, name, data_config):
        self.calls.append(("tfds", name, data_config.source))
        return {"train": f"from tfds {name}"}

    def generate(self, count, seed, origin):
        self.calls.append(("synthetic", count, seed, origin))
        return f"{count} generated"

    def load(self, data_config, seed=0):
        return sources.load_splits(data_config, seed, read_files=self.read_files, read_tfds=self.read_tfds,
                                   generate=self.generate)


@pytest.mark.parametrize("source, kind, name", [
    ("files", "files", ""),
    ("tfds:imdb_reviews", "tfds", "imdb_reviews"),
    ("tfds:universal_dependencies/en_ewt", "tfds", "universal_dependencies/en_ewt"),
    ("tfds:wmt14_translate/de-en", "tfds", "wmt14_translate/de-en"),
    ("synthetic:language_model", "synthetic", "language_model"),
])
def test_parse_splits_kind_and_name(source, kind, name):
    assert sources.parse(source) == sources.Source(kind=kind, name=name)


def test_files_source_calls_only_the_files_loader():
    loaders = _Loaders()

    assert loaders.load(_data_config("files", train="train.csv")) == {"train": "from files"}
    assert loaders.calls == [("files", "files")]


def test_tfds_source_calls_only_the_tfds_loader_with_the_name():
    loaders = _Loaders()

    assert loaders.load(_data_config("tfds:glue/sst2")) == {"train": "from tfds glue/sst2"}
    assert loaders.calls == [("tfds", "glue/sst2", "tfds:glue/sst2")]


def test_synthetic_source_generates_train_with_the_seed_and_a_quarter_for_test():
    loaders = _Loaders()

    splits = loaders.load(_data_config("synthetic:tagging", synthetic_examples=100), seed=7)

    assert list(splits) == ["train", "test"]
    assert loaders.calls == [("synthetic", 100, 7, "synthetic:tagging/train"),
                             ("synthetic", 25, 8, "synthetic:tagging/test")]


def test_small_synthetic_test_split_has_at_least_ten_examples():
    loaders = _Loaders()

    loaders.load(_data_config("synthetic:sentiment", synthetic_examples=12), seed=0)

    assert loaders.calls[1] == ("synthetic", 10, 1, "synthetic:sentiment/test")


def test_unknown_kind_names_the_key_and_suggests_the_closest_kind():
    loaders = _Loaders()

    with pytest.raises(files.DataError) as raised:
        loaders.load(_data_config("tfsd:imdb_reviews"))

    assert str(raised.value) == ("data.source: expected 'files', 'tfds:<name>' or 'synthetic:<task>', "
                                 "got 'tfsd:imdb_reviews'. Did you mean 'tfds'?")
    assert loaders.calls == []


def test_unknown_kind_far_from_every_kind_gets_no_suggestion():
    with pytest.raises(files.DataError, match=r"^data\.source: .*got 'kaggle:imdb'\.$"):
        sources.parse("kaggle:imdb")


@pytest.mark.parametrize("source", ["tfds:", "synthetic:", "synthetic", "tfds"])
def test_missing_name_names_the_key(source):
    with pytest.raises(files.DataError) as raised:
        sources.parse(source)

    assert str(raised.value) == (f"data.source: expected 'files', 'tfds:<name>' or 'synthetic:<task>', "
                                 f"got {source!r}.")


@pytest.mark.parametrize("source", ["files:", "files:train.csv"])
def test_files_takes_no_name(source):
    with pytest.raises(files.DataError, match=r"^data\.source: expected"):
        sources.parse(source)


def test_split_paths_keep_split_order_and_leave_out_null_splits():
    config = _data_config("files", test="test.csv", train="train.csv")

    assert list(sources.split_paths(config).items()) == [("train", "train.csv"), ("test", "test.csv")]
    assert sources.split_paths(_data_config("files", validation=["a.txt", "b.txt"])) == {
        "validation": ["a.txt", "b.txt"]}


@pytest.mark.parametrize("module", [sentiment, tagging, translation, captioning, language_model],
                         ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_every_task_reads_through_the_dispatcher(module):
    with pytest.raises(files.DataError, match=r"^data\.source: .*Did you mean 'synthetic'\?"):
        module.load_splits(_data_config("synthetik:task"), seed=0)
