"""Sequence tagging (many-to-many): tokens -> recurrent tagger -> one tag per token (POS, BIO spans)."""

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
from pipeline.data import tagging as tagging_data
from pipeline.data import text as text_lib
from pipeline.models import sequence_tagger
from pipeline.tasks import base
from pipeline.tasks import compiled

logger = logging.getLogger(__name__)

_FIGURE_SENTENCES = 6

@dataclasses.dataclass
class TaggingPreprocessing(base.Preprocessing):
    """The word vocabulary, the character vocabulary and the tag set, fitted on the training split."""

    words: list[str]
    characters: list[str]
    tag_names: tuple[str, ...]

    FILES = {"words": "words.json", "characters": "characters.json", "tag_names": "tags.json"}

    word_lookup = base.LookupTable("words")
    char_lookup = base.LookupTable("characters")


class TaggingTask(base.Task):
    """Wires a tagging `RunConfig` to data, model, loss, evaluation and the serving signature."""

    preprocessing_class = TaggingPreprocessing
    schema = config_lib.tagging.SCHEMA
    compiles_serving = True

    # === Data ===

    def load_splits(self) -> tagging_data.TaggedSplits:
        return tagging_data.load_splits(self.data_config, seed=self.config.runtime.seed)

    def _word_form(self, token: str) -> str:
        return token.lower() if self.data_config.lowercase else token

    def fit_preprocessing(self, splits: tagging_data.TaggedSplits) -> TaggingPreprocessing:
        train = splits.splits["train"].tokens
        preprocessing = TaggingPreprocessing(
            words=text_lib.build_vocabulary(([self._word_form(token) for token in sentence] for sentence in train),
                                            self.data_config.vocabulary_size),
            characters=text_lib.build_vocabulary((character for sentence in train for character in sentence),
                                                 self.data_config.char_vocabulary_size),
            tag_names=tuple(splits.tag_names))
        logger.info("vocabulary: %d words, %d characters; %d tags", len(preprocessing.words),
                    len(preprocessing.characters), len(preprocessing.tag_names))
        return preprocessing

    def encode(self, preprocessing: TaggingPreprocessing,
               tokens: tf.RaggedTensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        """Ragged tokens [batch, (time)] -> word ids [batch, (time)] and char ids [batch, (time), (chars)]."""
        tokens = tokens[:, :self.data_config.max_sequence_length]
        words = tf.strings.lower(tokens, encoding="utf-8") if self.data_config.lowercase else tokens
        token_ids = tf.cast(preprocessing.word_lookup(words), tf.int32)
        characters = tf.strings.unicode_split(tokens, "UTF-8")[:, :, :self.data_config.max_word_length]
        return token_ids, tf.cast(preprocessing.char_lookup(characters), tf.int32)

    def datasets(self, splits: tagging_data.TaggedSplits,
                 preprocessing: TaggingPreprocessing) -> dict[str, tf.data.Dataset]:
        """Batched datasets per split: the train split shuffled (seeded) and bucketed by length."""
        limit = self.data_config.max_sequence_length
        lengths = {name: np.minimum([len(sentence) for sentence in split.tokens], limit)
                   for name, split in splits.splits.items()}
        boundaries = None
        if self.data_config.bucketing:
            boundaries = batching.bucket_boundaries(lengths["train"], self.data_config.num_buckets)
        return {
            name: batching.batch_examples(
                tagging_data.sentence_dataset(split, functools.partial(self.encode, preprocessing)), lengths=lengths[name],
                batch_size=self.config.train.batch_size, boundaries=boundaries,
                shuffle_buffer=self.data_config.shuffle_buffer if name == "train" else 0,
                seed=self.config.runtime.seed, cache=self.data_config.cache)
            for name, split in splits.splits.items()
        }

    def sample_inputs(self, splits: tagging_data.TaggedSplits) -> list[str]:
        """Inputs for the export self-check and the demo: edge cases, validation sentences, demos last."""
        validation = [" ".join(sentence) for sentence in splits.splits["validation"].tokens[:4]]
        return ["", "   "] + validation + synthetic.tagging_demo_texts()

    # === Model ===

    def build_model(self, preprocessing: TaggingPreprocessing) -> keras.Model:
        return sequence_tagger.build_sequence_tagger(
            self.config.model, vocabulary_size=len(preprocessing.words),
            char_vocabulary_size=len(preprocessing.characters), num_tags=len(preprocessing.tag_names))

    def layer_groups(self, model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
        return sequence_tagger.layer_groups(model)

    def text_encoder(self, model: keras.Model, preprocessing: TaggingPreprocessing) -> base.TextEncoder:
        return base.TextEncoder(model.get_layer("token_embedding"), preprocessing.words,
                                model.get_layer("encoder").recurrent_layers, lowercase=self.data_config.lowercase)

    def cudnn_reasons(self) -> list[str]:
        if self.config.model.char_encoder == "bilstm":
            return ["model.char_encoder: bilstm runs an LSTM over every word's characters, padding words "
                    "included; cuDNN rejects such all-padding rows, so keep `cnn` on a GPU"]
        return []

    # === Evaluation ===

    def evaluate(self, model: keras.Model, dataset: tf.data.Dataset, preprocessing: TaggingPreprocessing) -> dict:
        """Token and OOV accuracy, per-tag scores, and span scores for BIO/BIOES tag sets."""
        predict = tf.function(lambda features: model(features, training=False), input_signature=[{
            "token_ids": tf.TensorSpec([None, None], tf.int32),
            "char_ids": tf.TensorSpec([None, None, None], tf.int32)}])
        gold, predicted, out_of_vocabulary = [], [], []
        for features, tag_ids in progress.bar(dataset, "evaluating"):
            best = np.argmax(predict(features).numpy(), axis=-1)
            token_ids = features["token_ids"].numpy()
            for row, sentence_ids in enumerate(token_ids):
                length = int(np.count_nonzero(sentence_ids))
                gold.append([preprocessing.tag_names[tag] for tag in tag_ids.numpy()[row, :length]])
                predicted.append([preprocessing.tag_names[tag] for tag in best[row, :length]])
                out_of_vocabulary.append(list(sentence_ids[:length] == 1))
        return metrics.tagging_report(gold, predicted, out_of_vocabulary, preprocessing.tag_names)

    # === Error analysis and reports ===

    def read_labelled_file(self, path: str, splits: tagging_data.TaggedSplits) -> tagging_data.SentenceSplit:
        """A tagged file in the configured format (CoNLL-U or token/tag columns)."""
        return tagging_data.read_labelled_file(self.data_config, path, splits.tag_names)

    def predictions(self, model: keras.Model, preprocessing: TaggingPreprocessing,
                    split: tagging_data.SentenceSplit) -> typing.Iterator[dict]:
        """Per sentence: its tokens, the reference and predicted tags, and how many tags are wrong.

        Tokens past `data.max_sequence_length` are not tagged by the model; their prediction is "".
        """
        names = preprocessing.tag_names

        @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.string)])
        def predict(tokens):
            token_ids, char_ids = self.encode(preprocessing, tokens)
            probabilities = model({"token_ids": token_ids.to_tensor(), "char_ids": char_ids.to_tensor()},
                                  training=False)
            return tf.argmax(probabilities, axis=-1, output_type=tf.int32)

        batch_size = self.config.train.batch_size
        starts = range(0, len(split.tokens), batch_size)
        for start in progress.bar(starts, "predicting", total=len(starts)):
            sentences = [list(tokens) or [""] for tokens in split.tokens[start:start + batch_size]]
            best = predict(tf.ragged.constant(sentences, dtype=tf.string)).numpy()
            for row, (tokens, tag_ids) in enumerate(zip(split.tokens[start:start + batch_size],
                                                        split.tag_ids[start:start + batch_size])):
                predicted = [names[tag] for tag in best[row, :len(tokens)]]
                predicted += [""] * (len(tokens) - len(predicted))
                reference = [names[tag] for tag in tag_ids]
                yield {"tokens": list(tokens), "reference": reference, "prediction": predicted,
                       "errors": sum(gold != guess for gold, guess in zip(reference, predicted))}

    def figures(self, model: keras.Model, preprocessing: TaggingPreprocessing, splits: tagging_data.TaggedSplits,
                metrics: dict, directory: str) -> list[str]:
        """The tag confusion matrix of the held-out split, and a few validation sentences with their tags."""
        written = []
        matrix = plots.held_out_confusion_matrix(metrics, preprocessing.tag_names,
                                                 os.path.join(directory, "confusion_matrix.png"))
        if matrix:
            written.append(matrix)
        validation = splits.splits["validation"]
        sample = dataclasses.replace(validation, tokens=validation.tokens[:_FIGURE_SENTENCES],
                                     tag_ids=validation.tag_ids[:_FIGURE_SENTENCES])
        rows = [{"tokens": row["tokens"], "gold": row["reference"], "predicted": row["prediction"]}
                for row in self.predictions(model, preprocessing, sample) if row["tokens"]]
        if rows:
            written.append(plots.tagging_table(rows, os.path.join(directory, "tagging_examples.png")))
        return written

    def validation_scores(self, model: keras.Model, dataset: tf.data.Dataset,
                          preprocessing: TaggingPreprocessing) -> typing.Optional[base.ValidationScores]:
        """Span F1 (BIO/BIOES tags), for `val_span_f1`; None for tag sets without spans (POS tags)."""
        report = self.evaluate(model, dataset, preprocessing)
        if "spans" not in report:
            return None
        return base.ValidationScores({"span_f1": report["spans"]["f1"]})

    # === Serving ===

    def serving_functions(self, model: keras.Model,
                          preprocessing: TaggingPreprocessing) -> dict[str, typing.Callable]:
        """`serving_default`: text string [batch] (whitespace-tokenized) -> tokens, tags, length."""
        tag_names = tf.constant(preprocessing.tag_names, dtype=tf.string)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            tokens = tf.strings.split(text)[:, :self.data_config.max_sequence_length]  # (batch, (time))
            token_ids, char_ids = self.encode(preprocessing, tokens)
            batch = tf.shape(text, out_type=tf.int64)[0]
            width = tf.maximum(token_ids.bounding_shape(1), 1)  # at least one step for empty inputs
            characters = tf.maximum(char_ids.bounding_shape(2), 1)
            probabilities = model({
                "token_ids": token_ids.to_tensor(shape=tf.stack([batch, width])),
                "char_ids": char_ids.to_tensor(shape=tf.stack([batch, width, characters])),
            }, training=False)  # (batch, width, tags)
            lengths = tf.cast(tokens.row_lengths(), tf.int32)
            inside = tf.sequence_mask(lengths, maxlen=tf.cast(width, tf.int32))
            tags = tf.gather(tag_names, tf.argmax(probabilities, axis=-1, output_type=tf.int32))
            return {
                "tokens": tokens.to_tensor(default_value="", shape=tf.stack([batch, width])),
                "tags": tf.where(inside, tags, ""),
                "length": lengths,
            }

        return {"serving_default": serve}

    def compiled_serving_functions(self, model: keras.Model,
                                   preprocessing: TaggingPreprocessing) -> dict[str, typing.Callable]:
        """`serving_default_xla`: `serving_default` with the model call compiled by XLA (`export.jit_compile`)."""
        return compiled.model_signatures(functools.partial(self.serving_functions, preprocessing=preprocessing),
                                         model)
