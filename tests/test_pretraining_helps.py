"""Pretrain-then-fine-tune end to end: a language model trained on unlabeled text, copied into a classifier with
`model.initialize_from` and fine-tuned with the ULMFiT schedule, beats the same classifier from scratch.

The synthetic task is built so that pretraining can help: every line mixes neutral filler words with three words
of one class (one of two sets of ten), so a language model learns which words go together from unlabeled lines
alone, while the labelled set is far too small (8 lines: most class words are seen once or never) for a
classifier from scratch to learn twenty words' classes. The pretrained classifier takes the language model's
vocabulary (`data.vocabulary_file`), so words its labelled lines never show keep their pretrained rows.
"""

import random

import pytest
import yaml

from pipeline import config as config_lib
from pipeline import run_files
from pipeline import training
from pipeline import warm_start

pytestmark = pytest.mark.slow  # trains a language model and two classifiers

CLASS_WORDS = {"negative": [f"dull{index}" for index in range(10)],
               "positive": [f"bright{index}" for index in range(10)]}
FILLERS = [f"word{index}" for index in range(40)]
ENCODER = {"cell": "gru", "embedding_dim": 16, "units": 32}


def line(label: str, generator: random.Random) -> str:
    words = generator.sample(CLASS_WORDS[label], 3) + generator.sample(FILLERS, 7)
    generator.shuffle(words)
    return " ".join(words)


def labelled_file(path, count: int, generator: random.Random) -> str:
    rows = ["label\ttext"] + [f"{index % 2}\t{line(('negative', 'positive')[index % 2], generator)}"
                              for index in range(count)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def write_config(path, tree: dict) -> str:
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    return str(path)


def classifier_config(directory, name: str, files: dict, data: dict = None, **model) -> str:
    return write_config(directory / f"{name}.yaml", {
        "name": name, "task": "sentiment",
        "data": {"source": "files", **files, "file_format": "tsv", "labels": ["negative", "positive"],
                 "vocabulary_size": 100, "max_sequence_length": 16, **(data or {})},
        "model": {**ENCODER, "pooling": "max", "dropout": 0.1, **model},
        "train": {"epochs": 8, "batch_size": 8, "learning_rate": 0.01, "monitor": "val_accuracy",
                  "learning_rate_schedule": "slanted_triangular", "early_stopping_patience": 0},
        "runtime": {"run_dir": str(directory / "runs" / name), "seed": 3, "deterministic": True},
        "export": {"dir": str(directory / "exports"), "on_train_end": False}})


def test_a_pretrained_encoder_beats_the_same_classifier_from_scratch(tmp_path):
    generator = random.Random(0)
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("\n".join(line(generator.choice(["negative", "positive"]), generator)
                                   for _ in range(3000)) + "\n", encoding="utf-8")
    files = {"train": labelled_file(tmp_path / "train.tsv", 8, generator),
             "validation": labelled_file(tmp_path / "validation.tsv", 40, generator),
             "test": labelled_file(tmp_path / "test.tsv", 400, generator)}
    language_model = training.train(config_lib.load_config([write_config(tmp_path / "lm.yaml", {
        "name": "lm", "task": "language_model",
        "data": {"source": "files", "train": str(unlabeled), "level": "word", "lowercase": True,
                 "vocabulary_size": 100},
        "model": {**ENCODER, "dropout": 0.1},
        "train": {"epochs": 3, "batch_size": 32, "tbptt_steps": 20, "learning_rate": 0.01,
                  "early_stopping_patience": 0},
        "runtime": {"run_dir": str(tmp_path / "runs" / "lm"), "seed": 3},
        "export": {"dir": str(tmp_path / "exports"), "on_train_end": False}})]))

    scratch = training.train(config_lib.load_config([classifier_config(tmp_path, "scratch", files)]))
    pretrained = training.train(config_lib.load_config([classifier_config(
        tmp_path, "pretrained", files, {"vocabulary_file": f"{language_model}/vocab/vocabulary.json"},
        initialize_from=language_model)]))

    record = warm_start.load_record(pretrained)["initialize_from"]
    assert record["run"] == language_model
    assert record["embedding"]["found"] == record["embedding"]["words"] == 60  # 20 class words and 40 fillers
    assert [entry["layer"] for entry in record["copied"]] == ["gru_0"]
    scratch_accuracy = run_files.held_out_metrics(scratch)[1]["accuracy"]
    pretrained_accuracy = run_files.held_out_metrics(pretrained)[1]["accuracy"]
    assert pretrained_accuracy >= scratch_accuracy + 0.1, (scratch_accuracy, pretrained_accuracy)
    assert pretrained_accuracy > 0.85
