"""A task defined here, outside the package, runs through the unchanged training, export and predict modules.

The toy task labels a text with the bucket of its length (`short`, `medium`, `long`): a many-to-one
problem a recurrent model learns in a few epochs, with its own config blocks, data, preprocessing, model,
evaluation and serving signature, written only against `pipeline.tasks.base`.
"""

import dataclasses
import json
import os
import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import export
from pipeline import predict
from pipeline import run_files
from pipeline import training
from pipeline.config import bounds
from pipeline.data import splits as splits_lib
from pipeline.data import text as text_lib
from pipeline.tasks import base

WORDS = ("red", "green", "blue", "cat", "dog", "runs", "sleeps", "big", "small", "the", "a", "and")
BUCKETS = ("short", "medium", "long")


@dataclasses.dataclass(frozen=True)
class LengthBucketDataConfig(config_lib.DataConfig):
    """Generated texts of 1 to `max_words` words."""

    max_words: int = bounds.bounded(12, minimum=3)


SCHEMA = config_lib.TaskSchema(data=LengthBucketDataConfig, model=config_lib.RecurrentConfig,
                               monitor_choices=("val_accuracy", "val_loss"))


@dataclasses.dataclass
class Texts:
    texts: list[str]
    labels: list[int]
    skipped_rows: int = 0


@dataclasses.dataclass
class LengthBucketPreprocessing(base.Preprocessing):
    vocabulary: list[str]

    @property
    def lookup(self) -> keras.layers.StringLookup:
        return self._lookup

    def __post_init__(self):
        self._lookup = text_lib.string_lookup(self.vocabulary)

    def trackables(self) -> list:
        return [self._lookup]


class LengthBucketTask(base.Task):
    schema = SCHEMA
    preprocessing_class = LengthBucketPreprocessing

    def load_splits(self) -> splits_lib.SplitSet:
        rng = np.random.default_rng(self.config.runtime.seed)
        count, longest = self.config.data.synthetic_examples, self.config.data.max_words

        def split(size):
            lengths = rng.integers(1, longest + 1, size=size)
            texts = [" ".join(rng.choice(WORDS, size=length)) for length in lengths]
            return Texts(texts, [min(int((length - 1) * len(BUCKETS) / longest), 2) for length in lengths])
        return splits_lib.SplitSet({"train": split(count), "validation": split(count // 4),
                                    "test": split(count // 4)})

    def fit_preprocessing(self, splits) -> LengthBucketPreprocessing:
        words = (text.split() for text in splits.splits["train"].texts)
        return LengthBucketPreprocessing(text_lib.build_vocabulary(words, 100))

    def encode(self, preprocessing: LengthBucketPreprocessing, texts: tf.Tensor) -> tf.Tensor:
        ids = tf.cast(preprocessing.lookup(tf.strings.split(texts)), tf.int32)
        width = tf.maximum(ids.bounding_shape(1, out_type=tf.int32), 1)
        return ids.to_tensor(shape=tf.stack([ids.nrows(out_type=tf.int32), width]))

    def datasets(self, splits, preprocessing) -> dict[str, tf.data.Dataset]:
        def dataset(split, shuffle):
            examples = tf.data.Dataset.from_tensor_slices((split.texts, split.labels))
            if shuffle:
                examples = examples.shuffle(len(split.texts), seed=self.config.runtime.seed)
            return examples.batch(self.config.train.batch_size).map(
                lambda texts, labels: ({"token_ids": self.encode(preprocessing, texts)}, labels))
        return {name: dataset(split, name == "train") for name, split in splits.splits.items()}

    def sample_inputs(self, splits) -> list[str]:
        return ["", "red"] + splits.splits["validation"].texts[:3]

    def build_model(self, preprocessing) -> keras.Model:
        model_config = self.config.model
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        embedded = keras.layers.Embedding(len(preprocessing.vocabulary), model_config.embedding_dim,
                                          mask_zero=True)(token_ids)
        summary = keras.layers.GRU(model_config.units)(embedded)
        return keras.Model({"token_ids": token_ids}, keras.layers.Dense(len(BUCKETS), activation="softmax")(summary))

    def loss(self) -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self) -> list:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model, dataset, preprocessing) -> dict:
        correct = total = 0
        for features, labels in dataset:
            predicted = np.argmax(model(features, training=False).numpy(), axis=-1)
            correct += int(np.sum(predicted == labels.numpy()))
            total += len(predicted)
        return {"accuracy": correct / max(total, 1), "examples": total}

    def serving_functions(self, model, preprocessing) -> dict:
        names = tf.constant(BUCKETS)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            probabilities = model({"token_ids": self.encode(preprocessing, text)}, training=False)
            return {"label": tf.gather(names, tf.argmax(probabilities, axis=-1)),
                    "score": tf.reduce_max(probabilities, axis=-1)}
        return {"serving_default": serve}


def _config(directory: pathlib.Path) -> config_lib.RunConfig:
    tree = {"name": "length_bucket", "task": "length_bucket",
            "data": {"source": "synthetic:length_bucket", "synthetic_examples": 800},
            "model": {"cell": "gru", "units": 16, "embedding_dim": 8},
            "train": {"epochs": 6, "batch_size": 32, "learning_rate": 0.01, "early_stopping_patience": 0},
            "export": {"dir": str(directory / "exports")},
            "runtime": {"run_dir": str(directory / "run"), "seed": 3}}
    return config_lib.from_tree(tree, schemas={"length_bucket": SCHEMA})


@pytest.mark.slow
def test_a_task_defined_outside_the_package_trains_evaluates_exports_and_predicts(tmp_path):
    task = LengthBucketTask(_config(tmp_path))

    run_dir = training.train(task.config, task=task)
    with open(os.path.join(run_dir, run_files.METRICS_FILE), encoding="utf-8") as stream:
        metrics = json.load(stream)
    assert metrics["test"]["accuracy"] > 0.7  # chance is 1/3
    assert LengthBucketPreprocessing.exists(os.path.join(run_dir, base.PREPROCESSING_DIR))

    reevaluated = training.evaluate(run_dir, ["test"], task=task)
    assert reevaluated["test"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    export_path = export.export_run(run_dir, task=task)  # self-checked in a fresh process
    assert re.fullmatch(r".*exports/length_bucket/1", export_path)
    rows = list(predict.predict(export_path, ["red", "the big dog runs and the small cat sleeps and"]))
    assert [row["text"] for row in rows] == ["red", "the big dog runs and the small cat sleeps and"]
    assert [row["label"] for row in rows] == ["short", "long"]
    assert all(0 < row["score"] <= 1 for row in rows)


def test_the_framework_modules_name_no_task():
    """Outside `pipeline/tasks/` and `pipeline/config/`, no module compares against or names a task."""
    package = pathlib.Path(__file__).resolve().parents[1] / "pipeline"
    names = "|".join(["sentiment", "tagging", "translation", "captioning", "language_model"])
    pattern = re.compile(rf"""["']({names})["']""")
    offenders = [f"{path.relative_to(package)}:{number}: {line.strip()}"
                 for path in package.rglob("*.py") if path.parent.name not in ("tasks", "config")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert not offenders, "\n".join(offenders)
