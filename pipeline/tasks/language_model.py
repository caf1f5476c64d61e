"""Language modelling: plain text -> recurrent next-token model -> perplexity, and generation from a prompt.

Training follows `train.carry_state`: truncated backpropagation through time over the text as one
stream (the model is stateful, its state is reset at every epoch and before every validation pass), or
independent shuffled chunks. Evaluation scores held-out text the same way, with the state passed
explicitly from chunk to chunk. Generation runs `pipeline.decoding` over the model's `decode_step`.
"""

import dataclasses
import functools
import logging
import math
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import decoding
from pipeline import losses
from pipeline import progress
from pipeline.data import language_model as text_stream
from pipeline.data import subwords
from pipeline.data import synthetic
from pipeline.data import text as text_lib
from pipeline.models import recurrent_language_model
from pipeline.tasks import base
from pipeline.tasks import generation

logger = logging.getLogger(__name__)

_NEVER = -1e9  # logit given to padding and out-of-vocabulary tokens during generation
_PROMPT_SAMPLES = 3
_LINES_PER_BATCH = 1024  # lines of a streamed split tokenized together
_PREDICTION_LOGITS = 2 ** 26  # most logits (floats) of one batch of `predictions` (256 MB)


# === Callback ===


class ResetCarriedState(keras.callbacks.Callback):
    """Starts every epoch and every validation pass of a stateful language model from a zero state."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_state()

    def on_test_begin(self, logs=None):
        self.model.reset_state()


@dataclasses.dataclass
class LanguageModelPreprocessing(base.Preprocessing):
    """The vocabulary (characters or words, fitted on the training text); it starts with "", "[UNK]" and
    "\\n" (ids 0 to 2)."""

    vocabulary: list[str]

    FILES = {"vocabulary": text_lib.VOCABULARY_FILE}

    lookup = base.LookupTable("vocabulary")


@dataclasses.dataclass
class SubwordLanguageModelPreprocessing(base.Preprocessing):
    """The SentencePiece model of `data.level: sentencepiece`, trained on the training lines. Its ids are the
    model's: 0 padding, 1 unknown, 2 the line break, 3 unused, then the pieces."""

    model: bytes

    FILES = {"model": "sentencepiece.model"}

    @functools.cached_property
    def tokenizer(self):
        """Strings -> ids and back, in the graph (TF Text)."""
        return subwords.tokenizer(self.model)

    @property
    def vocabulary(self) -> list[str]:
        pieces = subwords.pieces(self.model)
        return list(text_stream.RESERVED) + pieces[len(text_stream.RESERVED):]


def _lines(split) -> typing.Iterator[str]:
    """A split's lines: read from the files when streamed, else split from its text."""
    return split.read() if isinstance(split, text_stream.StreamedText) else iter(split.text.split("\n"))


def _line_batches(split) -> typing.Iterator[tf.Tensor]:
    """A split's lines as string batches, each line with its line break (see `text_stream.line_batches`)."""
    if not isinstance(split, text_stream.StreamedText):
        return text_stream.line_batches(split.text)
    return text_stream.batches_of_lines((line + "\n" for line in split.read()), _LINES_PER_BATCH)


