"""Translation (sequence to sequence): sentence pairs -> encoder-decoder with attention -> translation, score."""

import dataclasses
import functools
import itertools
import logging
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import decoding
from pipeline import losses
from pipeline import plots
from pipeline import metrics as metrics_lib
from pipeline.data import batching
from pipeline.data import number_copying
from pipeline.data import subwords
from pipeline.data import translation as translation_data
from pipeline.data import synthetic
from pipeline.data import text as text_lib
from pipeline.data import sequence_text
from pipeline.models import seq2seq_translator
from pipeline.tasks import base
from pipeline.tasks import compiled
from pipeline.tasks import generation

logger = logging.getLogger(__name__)

_BATCH_SIZE = 1024
_BOUNDARY_SAMPLE = 100_000  # streamed training sources whose lengths place the bucket boundaries
_EVALUATION_SAMPLES = 5
_FIGURE_SENTENCES = 4


@dataclasses.dataclass
class TranslationPreprocessing(base.Preprocessing):
    """Source and target vocabularies, fitted on the training pairs.

    The target vocabulary starts with "", "[UNK]", "[START]", "[END]" (ids 0 to 3).
    """

    source_vocabulary: list[str]
    target_vocabulary: list[str]

    FILES = {"source_vocabulary": "source_vocabulary.json", "target_vocabulary": "target_vocabulary.json"}

    source_lookup = base.LookupTable("source_vocabulary")
    target_lookup = base.LookupTable("target_vocabulary")


@dataclasses.dataclass
class SubwordTranslationPreprocessing(base.Preprocessing):
    """SentencePiece models of both sides (`data.tokenizer: sentencepiece`), fitted on the training pairs.

    Their ids are the model's: 0 padding, 1 unknown, 2 start, 3 end, then the pieces. With
    `data.sentencepiece.shared` both fields hold the same model.
    """

    source_model: bytes
    target_model: bytes

    FILES = {"source_model": "source.sentencepiece.model", "target_model": "target.sentencepiece.model"}

    @functools.cached_property
    def source_tokenizer(self):
        """Source strings -> ids, in the graph (TF Text)."""
        return subwords.tokenizer(self.source_model)

    @functools.cached_property
    def target_tokenizer(self):
        """Target strings -> ids and ids -> strings, in the graph (TF Text)."""
        return subwords.tokenizer(self.target_model)

    @property
    def number_placeholder_ids(self) -> tuple[int, int]:
        """Ids of `number_copying.PLACEHOLDER` in the source and the target model (`data.copy_numbers`)."""
        source, target = self.source_vocabulary, self.target_vocabulary
        if number_copying.PLACEHOLDER not in source or number_copying.PLACEHOLDER not in target:
            raise ValueError(f"data.copy_numbers: the SentencePiece models have no {number_copying.PLACEHOLDER} "
                             "piece (trained without data.copy_numbers?)")
        return source.index(number_copying.PLACEHOLDER), target.index(number_copying.PLACEHOLDER)

    @property
    def source_vocabulary(self) -> list[str]:
        return subwords.pieces(self.source_model)

    @property
    def target_vocabulary(self) -> list[str]:
        return subwords.pieces(self.target_model)


