"""CoNLL-U and column-file readers, tag sets and the tagging splits."""

import gzip

import pytest

import helpers
from pipeline import config as config_lib
from pipeline.data import conll
from pipeline.data import files
from pipeline.data import tagging

CONLLU = """# sent_id = one
# text = I can't go.
1\tI\tI\tPRON\tPRP\t_\t3\tnsubj\t_\t_
2-3\tcan't\t_\t_\t_\t_\t_\t_\t_\t_
2\tca\tcan\tAUX\tMD\t_\t3\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t0\troot\t_\t_
3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t0:root\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = two
1\tHello\thello\tINTJ\tUH\t_\t0\troot\t_\t_


"""


def _write(path, text, compress=False):
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as stream:
            stream.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("compress", [False, True])
def test_conllu_skips_ranges_empty_nodes_and_comments(tmp_path, compress):
    path = _write(tmp_path / ("a.conllu.gz" if compress else "a.conllu"), CONLLU, compress)
    read = conll.read_tagged_sentences(path)
    assert read.tokens == [["I", "ca", "n't", "."], ["Hello"]]
    assert read.tags == [["PRON", "AUX", "PART", "PUNCT"], ["INTJ"]]


def test_conllu_xpos_column(tmp_path):
    read = conll.read_tagged_sentences(_write(tmp_path / "a.conllu", CONLLU), tags="xpos")
    assert read.tags == [["PRP", "MD", "RB", "."], ["UH"]]


def test_conllu_malformed_line_names_file_and_line(tmp_path):
    broken = CONLLU.replace("4\t.\t.\tPUNCT", "4\t.\tPUNCT", 1)
    path = _write(tmp_path / "broken.conllu", broken)
    with pytest.raises(files.DataError, match=r"broken\.conllu:8: expected 10 tab-separated fields, found 9"):
        conll.read_tagged_sentences(path)
    skipped = conll.read_tagged_sentences(path, on_bad_rows="skip")
    assert skipped.skipped_rows == 1 and skipped.tokens == [["Hello"]]


def test_conllu_line_with_an_extra_field_is_malformed(tmp_path):
    path = _write(tmp_path / "wide.conllu", "1\tI\tI\tPRON\tPRP\t_\t0\troot\t_\t_\textra\n")
    with pytest.raises(files.DataError, match=r"wide\.conllu:1: expected 10 tab-separated fields, found 11"):
        conll.read_tagged_sentences(path)
    assert conll.read_tagged_sentences(path, on_bad_rows="skip").skipped_rows == 1


def test_conllu_bad_word_id_is_reported(tmp_path):
    path = _write(tmp_path / "a.conllu", "x\tI\tI\tPRON\tPRP\t_\t0\troot\t_\t_\n")
    with pytest.raises(files.DataError, match=r"a\.conllu:1: word ID 'x'"):
        conll.read_tagged_sentences(path)


def test_column_files_with_docstart_and_several_blank_lines(tmp_path):
    text = "-DOCSTART- -X- O O\n\nJohn NNP B-PER\nSmith NNP I-PER\nruns VBZ O\n\n\n\nParis NNP B-LOC\n"
    path = _write(tmp_path / "ner.txt", text)
    read = conll.read_tagged_sentences(path, file_format="columns")
    assert read.tokens == [["John", "Smith", "runs"], ["Paris"]]
    assert read.tags == [["B-PER", "I-PER", "O"], ["B-LOC"]]
    pos = conll.read_tagged_sentences(path, file_format="columns", tag_column=1)
    assert pos.tags == [["NNP", "NNP", "VBZ"], ["NNP"]]


def test_column_file_with_a_single_field_is_malformed(tmp_path):
    path = _write(tmp_path / "ner.txt", "John B-PER\nSmith\n")
    with pytest.raises(files.DataError, match=r"ner\.txt:2: expected at least 2"):
        conll.read_tagged_sentences(path, file_format="columns")