class LanguageModelTask(generation.GenerativeTask):
    """Wires a language-model `RunConfig` to data, model, loss, evaluation and the serving signatures."""

    schema = config_lib.language_model.SCHEMA
    serving_input = "prompt"
    compiles_serving = False

    @property
    def preprocessing_class(self) -> type[base.Preprocessing]:
        return SubwordLanguageModelPreprocessing if self.uses_subwords else LanguageModelPreprocessing

    @property
    def uses_subwords(self) -> bool:
        return self.data_config.level == "sentencepiece"

    @property
    def max_decode_length(self) -> int:
        return self.model_config.max_generate_length

    @property
    def end_token(self) -> int:
        """A line break ends a generation with `model.stop_at_newline`; padding (never generated) otherwise."""
        return text_stream.NEWLINE_ID if self.model_config.stop_at_newline else text_stream.PADDING_ID

    # === Data ===

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> tokens [batch, (time)] at the configured level."""
        return text_stream.tokenize(texts, level=self.data_config.level, lowercase=self.data_config.lowercase,
                                    strip_punctuation=self.data_config.strip_punctuation)

    def load_splits(self) -> text_stream.TextSplits:
        """The splits; with `data.cache: false` and files, the training text streams from its files."""
        return text_stream.load_splits(self.data_config, seed=self.config.runtime.seed)

    def fit_preprocessing(self, splits: text_stream.TextSplits) -> base.Preprocessing:
        """Builds the vocabulary (or trains the SentencePiece model) from the training text only.

        A streamed training split is read once: words or characters are counted as they come (memory grows
        with the distinct tokens only); SentencePiece trains on a seeded sample of its lines.
        """
        train = splits.splits["train"]
        if self.uses_subwords:
            settings = self.data_config.sentencepiece
            lines = (line.lower() if self.data_config.lowercase else line for line in _lines(train))
            sample = subwords.sample_sentences(lines, settings.input_sentence_size, self.config.runtime.seed)
            preprocessing = SubwordLanguageModelPreprocessing(subwords.train_model(
                sample, vocabulary_size=self.data_config.vocabulary_size, model_type=settings.model_type,
                character_coverage=settings.character_coverage, byte_fallback=settings.byte_fallback,
                seed=self.config.runtime.seed))
            logger.info("SentencePiece %s: %d pieces", settings.model_type, len(preprocessing.vocabulary))
            return preprocessing
        token_batches = ([token.decode("utf-8") for token in self.tokenize(lines).flat_values.numpy()]
                         for lines in _line_batches(train))
        preprocessing = LanguageModelPreprocessing(text_lib.build_vocabulary(
            token_batches, self.data_config.vocabulary_size, text_stream.RESERVED))
        logger.info("vocabulary: %d %s tokens", len(preprocessing.vocabulary), self.data_config.level)
        return preprocessing

    def ids(self, preprocessing: base.Preprocessing, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw strings [batch] -> token ids int32 [batch, (time)], line breaks included (core TF / TF Text ops)."""
        if self.uses_subwords:
            if self.data_config.lowercase:
                texts = tf.strings.lower(texts, encoding="utf-8")
            return subwords.tokenize_lines(preprocessing.tokenizer, texts, text_stream.NEWLINE_ID)
        return tf.cast(preprocessing.lookup(self.tokenize(texts)), tf.int32)

    def token_ids(self, preprocessing: base.Preprocessing, text: str) -> np.ndarray:
        """A whole text -> its token ids int32 [tokens] (line breaks included)."""
        pieces = [self.ids(preprocessing, lines).flat_values.numpy() for lines in text_stream.line_batches(text)]
        return np.concatenate(pieces).astype(np.int32) if pieces else np.zeros([0], np.int32)

    def documents(self, preprocessing: base.Preprocessing, split: text_stream.StreamedText
                  ) -> typing.Iterator[np.ndarray]:
        """One pass over a streamed split: the token ids int32 [tokens] of each line, its line break included."""
        for lines in _line_batches(split):
            ids = self.ids(preprocessing, lines)
            yield from np.split(ids.flat_values.numpy().astype(np.int32), ids.row_limits().numpy()[:-1])

    def datasets(self, splits: text_stream.TextSplits,
                 preprocessing: LanguageModelPreprocessing) -> dict[str, tf.data.Dataset]:
        """Batches per split in the layout of `train.carry_state` (training windows shuffled, seeded); a
        streamed training split is tokenized as it is read, on every pass."""
        result = {}
        for split_name, split in splits.splits.items():
            if isinstance(split, text_stream.StreamedText):
                result[split_name] = text_stream.streamed_batches(
                    functools.partial(self.documents, preprocessing, split), batch_size=self.train_config.batch_size,
                    steps=self.train_config.tbptt_steps, carry_state=self.train_config.carry_state,
                    shuffle_buffer=self.data_config.shuffle_buffer, seed=self.config.runtime.seed)
                continue
            token_ids = self.token_ids(preprocessing, split.text)
            if len(token_ids) < 2:
                raise ValueError(f"{split.origin}: the {split_name} text has fewer than 2 tokens")
            result[split_name] = self.batches(token_ids, training=split_name == "train")
        return result

    def batches(self, token_ids: np.ndarray, training: bool = False,
                carry_state: typing.Optional[bool] = None) -> tf.data.Dataset:
        """One split's token ids as batches: the stream layout when carrying state, else windows."""
        carry_state = self.train_config.carry_state if carry_state is None else carry_state
        settings = {"batch_size": self.train_config.batch_size, "steps": self.train_config.tbptt_steps}
        if carry_state:
            return text_stream.stream_batches(token_ids, **settings)
        return text_stream.window_batches(token_ids, shuffle_buffer=self.data_config.shuffle_buffer if training else 0,
                                          seed=self.config.runtime.seed, **settings)

    def sample_inputs(self, splits: text_stream.TextSplits) -> list[str]:
        """Prompts for the export self-check and the demo: empty, validation line openings, demo prompts."""
        lines = [line for line in splits.splits["validation"].text.split("\n") if line.strip()]
        by_words = self.data_config.level != "char"
        words_or_characters = 3 if by_words else 12
        openings = [(" ".join(line.split()[:words_or_characters]) if by_words
                     else line[:words_or_characters]) for line in lines[:_PROMPT_SAMPLES]]
        demos = (synthetic.language_model_demo_prompts()
                 if self.data_config.source == "synthetic:language_model" else [])
        return [""] + openings + demos

    # === Model ===

    def build_model(self, preprocessing: LanguageModelPreprocessing) -> recurrent_language_model.RecurrentLanguageModel:
        """The model; with `train.sampled_softmax`, trained on a sampled softmax over this vocabulary.

        Raises:
            config_lib.ConfigError: `train.sampled_softmax` is not below the fitted vocabulary's size (a
                small corpus may fill fewer than `data.vocabulary_size` entries).
        """
        vocabulary_size, sampled = len(preprocessing.vocabulary), self.train_config.sampled_softmax
        if sampled >= vocabulary_size - 1:
            raise config_lib.ConfigError(
                f"train.sampled_softmax: {sampled} classes cannot be sampled from the {vocabulary_size - 1} "
                "non-padding tokens of the vocabulary fitted on the training text; lower it, or set 0 (the full "
                "softmax costs little on so small a vocabulary)")
        return recurrent_language_model.build_recurrent_language_model(
            self.model_config, vocabulary_size=vocabulary_size, stateful=self.train_config.carry_state,
            sampled_softmax=sampled)

    def text_encoder(self, model: recurrent_language_model.RecurrentLanguageModel,
                     preprocessing: base.Preprocessing) -> base.TextEncoder:
        """The embedding and recurrent layers: what a classifier or tagger starts from after pretraining."""
        return base.TextEncoder(model.embedding, preprocessing.vocabulary, model.recurrent_layers,
                                lowercase=self.data_config.lowercase)

    def loss(self) -> keras.losses.Loss:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self) -> list:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy"), losses.Perplexity(name="perplexity")]

    def training_callbacks(self, model) -> list:
        """Resets the carried state at epoch starts and before validation (truncated BPTT only)."""
        return [ResetCarriedState()] if getattr(model, "stateful", False) else []

    # === Evaluation ===

    def score(self, model, dataset: tf.data.Dataset, carry_state: bool) -> dict:
        """Summed cross-entropy, correct predictions and token count over a dataset, in order.

        With `carry_state`, each batch starts from the previous batch's final state (when the batch size
        matches), passed explicitly, so the model's own `stateful` setting plays no part.
        """
        state_spec = tf.nest.map_structure(lambda _: tf.TensorSpec([None, model.units], model.compute_dtype),
                                           model.initial_state(1))

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32),
                                      state_spec])
        def step(token_ids, labels, state):
            logits, final_state = model.run(token_ids, state)  # (batch, time, vocabulary)
            losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
            return tf.reduce_sum(tf.cast(losses, tf.float64)), tf.reduce_sum(tf.cast(correct, tf.int64)), final_state

        totals = {"loss_sum": 0.0, "correct": 0, "tokens": 0}
        state = None
        for features, labels in progress.bar(dataset, "evaluating"):
            batch_size = int(labels.shape[0])
            if not carry_state or state is None or int(state[0][0].shape[0]) != batch_size:
                state = model.initial_state(batch_size)
            loss_sum, correct, state = step(features["token_ids"], labels, state)
            totals["loss_sum"] += float(loss_sum)
            totals["correct"] += int(correct)
            totals["tokens"] += int(tf.size(labels))
        return totals

    def evaluate(self, model, dataset: tf.data.Dataset, preprocessing: LanguageModelPreprocessing) -> dict:
        """Cross-entropy per token, perplexity, bits per token (and per character for character models).

        `uniform_perplexity` (the vocabulary size, less padding) is what a model that knows nothing scores.
        """
        totals = self.score(model, dataset, carry_state=self.train_config.carry_state)
        loss = totals["loss_sum"] / max(totals["tokens"], 1)
        report = {
            "tokens": totals["tokens"],
            "loss": loss,
            "perplexity": math.exp(loss),
            "bits_per_token": loss / math.log(2),
            "accuracy": totals["correct"] / max(totals["tokens"], 1),
            "uniform_perplexity": float(len(preprocessing.vocabulary) - 1),
            "level": self.data_config.level,
            "carry_state": self.train_config.carry_state,
        }
        if self.data_config.level == "char":
            report["bits_per_character"] = report["bits_per_token"]
        return report

    # === Error analysis and reports ===

    def read_labelled_file(self, path: str, splits: text_stream.TextSplits) -> text_stream.TextSplit:
        """Text (a file or glob pattern, plain or gzip), read as `data.test` is."""
        del splits
        return text_stream.read_text(text_stream.expand_paths(path, "test"),
                                     **text_stream.reading_settings(self.data_config))

    def predictions(self, model, preprocessing: LanguageModelPreprocessing,
                    split: text_stream.TextSplit) -> typing.Iterator[dict]:
        """Per non-empty line: the line, the model's next-token guesses along it and how surprised it was.

        Each line is scored on its own, from a zero state after a line break (the line break that ends it
        included), so the figures differ a little from the split's perplexity, which carries state across
        lines when `train.carry_state` is on. `prediction[i]` is the most probable token after the first
        i tokens of the line.
        """
        lines = [line for line in split.text.split("\n") if line.strip()]

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)])
        def score(token_ids, labels):
            logits, _ = model.run(token_ids)  # (batch, time, vocabulary)
            per_token = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            mask = tf.cast(labels > 0, per_token.dtype)
            return tf.reduce_sum(per_token * mask, axis=1), tf.argmax(logits, axis=-1, output_type=tf.int32)

        separator = "" if self.data_config.level == "char" else " "
        batches = self._prediction_batches(preprocessing, lines, len(preprocessing.vocabulary))
        for batch, ids in progress.bar(batches, "predicting"):
            width = max(len(row) for row in ids)
            padded = np.zeros([len(ids), width], np.int32)
            for row, values in enumerate(ids):
                padded[row, :len(values)] = values
            loss_sums, guesses = score(tf.constant(padded[:, :-1]), tf.constant(padded[:, 1:]))
            for row, line in enumerate(batch):
                tokens = len(ids[row]) - 1
                loss = float(loss_sums[row]) / tokens
                guessed = [preprocessing.vocabulary[index] for index in guesses[row, :tokens - 1].numpy()]
                yield {"text": line, "prediction": separator.join(guessed), "tokens": tokens,
                       "loss": round(loss, 6), "perplexity": round(math.exp(loss), 6)}

    def _prediction_batches(self, preprocessing: base.Preprocessing, lines: list[str], vocabulary_size: int
                            ) -> typing.Iterator[tuple[list[str], list[np.ndarray]]]:
        """Lines, each with its ids (a line break, the line's tokens, the line break that ends it), in batches
        of at most `train.batch_size` lines whose logits stay under `_PREDICTION_LOGITS` floats (long lines,
        such as whole reviews, over a large vocabulary come a few at a time)."""
        batch, ids = [], []
        for line in lines:
            line_ids = np.concatenate([[text_stream.NEWLINE_ID], self.token_ids(preprocessing, line + "\n")])
            width = max([len(line_ids)] + [len(row) for row in ids])
            if batch and (len(batch) == self.train_config.batch_size
                          or (len(batch) + 1) * width * vocabulary_size > _PREDICTION_LOGITS):
                yield batch, ids
                batch, ids = [], []
            batch.append(line)
            ids.append(line_ids)
        if batch:
            yield batch, ids

    # === Generation ===

    def numeric_inputs(self, preprocessing: base.Preprocessing, prompts: tf.Tensor) -> tf.RaggedTensor:
        """Raw prompts [batch] -> ids [batch, (time)]: a line break (the start of text), then the prompt."""
        ids = self.ids(preprocessing, prompts)
        starts = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(prompts)[0], 1], text_stream.NEWLINE_ID))
        return tf.concat([starts, ids], axis=1)

    def sample_settings(self) -> dict:
        return {"top_k": self.model_config.top_k}

    def beam_settings(self) -> dict:
        return {"beam_size": self.model_config.beam_size}

    def decode(self, model, preprocessing: LanguageModelPreprocessing, ids: tf.RaggedTensor, mode: str,
               temperature=1.0, seed=None) -> decoding.DecodeResult:
        """Continues each prompt's ids with `greedy`, `sample` or `beam` decoding; padding and `[UNK]` are
        never generated."""
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # (batch,), each >= 1
        dense = ids.to_tensor()  # (batch, time)
        context_mask = tf.sequence_mask(lengths - 1, tf.shape(dense)[1])  # every prompt token but the last
        state = model.encode(dense, mask=context_mask)
        start_tokens = tf.gather(ids.flat_values, tf.cast(ids.row_limits(), tf.int32) - 1)  # (batch,)
        never = tf.constant([_NEVER, _NEVER] + [0.0] * (len(preprocessing.vocabulary) - 2))

        def step_function(token_ids, step_state, step):
            del step  # the recurrent state carries the position
            logits, new_state = model.decode_step(token_ids, step_state)
            return logits + never, new_state

        return self.search(step_function, state, start_tokens, mode, temperature=temperature, seed=seed)

    def detokenize(self, preprocessing: base.Preprocessing, token_ids: tf.Tensor,
                   lengths: typing.Optional[tf.Tensor] = None) -> tf.Tensor:
        if self.uses_subwords:
            ragged = (tf.RaggedTensor.from_tensor(token_ids, lengths=lengths) if lengths is not None
                      else tf.RaggedTensor.from_tensor(token_ids, padding=text_stream.PADDING_ID))
            return subwords.detokenize_lines(preprocessing.tokenizer, ragged, text_stream.NEWLINE_ID)
        tokens = tf.gather(tf.constant(preprocessing.vocabulary, dtype=tf.string), token_ids)  # (batch, time)
        ragged = (tf.RaggedTensor.from_tensor(tokens, lengths=lengths) if lengths is not None
                  else tf.RaggedTensor.from_tensor(tokens, padding=""))
        return text_stream.detokenize(ragged, level=self.data_config.level)

    def outputs(self, preprocessing: LanguageModelPreprocessing, prompts: tf.Tensor,
                result: decoding.DecodeResult) -> dict:
        """`text` (prompt + continuation) and `continuation` string [batch], and `score` float32 [batch] (the
        continuation's log-probability; length-normalized for beam)."""
        continuation = self.detokenize(preprocessing, result.token_ids, result.lengths)
        if self.uses_subwords:  # detokenized together, so that the pieces decide the space between them
            generated = tf.RaggedTensor.from_tensor(result.token_ids, lengths=result.lengths)
            text = subwords.detokenize_lines(preprocessing.tokenizer,
                                             tf.concat([self.ids(preprocessing, prompts), generated], axis=1),
                                             text_stream.NEWLINE_ID)
            return {"text": text, "continuation": continuation, "score": result.scores}
        return {"text": self._join(prompts, continuation), "continuation": continuation, "score": result.scores}

    def _join(self, prompts: tf.Tensor, continuations: tf.Tensor) -> tf.Tensor:
        if self.data_config.level == "char":
            return tf.strings.join([prompts, continuations])
        joined = tf.strings.join([prompts, continuations], separator=" ")
        joined = tf.strings.regex_replace(joined, " ?\n ?", "\n")
        return tf.strings.regex_replace(joined, r"^ | $", "")