class TranslationTask(generation.GenerativeTask):
    """Wires a translation `RunConfig` to data, model, loss, evaluation and the serving signatures."""

    schema = config_lib.translation.SCHEMA

    @property
    def preprocessing_class(self) -> type[base.Preprocessing]:
        return SubwordTranslationPreprocessing if self.uses_subwords else TranslationPreprocessing

    @property
    def uses_subwords(self) -> bool:
        return self.config.data.tokenizer == "sentencepiece"

    @property
    def max_decode_length(self) -> int:
        return self.config.model.max_decode_length or self.config.data.max_target_length + 1

    # === Data ===

    def load_splits(self) -> translation_data.ParallelSplits:
        """The splits; with `data.cache: false` and files, the training pairs stream from their files."""
        splits = translation_data.load_splits(self.config.data, seed=self.config.runtime.seed)
        streamed = isinstance(splits.splits["train"], translation_data.StreamedPairs)
        if streamed and not self.config.train.steps_per_epoch:
            raise config_lib.ConfigError("train.steps_per_epoch: required with data.cache: false (streamed "
                                         "training pairs have no length known in advance)")
        return splits

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> standardized tokens [batch, (time)]."""
        data = self.config.data
        return tf.strings.split(sequence_text.standardize(texts, lowercase=data.lowercase,
                                                     strip_punctuation=data.strip_punctuation))

    def fit_preprocessing(self, splits: translation_data.ParallelSplits) -> base.Preprocessing:
        """Builds both vocabularies (or SentencePiece models) from the training split only."""
        train, data = splits.splits["train"], self.config.data
        if self.uses_subwords:
            return self._fit_subwords(train)
        sources, targets = train.sources, train.targets
        if isinstance(train, translation_data.StreamedPairs):  # count words in a bounded sample
            size, seed = data.sentencepiece.input_sentence_size, self.config.runtime.seed
            sources = subwords.sample_sentences(sources, size, seed)
            targets = subwords.sample_sentences(targets, size, seed + 1)
        preprocessing = TranslationPreprocessing(
            source_vocabulary=text_lib.build_vocabulary(self._token_batches(sources),
                                                        data.source_vocabulary_size, sequence_text.SOURCE_RESERVED),
            target_vocabulary=text_lib.build_vocabulary(self._token_batches(targets),
                                                        data.target_vocabulary_size, sequence_text.TARGET_RESERVED))
        logger.info("vocabulary: %d source tokens, %d target tokens", len(preprocessing.source_vocabulary),
                    len(preprocessing.target_vocabulary))
        return preprocessing

    def _fit_subwords(self, train) -> SubwordTranslationPreprocessing:
        """Trains the SentencePiece model(s) on a seeded sample of at most `input_sentence_size` sentences per side."""
        data, seed = self.config.data, self.config.runtime.seed
        settings = data.sentencepiece
        sources = subwords.sample_sentences(train.sources, settings.input_sentence_size, seed)
        targets = subwords.sample_sentences(train.targets, settings.input_sentence_size, seed + 1)
        if data.lowercase:
            sources, targets = [text.lower() for text in sources], [text.lower() for text in targets]
        if data.copy_numbers:  # as the model reads them; targets keep the numbers their sources lack
            sources = [number_copying.mask_string(text) for text in sources]
        options = {"model_type": settings.model_type, "character_coverage": settings.character_coverage,
                   "byte_fallback": settings.byte_fallback, "seed": seed,
                   "symbols": [number_copying.PLACEHOLDER] if data.copy_numbers else []}
        if settings.shared:
            model = subwords.train_model(sources + targets, vocabulary_size=data.target_vocabulary_size, **options)
            preprocessing = SubwordTranslationPreprocessing(source_model=model, target_model=model)
        else:
            preprocessing = SubwordTranslationPreprocessing(
                source_model=subwords.train_model(sources, vocabulary_size=data.source_vocabulary_size, **options),
                target_model=subwords.train_model(targets, vocabulary_size=data.target_vocabulary_size, **options))
        logger.info("SentencePiece %s: %d source pieces, %d target pieces%s", settings.model_type,
                    len(preprocessing.source_vocabulary), len(preprocessing.target_vocabulary),
                    " (shared)" if settings.shared else "")
        return preprocessing

    def source_ids(self, preprocessing: base.Preprocessing, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> all their source ids int32 [batch, (time)] (words or subwords)."""
        if self.uses_subwords:
            if self.config.data.copy_numbers:
                texts = number_copying.mask(texts)
            return preprocessing.source_tokenizer.tokenize(self._cased(texts))
        return tf.cast(preprocessing.source_lookup(self.tokenize(texts)), tf.int32)

    def target_ids(self, preprocessing: base.Preprocessing, texts: tf.Tensor,
                   sources: typing.Optional[tf.Tensor] = None) -> tf.RaggedTensor:
        """Raw strings [batch] -> all their target ids int32 [batch, (time)], without start and end tokens.

        With `data.copy_numbers`, the digit runs that the raw `sources` [batch] also hold become placeholders.
        """
        if self.uses_subwords:
            if self.config.data.copy_numbers and sources is not None:
                texts = number_copying.mask_shared(texts, sources)
            return preprocessing.target_tokenizer.tokenize(self._cased(texts))
        return tf.cast(preprocessing.target_lookup(self.tokenize(texts)), tf.int32)

    def _cased(self, texts: tf.Tensor) -> tf.Tensor:
        """Subword input as the model was trained on it: lower-cased with `data.lowercase`, else as written."""
        return tf.strings.lower(texts, encoding="utf-8") if self.config.data.lowercase else texts

    def detokenize(self, preprocessing: base.Preprocessing, token_ids: tf.Tensor) -> tf.Tensor:
        """Generated ids [batch, time] -> readable strings [batch] (subwords: no unknown marks)."""
        if self.uses_subwords:
            return subwords.detokenize(preprocessing.target_tokenizer, token_ids)
        return super().detokenize(preprocessing, token_ids)

    def _token_batches(self, texts: list[str]) -> typing.Iterator[list[str]]:
        for start in range(0, len(texts), _BATCH_SIZE):
            tokens = self.tokenize(tf.constant(texts[start:start + _BATCH_SIZE], dtype=tf.string))
            yield [token.decode("utf-8") for token in tokens.flat_values.numpy()]

    def encode_source(self, preprocessing: base.Preprocessing, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> source ids [batch, (time)], truncated; an empty row keeps one padding id."""
        ids = self.source_ids(preprocessing, texts)[:, :self.config.data.max_source_length]
        dense = _dense_ids(ids)  # (batch, time >= 1)
        return tf.RaggedTensor.from_tensor(dense, lengths=tf.maximum(ids.row_lengths(), 1))

    def encode_target(self, preprocessing: base.Preprocessing, texts: tf.Tensor,
                      sources: typing.Optional[tf.Tensor] = None) -> tf.RaggedTensor:
        """Raw strings [batch] (and their raw sources) -> target ids [batch, (time)], truncated, without
        start and end tokens."""
        return self.target_ids(preprocessing, texts, sources)[:, :self.config.data.max_target_length]

    def numeric_inputs(self, preprocessing: base.Preprocessing, texts: tf.Tensor) -> tf.Tensor:
        """Raw strings [batch] -> encoder_token_ids int32 [batch, time >= 1] (the serving path)."""
        return _dense_ids(self.source_ids(preprocessing, texts)[:, :self.config.data.max_source_length])

    def evaluation_input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, None], tf.int32)  # encoder_token_ids

    def compiled_inputs(self, preprocessing: base.Preprocessing, texts: tf.Tensor) -> tf.Tensor:
        return compiled.pad_axis(self.numeric_inputs(preprocessing, texts), 1)

    def datasets(self, splits: translation_data.ParallelSplits,
                 preprocessing: base.Preprocessing) -> dict[str, tf.data.Dataset]:
        """Batched datasets per split: the train split shuffled (seeded) and bucketed by source length."""
        data = self.config.data
        encode_source = functools.partial(self.encode_source, preprocessing)
        # Streamed pairs have no lengths up front (their batches are not counted); their bucket boundaries
        # come from a bounded sample.
        lengths = {name: None if isinstance(split, translation_data.StreamedPairs)
                   else self._source_lengths(encode_source, split.sources) for name, split in splits.splits.items()}
        train_lengths = lengths["train"]
        if train_lengths is None:
            train_lengths = self._source_lengths(encode_source, subwords.sample_sentences(
                splits.splits["train"].sources, _BOUNDARY_SAMPLE, self.config.runtime.seed))
        boundaries = batching.bucket_boundaries(train_lengths, data.num_buckets) if data.bucketing else None
        return {
            name: batching.batch_examples(
                translation_data.pair_dataset(split, encode_source, functools.partial(self.encode_target, preprocessing)),
                lengths=lengths[name], batch_size=self.config.train.batch_size, boundaries=boundaries,
                length_key="encoder_token_ids", shuffle_buffer=data.shuffle_buffer if name == "train" else 0,
                seed=self.config.runtime.seed, cache=data.cache)
            for name, split in splits.splits.items()
        }

    @staticmethod
    def _source_lengths(encode_source, texts: list[str]) -> np.ndarray:
        lengths = [encode_source(tf.constant(texts[start:start + _BATCH_SIZE], dtype=tf.string))
                   .row_lengths().numpy() for start in range(0, len(texts), _BATCH_SIZE)]
        return np.concatenate(lengths) if lengths else np.zeros([0], np.int64)

    def sample_inputs(self, splits: translation_data.ParallelSplits) -> list[str]:
        """Inputs for the export self-check and the demo: an empty text, validation sources, demo dates last."""
        demos = synthetic.translation_demo_texts() if self.config.data.source.startswith("synthetic:") else []
        return [""] + list(splits.splits["validation"].sources[:4]) + demos

    # === Model ===

    def build_model(self, preprocessing: base.Preprocessing) -> seq2seq_translator.Seq2SeqTranslator:
        return seq2seq_translator.build_seq2seq_translator(
            self.config.model, source_vocabulary_size=len(preprocessing.source_vocabulary),
            target_vocabulary_size=len(preprocessing.target_vocabulary))

    def loss(self) -> keras.losses.Loss:
        return losses.MaskedSequenceLoss(label_smoothing=self.config.model.label_smoothing)

    def metrics(self) -> list:
        return [losses.MaskedTokenAccuracy(name="accuracy")]

    # === Decoding ===

    def decode(self, model, preprocessing: base.Preprocessing, encoder_token_ids: tf.Tensor, mode: str,
               temperature=1.0, seed=None) -> decoding.DecodeResult:
        """Decodes encoder_token_ids [batch, time] with `greedy`, `beam` or `sample` (pipeline.decoding).

        With `data.copy_numbers` the translation writes the number placeholder as many times as the source
        holds it (`decoding.require_token_counts`): no number is dropped, none is invented.
        """
        start_tokens = tf.fill(tf.shape(encoder_token_ids)[:1], sequence_text.START_ID)  # (batch,)

        def step_function(token_ids, step_state, step):
            del step  # The decoder state carries the position.
            return model.decode_step(token_ids, step_state)

        state = model.encode(encoder_token_ids)
        if self.config.data.copy_numbers:  # each source number is placed once, where the model chooses
            source_id, target_id = preprocessing.number_placeholder_ids
            counts = tf.reduce_sum(tf.cast(tf.equal(encoder_token_ids, source_id), tf.int32), axis=1)
            step_function, state = decoding.require_token_counts(step_function, state, counts, token=target_id,
                                                                 end_token=sequence_text.END_ID)
        return self.search(step_function, state, start_tokens, mode, temperature=temperature, seed=seed)

    def outputs(self, preprocessing: base.Preprocessing, texts: tf.Tensor,
                result: decoding.DecodeResult) -> dict:
        """`translation` string [batch] and `score` float32 [batch]: the log-probability of the output (end
        token included); for beam search GNMT's length-normalized log-probability."""
        return {"translation": self.with_numbers(self.detokenize(preprocessing, result.token_ids), texts),
                "score": result.scores}

    def with_numbers(self, translations: tf.Tensor, sources: tf.Tensor) -> tf.Tensor:
        """Detokenized translations [batch] with their sources' numbers in place (`data.copy_numbers`)."""
        return number_copying.restore(translations, sources) if self.config.data.copy_numbers else translations

    def _strings_with_numbers(self, translations: list[str], sources: list[str]) -> list[str]:
        """`with_numbers` for decoded Python strings."""
        if not self.config.data.copy_numbers or not translations:
            return translations
        return generation.strings(self.with_numbers(tf.constant(translations, dtype=tf.string),
                                                    tf.constant(sources, dtype=tf.string)))

    def translate_with_attention(self, model, preprocessing: base.Preprocessing,
                                 texts: list[str]) -> list[dict]:
        """Greedy translations with their attention weights, for plotting alignments.

        Returns:
            Per text: `source_tokens`, `target_tokens` (the translation's tokens and "[END]") and
            `weights`, a [len(target_tokens), len(source_tokens)] array (row i: attention while
            predicting target token i).
        """
        encoder_token_ids = self.numeric_inputs(preprocessing, tf.constant(texts, dtype=tf.string))
        result = self.decode(model, preprocessing, encoder_token_ids, "greedy")
        starts = tf.fill([len(texts), 1], sequence_text.START_ID)
        weights = model.attention_weights(encoder_token_ids, tf.concat([starts, result.token_ids], axis=1))
        source_tokens, target_vocabulary = self._source_tokens(preprocessing, texts), preprocessing.target_vocabulary
        rows = []
        for row, tokens in enumerate(source_tokens):
            length = int(result.lengths[row])
            target = [target_vocabulary[index] for index in result.token_ids[row, :length].numpy()]
            rows.append({"source_tokens": tokens, "target_tokens": target + [sequence_text.END_TOKEN],
                         "weights": np.asarray(weights[row, :length + 1, :len(tokens)])})
        return rows

    # === Error analysis and reports ===

    def read_labelled_file(self, path: str, splits: translation_data.ParallelSplits) -> translation_data.Pairs:
        """Sentence pairs: one TSV file, or aligned files when `path` contains `{language}`."""
        del splits
        return translation_data.read_labelled_file(self.config.data, path)

    def predictions(self, model, preprocessing: TranslationPreprocessing,
                    split: translation_data.Pairs) -> typing.Iterator[dict]:
        """Per pair: the source, the reference, the translation (decoded as evaluation decodes) and its score."""
        rows = self.decoded_rows(model, preprocessing, split.sources, self.config.train.batch_size)
        for source, reference, row in zip(split.sources, split.targets, rows):
            yield {"source": source, "reference": reference, "translation": row["translation"],
                   "score": row["score"]}

    def figures(self, model, preprocessing: TranslationPreprocessing, splits: translation_data.ParallelSplits,
                metrics: dict, directory: str) -> list[str]:
        """Attention weights of a few validation sentences (for models with attention)."""
        del metrics
        if self.config.model.attention == "none":
            return []
        sources = [text for text in splits.splits["validation"].sources[:_FIGURE_SENTENCES] if text.strip()]
        if not sources:
            return []
        alignments = self.translate_with_attention(model, preprocessing, sources)
        return [plots.attention_heatmaps(alignments, os.path.join(directory, "attention.png"))]

    def _source_tokens(self, preprocessing: base.Preprocessing, texts: list[str]) -> list[list[str]]:
        """The source tokens the encoder reads, per text: words as written, or SentencePiece pieces."""
        limit = self.config.data.max_source_length
        if self.uses_subwords:
            vocabulary = preprocessing.source_vocabulary
            return [[vocabulary[index] for index in ids] for ids in
                    self.source_ids(preprocessing, tf.constant(texts, dtype=tf.string))[:, :limit].to_list()]
        tokens = self.tokenize(tf.constant(texts, dtype=tf.string))[:, :limit]
        return [[token.decode("utf-8") for token in row] for row in tokens.to_list()]

    # === Evaluation ===

    def evaluate(self, model, dataset: tf.data.Dataset, preprocessing: base.Preprocessing) -> dict:
        """Teacher-forced loss and token accuracy; sacreBLEU BLEU and chrF of decoded, detokenized output.

        BLEU, chrF and exact match use the configured decoding (greedy when it is `sample`); with beam
        search the greedy scores are reported too, as `greedy_bleu` etc. BLEU and chrF are sacreBLEU's
        defaults (cased, `13a`) against the raw reference strings, whatever `data.lowercase` says, with
        `bleu_lowercase` beside them and their signature strings (`metrics.translation_scores`); exact
        match ignores case when `data.lowercase` is on (the model never sees case then).
        """
        texts = {"sources": [], "references": []}

        def collect(features):
            texts["sources"].extend(generation.strings(features["source_text"]))
            texts["references"].extend(generation.strings(features["target_text"]))

        totals, decoded = self.teacher_forced_pass(
            model, dataset, preprocessing, ("encoder_token_ids", "decoder_token_ids"),
            lambda features: features["encoder_token_ids"], collect)
        decoded = {mode: self._strings_with_numbers(translations, texts["sources"])
                   for mode, translations in decoded.items()}
        mode = self.evaluation_modes()[0]
        report = {"examples": len(texts["references"]), "loss": totals["loss"], "accuracy": totals["accuracy"],
                  "decoding": mode}
        report.update(self._text_scores(decoded[mode], texts["references"]))
        if mode != "greedy":
            report.update({f"greedy_{key}": value
                           for key, value in self._text_scores(decoded["greedy"], texts["references"]).items()
                           if not key.endswith("_signature")})
        samples = zip(texts["sources"], texts["references"], decoded[mode])
        report["samples"] = [{"source": source, "reference": reference, "translation": translation}
                             for source, reference, translation in itertools.islice(samples, _EVALUATION_SAMPLES)]
        return report

    def validation_scores(self, model, dataset: tf.data.Dataset,
                          preprocessing: base.Preprocessing) -> base.ValidationScores:
        """BLEU and chrF (sacreBLEU defaults) of greedy translations, for `val_bleu` / `val_chrf`."""
        decoder = self.traced_decoder(model, preprocessing, "greedy")
        sources, references, hypotheses = [], [], []
        for features, _ in dataset:
            hypotheses.extend(generation.strings(decoder(features["encoder_token_ids"])))
            sources.extend(generation.strings(features["source_text"]))
            references.extend(generation.strings(features["target_text"]))
        hypotheses = self._strings_with_numbers(hypotheses, sources)
        scores = metrics_lib.translation_scores(hypotheses, references)
        samples = [{"source": source, "reference": reference, "translation": translation} for source, reference,
                   translation in itertools.islice(zip(sources, references, hypotheses), _EVALUATION_SAMPLES)]
        return base.ValidationScores({"bleu": scores["bleu"], "chrf": scores["chrf"]}, samples)

    def _text_scores(self, hypotheses: list[str], references: list[str]) -> dict:
        lowercase = self.config.data.lowercase

        def normalize(text: str) -> str:
            return " ".join((text.lower() if lowercase else text).split())

        exact = [normalize(hypothesis) == normalize(reference)
                 for hypothesis, reference in zip(hypotheses, references)]
        return {**metrics_lib.translation_scores(hypotheses, references),
                "exact_match": float(np.mean(exact)) if exact else 0.0}


def _dense_ids(ids: tf.RaggedTensor) -> tf.Tensor:
    """Ragged ids -> dense [batch, time] right-padded with 0, with at least one column."""
    width = tf.maximum(ids.bounding_shape(1, out_type=tf.int32), 1)
    return ids.to_tensor(shape=tf.stack([ids.nrows(out_type=tf.int32), width]))
