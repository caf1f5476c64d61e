"""`data.copy_numbers` end to end: numbers never seen in training come through a tiny subword translator exactly,
in the in-process evaluation and in the export loaded as TF Serving loads it."""

import json
import os
import random
import re

import pytest
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import export
from pipeline import predict
from pipeline import run_files
from pipeline import training
from pipeline.data import number_copying
from pipeline.data import subwords

pytestmark = pytest.mark.slow  # trains a tiny model end to end

TEMPLATES = [("ich habe {} Hunde.", "I have {} dogs."), ("Zimmer {} bitte!", "Room {} please!"),
             ("{} Katzen schlafen", "{} cats sleep"), ("Der Zug {} fährt um {} Uhr.", "Train {} leaves at {}."),
             ("Ein Mann ohne Zahl.", "A man without a number.")]


def _pairs(count: int, generator: random.Random) -> list[tuple[str, str]]:
    pairs = []
    for _ in range(count):
        source, target = generator.choice(TEMPLATES)
        numbers = [str(generator.randint(0, 99_999)) for _ in range(source.count("{}"))]
        pairs.append((source.format(*numbers), target.format(*numbers)))
    return pairs


def _write(path, pairs) -> str:
    path.write_text("".join(f"{source}\t{target}\n" for source, target in pairs), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def number_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("copy_numbers")
    generator = random.Random(7)
    paths = {name: _write(directory / f"{name}.tsv", _pairs(count, generator))
             for name, count in (("train", 800), ("validation", 60), ("test", 100))}
    overrides = helpers.tiny_overrides(directory) + [
        "data.source=files", "data.file_format=tsv", *(f"data.{name}={path}" for name, path in paths.items()),
        "data.tokenizer=sentencepiece", "data.lowercase=false", "data.copy_numbers=true",
        "data.sentencepiece.byte_fallback=false",
        "data.source_vocabulary_size=60", "data.target_vocabulary_size=50", "data.max_source_length=30",
        "data.max_target_length=30", "train.epochs=8",
        "model.decoding=greedy"]
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/translation.yaml")], overrides)
    run_dir = training.train(config)
    return run_dir, export.export_run(run_dir), paths["test"]


def _digit_runs(text: str) -> list[str]:
    return re.findall("[0-9]+", text)


def test_the_placeholder_is_one_piece_of_both_models(number_run):
    run_dir, _, _ = number_run
    for side in ("source", "target"):
        with open(os.path.join(run_dir, "vocab", f"{side}.sentencepiece.model"), "rb") as stream:
            assert number_copying.PLACEHOLDER in subwords.pieces(stream.read())


def test_the_evaluation_scores_translations_with_their_numbers_in_place(number_run):
    run_dir, _, _ = number_run
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        test = json.load(stream)["test"]
    for sample in test["samples"]:
        assert _digit_runs(sample["translation"]) == _digit_runs(sample["reference"]), sample
    assert test["bleu"] > 50  # the numbers are most of each sentence and were never seen in training


def test_numbers_never_seen_in_training_come_through_the_export_exactly(number_run):
    _, export_path, test_path = number_run
    with open(test_path, encoding="utf-8") as stream:
        pairs = [line.rstrip("\n").split("\t") for line in stream]
    serve = predict.load_export(export_path)
    translations = [text.decode() for text in
                    serve(text=tf.constant([source for source, _ in pairs]))["translation"].numpy()]
    copied = [_digit_runs(translation) == _digit_runs(reference)
              for translation, (_, reference) in zip(translations, pairs)]
    assert sum(copied) >= 0.95 * len(pairs), [pair for pair, ok in zip(pairs, copied) if not ok][:5]


def test_the_export_places_each_number_and_drops_no_text(number_run):
    _, export_path, _ = number_run
    serve = predict.load_export(export_path)
    sources = ["Zimmer 31415 bitte!", "Der Zug 7 fährt um 2359 Uhr.", "Ein Mann ohne Zahl.", "", "1 2 3"]
    translations = [text.decode() for text in serve(text=tf.constant(sources))["translation"].numpy()]
    assert _digit_runs(translations[0]) == ["31415"] and translations[0].startswith("Room")
    assert _digit_runs(translations[1]) == ["7", "2359"] and translations[1].startswith("Train")
    assert _digit_runs(translations[2]) == []
    assert number_copying.PLACEHOLDER not in "".join(translations)
