"""Sentiment (many-to-one) classification: labelled texts -> recurrent classifier -> label, score."""

import dataclasses
import functools
import logging
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import metrics
from pipeline import plots
from pipeline import progress
from pipeline.data import batching
from pipeline.data import synthetic
from pipeline.data import text as text_lib
from pipeline.data import sentiment as sentiment_data
from pipeline.models import sentiment_classifier
from pipeline.tasks import base
from pipeline.tasks import compiled

logger = logging.getLogger(__name__)

_ADAPT_BATCH_SIZE = 1024


@dataclasses.dataclass
class SentimentPreprocessing(base.Preprocessing):
    """The vocabulary and the class names, fitted on the training split."""

    vocabulary: list[str]
    label_names: tuple[str, ...]

    FILES = {"vocabulary": text_lib.VOCABULARY_FILE, "label_names": "labels.json"}

    @functools.cached_property
    def vectorizer(self) -> keras.layers.TextVectorization:
        return text_lib.vectorizer_from_vocabulary(self.vocabulary)


class SentimentTask(base.Task):
    """Wires a sentiment `RunConfig` to data, model, loss, evaluation and the serving signature."""

    preprocessing_class = SentimentPreprocessing
    schema = config_lib.sentiment.SCHEMA
    compiles_serving = True

    # === Data ===

    def load_splits(self) -> sentiment_data.LabeledSplits:
        return sentiment_data.load_splits(self.data_config, seed=self.config.runtime.seed)

    def standardize(self, texts: tf.Tensor) -> tf.Tensor:
        return text_lib.standardize(texts, lowercase=self.data_config.lowercase,
                                    strip_punctuation=self.data_config.strip_punctuation)

    def fit_preprocessing(self, splits: sentiment_data.LabeledSplits) -> SentimentPreprocessing:
        """Builds the vocabulary from the training split only (or reads `data.vocabulary_file`), and fixes the
        class names."""
        if self.data_config.vocabulary_file is not None:
            vocabulary = self._vocabulary_from_file(self.data_config.vocabulary_file)
        else:
            train_texts = tf.data.Dataset.from_tensor_slices(
                tf.constant(splits.splits["train"].texts, dtype=tf.string))
            standardized = train_texts.batch(_ADAPT_BATCH_SIZE).map(self.standardize)
            vocabulary = text_lib.fit_vectorizer(standardized, self.data_config.vocabulary_size).get_vocabulary()
        preprocessing = SentimentPreprocessing(vocabulary=vocabulary, label_names=tuple(splits.label_names))
        logger.info("vocabulary: %d tokens; classes: %s", len(preprocessing.vocabulary),
                    list(preprocessing.label_names))
        return preprocessing

    def _vocabulary_from_file(self, path: str) -> list[str]:
        try:
            vocabulary, passed_over = text_lib.read_vocabulary_file(path, self.data_config.vocabulary_size)
        except ValueError as error:
            raise config_lib.ConfigError(f"data.vocabulary_file: {error}") from None
        logger.info("vocabulary: the first %d tokens of %s (%d reserved, empty or holding whitespace passed over)",
                    len(vocabulary), path, passed_over)
        return vocabulary

    def encode(self, preprocessing: SentimentPreprocessing, texts: tf.Tensor) -> tf.Tensor:
        """Raw strings [batch] -> int32 token ids [batch, time], right-padded (the serving path)."""
        return text_lib.token_ids(preprocessing.vectorizer, self.standardize(texts),
                                  self.data_config.max_sequence_length)

    def _encode_ragged(self, preprocessing: SentimentPreprocessing, texts: tf.Tensor) -> tf.RaggedTensor:
        return text_lib.ragged_token_ids(preprocessing.vectorizer, self.standardize(texts),
                                         self.data_config.max_sequence_length)

    def datasets(self, splits: sentiment_data.LabeledSplits,
                 preprocessing: SentimentPreprocessing) -> dict[str, tf.data.Dataset]:
        """Batched datasets per split: the train split shuffled (seeded) and bucketed by length."""
        encode = functools.partial(self._encode_ragged, preprocessing)
        lengths = {name: _token_lengths(encode, split.texts) for name, split in splits.splits.items()}
        boundaries = None
        if self.data_config.bucketing:
            boundaries = batching.bucket_boundaries(lengths["train"], self.data_config.num_buckets)
        result = {}
        for split_name, split in splits.splits.items():
            is_train = split_name == "train"
            result[split_name] = batching.batch_examples(
                sentiment_data.token_dataset(split, encode), lengths=lengths[split_name],
                batch_size=self.config.train.batch_size, boundaries=boundaries,
                shuffle_buffer=self.data_config.shuffle_buffer if is_train else 0,
                seed=self.config.runtime.seed, cache=self.data_config.cache)
        return result

    def sample_inputs(self, splits: sentiment_data.LabeledSplits) -> list[str]:
        """Inputs for the export self-check and the demo: edge cases, validation texts, demo reviews last."""
        return ["", "!!!"] + list(splits.splits["validation"].texts[:4]) + synthetic.sentiment_demo_texts()

    # === Model ===

    def build_model(self, preprocessing: SentimentPreprocessing) -> keras.Model:
        return sentiment_classifier.build_sentiment_classifier(
            self.config.model, vocabulary_size=len(preprocessing.vocabulary),
            num_classes=len(preprocessing.label_names))

    def layer_groups(self, model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
        return sentiment_classifier.layer_groups(model)

    def text_encoder(self, model: keras.Model, preprocessing: SentimentPreprocessing) -> base.TextEncoder:
        return base.TextEncoder(model.get_layer("token_embedding"), preprocessing.vocabulary,
                                model.get_layer("encoder").recurrent_layers, lowercase=self.data_config.lowercase)

    # === Evaluation ===

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset, preprocessing: SentimentPreprocessing) -> dict:
        """Accuracy, macro-F1, per-class scores and the confusion matrix on one split."""
        predict = tf.function(lambda features: model(features, training=False),
                              input_signature=[{"token_ids": tf.TensorSpec([None, None], tf.int32)}])
        labels, predictions = [], []
        for features, batch_labels in progress.bar(dataset, "evaluating"):
            probabilities = predict(features)
            predictions.append(np.argmax(probabilities.numpy(), axis=-1))
            labels.append(batch_labels.numpy())
        if not labels:
            return metrics.classification_report(np.zeros([0]), np.zeros([0]), preprocessing.label_names)
        return metrics.classification_report(np.concatenate(labels), np.concatenate(predictions),
                                             preprocessing.label_names)

    # === Error analysis and reports ===

    def read_labelled_file(self, path: str, splits: sentiment_data.LabeledSplits) -> sentiment_data.Split:
        """A labelled file in the configured format (CSV, TSV, JSONL or `label text` lines)."""
        return sentiment_data.read_labelled_file(self.data_config, path, splits.label_names)

    def predictions(self, model: keras.Model, preprocessing: SentimentPreprocessing,
                    split: sentiment_data.Split) -> typing.Iterator[dict]:
        """Per text: the reference label, the predicted one, its probability and every class's."""
        names = preprocessing.label_names
        predict = tf.function(lambda texts: model({"token_ids": self.encode(preprocessing, texts)}, training=False),
                              input_signature=[tf.TensorSpec([None], tf.string)])
        starts = range(0, len(split.texts), _ADAPT_BATCH_SIZE)
        for start in progress.bar(starts, "predicting", total=len(starts)):
            texts = split.texts[start:start + _ADAPT_BATCH_SIZE]
            probabilities = predict(tf.constant(texts, dtype=tf.string)).numpy()
            for text, label, row in zip(texts, split.labels[start:start + _ADAPT_BATCH_SIZE], probabilities):
                best = int(np.argmax(row))
                yield {"text": text, "reference": names[int(label)], "prediction": names[best],
                       "correct": best == int(label), "score": round(float(row[best]), 6),
                       "probabilities": {name: round(float(value), 6) for name, value in zip(names, row)}}

    def figures(self, model: keras.Model, preprocessing: SentimentPreprocessing,
                splits: sentiment_data.LabeledSplits, metrics: dict, directory: str) -> list[str]:
        """The confusion matrix of the held-out split (test, else validation)."""
        del model, splits
        path = plots.held_out_confusion_matrix(metrics, preprocessing.label_names,
                                               os.path.join(directory, "confusion_matrix.png"))
        return [path] if path else []

    # === Serving ===

    def serving_functions(self, model: keras.Model,
                          preprocessing: SentimentPreprocessing) -> dict[str, typing.Callable]:
        """`serving_default`: text string [batch] -> label, score, probabilities (DESIGN.md section 6)."""
        label_names = tf.constant(preprocessing.label_names, dtype=tf.string)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            probabilities = model({"token_ids": self.encode(preprocessing, text)}, training=False)  # (batch, classes)
            best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return {
                "label": tf.gather(label_names, best),
                "score": tf.reduce_max(probabilities, axis=-1),
                "probabilities": probabilities,
            }

        return {"serving_default": serve}

    def compiled_serving_functions(self, model: keras.Model,
                                   preprocessing: SentimentPreprocessing) -> dict[str, typing.Callable]:
        """`serving_default_xla`: `serving_default` with the model call compiled by XLA (`export.jit_compile`)."""
        return compiled.model_signatures(functools.partial(self.serving_functions, preprocessing=preprocessing),
                                         model)


def _token_lengths(encode_ragged, texts: list[str]) -> np.ndarray:
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(texts, dtype=tf.string))
    dataset = dataset.batch(_ADAPT_BATCH_SIZE).map(lambda batch: encode_ragged(batch).row_lengths())
    return np.concatenate([lengths.numpy() for lengths in dataset]) if texts else np.zeros([0], np.int64)
