"""Translation (sequence to sequence): sentence pairs -> encoder-decoder with attention -> translation, score."""

import itertools
import logging
import os
import typing

import keras
import numpy as np
import sacrebleu
import tensorflow as tf
from keras import ops

from pipeline import config as config_lib
from pipeline import decoding
from pipeline.data import batching
from pipeline.data import sequence_text
from pipeline.data import synthetic
from pipeline.data import text as text_lib
from pipeline.data import translation as translation_data
from pipeline.models import seq2seq_translator
from pipeline.tasks import compiled
from pipeline.tasks import generation

logger = logging.getLogger(__name__)

SOURCE_VOCABULARY_FILE = "source_vocabulary.json"
TARGET_VOCABULARY_FILE = "target_vocabulary.json"
_BATCH_SIZE = 1024
_EVALUATION_SAMPLES = 5


# === Loss and metric ===


class MaskedSequenceLoss(keras.losses.Loss):
    """Cross-entropy over target tokens from logits, averaged over the real (non-padding, id 0) tokens.

    With `label_smoothing` e, the target distribution is (1 - e) on the true token plus e spread evenly
    over the vocabulary.
    """

    def __init__(self, label_smoothing=0.0, name="masked_sequence_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")  # (batch, time)
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)  # (batch, time, vocabulary)
        losses = -ops.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]  # (batch, time)
        if self.label_smoothing:
            losses = (1.0 - self.label_smoothing) * losses - self.label_smoothing * ops.mean(log_probs, axis=-1)
        mask = ops.cast(ops.not_equal(labels, 0), "float32")
        return ops.sum(losses * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing})
        return config