def _data_config(**values) -> config_lib.TaggingDataConfig:
    return config_lib.from_tree({"name": "t", "task": "tagging", "data": values}).data


def test_tag_unseen_in_training_is_reported_with_file_and_tag(tmp_path):
    train = _write(tmp_path / "train.conllu", CONLLU)
    test = _write(tmp_path / "test.conllu", CONLLU.replace("INTJ", "SYM"))
    with pytest.raises(files.DataError, match=r"test\.conllu: sentence 2 of the test split has tag 'SYM'"):
        tagging.load_splits(_data_config(train=train, validation=train, test=test), seed=1)


def test_validation_is_carved_from_train_with_the_seed():
    config = _data_config(source="synthetic:tagging", synthetic_examples=200)
    first, again = tagging.load_splits(config, seed=3), tagging.load_splits(config, seed=3)
    assert first.splits["validation"].tokens == again.splits["validation"].tokens
    assert len(first.splits["validation"].tokens) == 20 and len(first.splits["train"].tokens) == 180
    assert first.tag_names == ("ADJ", "ADP", "ADV", "DET", "NOUN", "PRON", "VERB")


def _aligned_examples(builder, *args, **kwargs):
    """Mock TFDS examples with tokens and tags of equal length (random mock data does not align them)."""
    import tensorflow as tf
    names = builder.info.features["upos"].feature.names
    tokens = [["The", "cat", "sat"], ["Dogs", "bark"], ["Hi"], ["A", "b", "c", "d"]] * 3
    examples = {"tokens": tf.ragged.constant(tokens),
                "upos": tf.ragged.constant([[index % len(names) for index in range(len(row))] for row in tokens],
                                           dtype=tf.int64)}
    if "xpos" in builder.info.features:
        examples["xpos"] = tf.ragged.constant([["X" + token[0] for token in row] for row in tokens])
    return tf.data.Dataset.from_tensor_slices(examples)


def test_tfds_universal_dependencies_and_xtreme_pos_offline():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(as_dataset_fn=_aligned_examples):
        ud = tagging.load_splits(_data_config(source="tfds:universal_dependencies/en_ewt"), seed=1)
        xpos = tagging.load_splits(_data_config(source="tfds:universal_dependencies/en_ewt", tags="xpos"), seed=1)
        xtreme = tagging.load_splits(_data_config(source="tfds:xtreme_pos/xtreme_pos_en"), seed=1)
    upos_names = set(tfds.builder("universal_dependencies/en_ewt").info.features["upos"].feature.names)
    for splits in (ud, xtreme):
        assert {"train", "validation"} <= set(splits.splits)
        assert set(splits.tag_names) <= upos_names
        sentence = splits.splits["train"].tokens[0]
        assert all(isinstance(token, str) for token in sentence)
        assert len(sentence) == len(splits.splits["train"].tag_ids[0])
    assert all(isinstance(tag, str) for tag in xpos.tag_names) and "XT" in xpos.tag_names


def test_tfds_examples_with_misaligned_tags_are_reported():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=5), pytest.raises(files.DataError, match="tokens but"):
        tagging.load_splits(_data_config(source="tfds:xtreme_pos/xtreme_pos_en"), seed=1)


@pytest.mark.skipif(not (helpers.SHARED_DATA / "ud_english_ewt").is_dir(), reason="../shared/data/ud_english_ewt is absent")
def test_real_ud_english_ewt_counts_match_the_release():
    directory = helpers.SHARED_DATA / "ud_english_ewt"
    splits = tagging.load_splits(_data_config(
        train=str(directory / "en_ewt-ud-train.conllu.gz"), validation=str(directory / "en_ewt-ud-dev.conllu.gz"),
        test=str(directory / "en_ewt-ud-test.conllu.gz")), seed=1)
    counts = {name: (len(split.tokens), sum(map(len, split.tokens))) for name, split in splits.splits.items()}
    assert counts == {"train": (12544, 204577), "validation": (2001, 25147), "test": (2077, 25094)}
    assert len(splits.tag_names) == 17