class MaskedTokenAccuracy(keras.metrics.Mean):
    """Share of real (non-padding) target tokens whose most probable prediction is right (teacher-forced)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")  # (batch, time)
        correct = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), labels), "float32")
        mask = ops.cast(ops.not_equal(labels, 0), "float32")
        return super().update_state(correct, sample_weight=mask)


class TranslationTask:
    """Wires a translation `RunConfig` to data, model, loss, evaluation and the serving signatures.

    Source and target vocabularies are fitted on the training split and saved under `<run_dir>/vocab/`.
    The target vocabulary starts with "", "[UNK]", "[START]", "[END]" (ids 0 to 3).
    """

    monitor_choices = ("val_loss", "val_accuracy")
    serving_input = "text"

    def __init__(self, config: config_lib.RunConfig):
        self.config = config
        self.data_config: config_lib.TranslationDataConfig = config.data
        self.model_config: config_lib.Seq2SeqModelConfig = config.model
        self.source_vocabulary: list[str] = []
        self.target_vocabulary: list[str] = []
        self.source_lookup: typing.Optional[keras.layers.StringLookup] = None
        self.target_lookup: typing.Optional[keras.layers.StringLookup] = None
        self._translators: dict[str, tuple[keras.Model, typing.Callable]] = {}  # mode -> (model, traced graph)

    @property
    def max_decode_length(self) -> int:
        return self.model_config.max_decode_length or self.data_config.max_target_length + 1

    # === Data ===

    def load_splits(self) -> translation_data.ParallelSplits:
        return translation_data.load_splits(self.data_config, seed=self.config.runtime.seed)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> standardized tokens [batch, (time)]."""
        return tf.strings.split(sequence_text.standardize(texts, lowercase=self.data_config.lowercase,
                                                          strip_punctuation=self.data_config.strip_punctuation))

    def fit_preprocessing(self, splits: translation_data.ParallelSplits) -> None:
        """Builds both vocabularies from the training split only."""
        train = splits.splits["train"]
        self._set_vocabularies(
            text_lib.build_vocabulary(self._token_batches(train.sources), self.data_config.source_vocabulary_size,
                                      sequence_text.SOURCE_RESERVED),
            text_lib.build_vocabulary(self._token_batches(train.targets), self.data_config.target_vocabulary_size,
                                      sequence_text.TARGET_RESERVED))
        logger.info("vocabulary: %d source tokens, %d target tokens", len(self.source_vocabulary),
                    len(self.target_vocabulary))

    def _token_batches(self, texts: list[str]) -> typing.Iterator[list[str]]:
        for start in range(0, len(texts), _BATCH_SIZE):
            tokens = self.tokenize(tf.constant(texts[start:start + _BATCH_SIZE], dtype=tf.string))
            yield [token.decode("utf-8") for token in tokens.flat_values.numpy()]

    def _set_vocabularies(self, source_vocabulary: list[str], target_vocabulary: list[str]) -> None:
        self.source_vocabulary, self.target_vocabulary = list(source_vocabulary), list(target_vocabulary)
        self.source_lookup = text_lib.string_lookup(self.source_vocabulary)
        self.target_lookup = text_lib.string_lookup(self.target_vocabulary)

    def save_preprocessing(self, run_dir: str) -> None:
        directory = os.path.join(run_dir, "vocab")
        text_lib.save_vocabulary(self.source_vocabulary, directory, SOURCE_VOCABULARY_FILE)
        text_lib.save_vocabulary(self.target_vocabulary, directory, TARGET_VOCABULARY_FILE)

    def load_preprocessing(self, run_dir: str) -> None:
        directory = os.path.join(run_dir, "vocab")
        self._set_vocabularies(text_lib.load_vocabulary(directory, SOURCE_VOCABULARY_FILE),
                               text_lib.load_vocabulary(directory, TARGET_VOCABULARY_FILE))

    def has_preprocessing(self, run_dir: str) -> bool:
        return os.path.exists(os.path.join(run_dir, "vocab", TARGET_VOCABULARY_FILE))

    def encode_source(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> source ids [batch, (time)], truncated; an empty row keeps one padding id."""
        ids = tf.cast(self.source_lookup(self.tokenize(texts)[:, :self.data_config.max_source_length]), tf.int32)
        dense = self.source_token_ids_from(ids)  # (batch, time >= 1)
        return tf.RaggedTensor.from_tensor(dense, lengths=tf.maximum(ids.row_lengths(), 1))

    def encode_target(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> target ids [batch, (time)], truncated, without start and end tokens."""
        return tf.cast(self.target_lookup(self.tokenize(texts)[:, :self.data_config.max_target_length]), tf.int32)

    @staticmethod
    def source_token_ids_from(ids: tf.RaggedTensor) -> tf.Tensor:
        """Ragged ids -> dense [batch, time] right-padded with 0, with at least one column."""
        width = tf.maximum(ids.bounding_shape(1, out_type=tf.int32), 1)
        return ids.to_tensor(shape=tf.stack([ids.nrows(out_type=tf.int32), width]))

    def source_token_ids(self, texts: tf.Tensor) -> tf.Tensor:
        """Raw strings [batch] -> encoder_token_ids int32 [batch, time >= 1] (the serving path)."""
        ids = self.source_lookup(self.tokenize(texts)[:, :self.data_config.max_source_length])
        return self.source_token_ids_from(tf.cast(ids, tf.int32))

    def datasets(self, splits: translation_data.ParallelSplits) -> dict[str, tf.data.Dataset]:
        """Batched datasets per split: the train split shuffled (seeded) and bucketed by source length."""
        lengths = {name: self._source_lengths(split.sources) for name, split in splits.splits.items()}
        boundaries = None
        if self.data_config.bucketing:
            boundaries = batching.bucket_boundaries(lengths["train"], self.data_config.num_buckets)
        return {
            name: batching.batch_examples(
                translation_data.pair_dataset(split, self.encode_source, self.encode_target), lengths=lengths[name],
                batch_size=self.config.train.batch_size, boundaries=boundaries, length_key="encoder_token_ids",
                shuffle_buffer=self.data_config.shuffle_buffer if name == "train" else 0,
                seed=self.config.runtime.seed, cache=self.data_config.cache)
            for name, split in splits.splits.items()
        }

    def _source_lengths(self, texts: list[str]) -> np.ndarray:
        lengths = [self.encode_source(tf.constant(texts[start:start + _BATCH_SIZE], dtype=tf.string))
                   .row_lengths().numpy() for start in range(0, len(texts), _BATCH_SIZE)]
        return np.concatenate(lengths) if lengths else np.zeros([0], np.int64)

    def sample_inputs(self, splits: translation_data.ParallelSplits) -> list[str]:
        """Inputs for the export self-check and the demo: an empty text, validation sources, demo dates last."""
        demos = synthetic.translation_demo_texts() if self.data_config.source.startswith("synthetic:") else []
        return [""] + list(splits.splits["validation"].sources[:4]) + demos

    # === Model ===

    def build_model(self) -> seq2seq_translator.Seq2SeqTranslator:
        return seq2seq_translator.build_seq2seq_translator(
            self.model_config, source_vocabulary_size=len(self.source_vocabulary),
            target_vocabulary_size=len(self.target_vocabulary))

    def loss(self) -> keras.losses.Loss:
        return MaskedSequenceLoss(label_smoothing=self.model_config.label_smoothing)

    def metrics(self) -> list:
        return [MaskedTokenAccuracy(name="accuracy")]

    # === Decoding ===

    def decode(self, model, encoder_token_ids: tf.Tensor, mode: str, temperature=1.0,
               seed=None) -> decoding.DecodeResult:
        """Decodes encoder_token_ids [batch, time] with `greedy`, `beam` or `sample` (pipeline.decoding)."""
        state = model.encode(encoder_token_ids)
        start_tokens = tf.fill(tf.shape(encoder_token_ids)[:1], sequence_text.START_ID)  # (batch,)

        def step_function(token_ids, step_state, step):
            del step  # The decoder state carries the position.
            return model.decode_step(token_ids, step_state)

        settings = {"end_token": sequence_text.END_ID, "max_length": self.max_decode_length}
        if mode == "beam":
            return decoding.beam_search(step_function, state, start_tokens, beam_size=self.model_config.beam_size,
                                        length_penalty=self.model_config.length_penalty, **settings)
        if mode == "sample":
            return decoding.sample(step_function, state, start_tokens, temperature=temperature, seed=seed,
                                   **settings)
        return decoding.greedy_search(step_function, state, start_tokens, **settings)

    def detokenize(self, token_ids: tf.Tensor) -> tf.Tensor:
        """Target ids [batch, time] -> readable strings [batch]; padding, start and end tokens are dropped."""
        tokens = tf.gather(tf.constant(self.target_vocabulary, dtype=tf.string), token_ids)  # (batch, time)
        keep = tf.logical_or(token_ids > sequence_text.END_ID, tf.equal(token_ids, sequence_text.UNKNOWN_ID))
        return sequence_text.detokenize(tf.ragged.boolean_mask(tokens, keep))

    def translate(self, model, texts: tf.Tensor, mode: str, temperature=1.0, seed=None) -> dict:
        """Raw strings [batch] -> {"translation": string [batch], "score": float32 [batch]} (core TF ops)."""
        result = self.decode(model, self.source_token_ids(texts), mode, temperature=temperature, seed=seed)
        return self.translation_outputs(result)

    def translation_outputs(self, result: decoding.DecodeResult) -> dict:
        """A decoding result -> the signatures' outputs: `translation` string [batch], `score` float32 [batch]."""
        return {"translation": self.detokenize(result.token_ids), "score": result.scores}

    def translate_with_attention(self, model, texts: list[str]) -> list[dict]:
        """Greedy translations with their attention weights, for plotting alignments.

        Returns:
            Per text: `source_tokens`, `target_tokens` (the translation's tokens and "[END]") and
            `weights`, a [len(target_tokens), len(source_tokens)] array (row i: attention while
            predicting target token i).
        """
        encoder_token_ids = self.source_token_ids(tf.constant(texts, dtype=tf.string))
        result = self.decode(model, encoder_token_ids, "greedy")
        starts = tf.fill([len(texts), 1], sequence_text.START_ID)
        weights = model.attention_weights(encoder_token_ids, tf.concat([starts, result.token_ids], axis=1))
        source_tokens = self.tokenize(tf.constant(texts, dtype=tf.string))[:, :self.data_config.max_source_length]
        rows = []
        for row, tokens in enumerate(source_tokens.to_list()):
            length = int(result.lengths[row])
            target = [self.target_vocabulary[index] for index in result.token_ids[row, :length].numpy()]
            rows.append({"source_tokens": [token.decode("utf-8") for token in tokens],
                         "target_tokens": target + [sequence_text.END_TOKEN],
                         "weights": np.asarray(weights[row, :length + 1, :len(tokens)])})
        return rows

    # === Evaluation ===

    def evaluate(self, model, dataset: tf.data.Dataset) -> dict:
        """Teacher-forced loss and token accuracy; sacreBLEU BLEU and chrF of decoded, detokenized output.

        BLEU, chrF and exact match use the configured decoding (greedy when it is `sample`); with beam
        search the greedy scores are reported too, as `greedy_bleu` etc. They compare against the raw
        reference strings, case-insensitively when `data.lowercase` is on (the model never sees case then).
        """
        mode = "greedy" if self.model_config.decoding == "sample" else self.model_config.decoding
        modes = [mode] + (["greedy"] if mode != "greedy" else [])
        totals, texts = self._evaluation_pass(model, dataset, modes)
        report = {"examples": len(texts["references"]), "loss": totals["loss"] / max(totals["tokens"], 1.0),
                  "accuracy": totals["accuracy"], "decoding": mode}
        report.update(self._text_scores(texts[mode], texts["references"]))
        if mode != "greedy":
            report.update({f"greedy_{key}": value
                           for key, value in self._text_scores(texts["greedy"], texts["references"]).items()})
        samples = zip(texts["sources"], texts["references"], texts[mode])
        report["samples"] = [{"source": source, "reference": reference, "translation": translation}
                             for source, reference, translation in itertools.islice(samples, _EVALUATION_SAMPLES)]
        return report

    def _evaluation_pass(self, model, dataset: tf.data.Dataset, modes: list[str]) -> tuple[dict, dict]:
        """One pass over a split: summed loss, token count and accuracy; sources, references, translations."""
        forward = tf.function(lambda features: model(features, training=False), reduce_retracing=True)
        translators = {mode: self._translator(model, mode) for mode in modes}
        loss, accuracy = self.loss(), MaskedTokenAccuracy()
        totals = {"loss": 0.0, "tokens": 0.0}
        texts = {key: [] for key in ["sources", "references"] + modes}
        for features, labels in dataset:
            inputs = {key: features[key] for key in ("encoder_token_ids", "decoder_token_ids")}
            logits = forward(inputs)
            tokens = float(np.count_nonzero(labels.numpy()))
            totals["loss"] += float(loss(labels, logits)) * tokens
            totals["tokens"] += tokens
            accuracy.update_state(labels, logits)
            for mode, translator in translators.items():
                texts[mode].extend(_strings(translator(inputs["encoder_token_ids"])))
            texts["sources"].extend(_strings(features["source_text"]))
            texts["references"].extend(_strings(features["target_text"]))
        totals["accuracy"] = float(accuracy.result())
        return totals, texts

    def _translator(self, model, mode: str) -> typing.Callable[[tf.Tensor], tf.Tensor]:
        """encoder_token_ids [batch, time] -> detokenized translations [batch], as one traced graph.

        Kept for the next split evaluated with the same model: tracing a decoding loop takes seconds.
        """
        cached_model, translate = self._translators.get(mode, (None, None))
        if cached_model is model:
            return translate

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def translate(encoder_token_ids):
            return self.detokenize(self.decode(model, encoder_token_ids, mode).token_ids)
        self._translators[mode] = (model, translate)
        return translate

    def _text_scores(self, hypotheses: list[str], references: list[str]) -> dict:
        lowercase = self.data_config.lowercase

        def normalize(text: str) -> str:
            return " ".join((text.lower() if lowercase else text).split())

        exact = [normalize(hypothesis) == normalize(reference)
                 for hypothesis, reference in zip(hypotheses, references)]
        bleu = sacrebleu.metrics.BLEU(lowercase=lowercase).corpus_score(hypotheses, [references])
        chrf = sacrebleu.metrics.CHRF(lowercase=lowercase).corpus_score(hypotheses, [references])
        return {"bleu": float(bleu.score), "chrf": float(chrf.score),
                "exact_match": float(np.mean(exact)) if exact else 0.0}

    # === Serving ===

    def serving_functions(self, model) -> dict[str, typing.Callable]:
        """`serving_default` (the configured decoding) plus `greedy`, `beam` and `sample` signatures.

        Each takes `text` string [batch] (`sample` also a `temperature` float scalar) and returns
        `translation` string [batch] and `score` float32 [batch]: the log-probability of the output
        (end token included); for beam search GNMT's length-normalized log-probability.
        `serving_default` with `decoding: sample` uses `model.temperature` and the run's seed, so it is
        repeatable; the `sample` signature draws a fresh seed on every call.
        """
        return generation.decoding_signatures(
            tf.TensorSpec([None], tf.string, name="text"),
            lambda inputs, mode, **settings: self.translate(model, inputs, mode, **settings),
            default_mode=self.model_config.decoding, temperature=self.model_config.temperature,
            seed=self.config.runtime.seed)

    def compiled_serving_functions(self, model) -> dict[str, typing.Callable]:
        """`greedy_xla`, `beam_xla` (and `serving_default_xla` unless it samples): the encoder and the whole
        decoding loop compiled by XLA, tokenization and detokenization outside (`export.jit_compile`)."""
        return compiled.decoding_signatures(
            tf.TensorSpec([None], tf.string, name="text"),
            prepare=lambda texts: compiled.pad_axis(self.source_token_ids(texts), 1),
            decode=lambda encoder_token_ids, mode: self.decode(model, encoder_token_ids, mode),
            finish=lambda texts, result: self.translation_outputs(result),
            default_mode=self.model_config.decoding)

    def trackables(self) -> list:
        """Objects whose state the export must carry besides the model (the source lookup table)."""
        return [self.source_lookup]


def _strings(tensor: tf.Tensor) -> list[str]:
    return [item.decode("utf-8") for item in tensor.numpy()]
