"""Shared machinery of the generative tasks (translation, captioning, language model).

`GenerativeTask` holds the decoding plumbing; `decoding_signatures` builds the export's signatures for
each decoding mode.
"""

import abc
import contextlib
import functools
import itertools
import typing

import numpy as np
import tensorflow as tf

from pipeline import decoding
from pipeline import losses
from pipeline import progress
from pipeline.data import sequence_text
from pipeline.tasks import base
from pipeline.tasks import compiled

END_ID = sequence_text.END_ID
UNKNOWN_ID = sequence_text.UNKNOWN_ID

Generate = typing.Callable[..., dict]


def decoding_signatures(input_spec: tf.TensorSpec, generate: Generate, *, default_mode: str,
                        temperature: float, seed: typing.Optional[int]) -> dict[str, typing.Callable]:
    """`serving_default` (the configured decoding) plus `greedy`, `beam` and `sample` signatures.

    Args:
        input_spec: The raw input, a named string [batch] spec (e.g. `text`, `image_bytes`, `prompt`);
            its name is the signature's input name.
        generate: `(inputs, mode, temperature=..., seed=...) -> dict of outputs`.
        default_mode: Decoding of `serving_default`.
        temperature: Softmax temperature of `serving_default` when it samples.
        seed: Seed of `serving_default` when it samples, so that it is repeatable; the `sample` signature
            draws a fresh seed on every call and takes its `temperature` as a float scalar input.
    """
    @tf.function(input_signature=[input_spec])
    def greedy(inputs):
        return generate(inputs, "greedy")

    @tf.function(input_signature=[input_spec])
    def beam(inputs):
        return generate(inputs, "beam")

    @tf.function(input_signature=[input_spec, tf.TensorSpec([], tf.float32, name="temperature")])
    def sample(inputs, temperature):
        return generate(inputs, "sample", temperature=temperature)

    @tf.function(input_signature=[input_spec])
    def serve(inputs):
        return generate(inputs, default_mode, temperature=temperature, seed=seed)

    functions = {"greedy": greedy, "beam": beam, "sample": sample}
    # Greedy and beam decoding take no settings: serving_default is then that very function, traced once.
    return {"serving_default": functions[default_mode] if default_mode in ("greedy", "beam") else serve, **functions}


class GenerativeTask(base.Task):
    """Base of the tasks that generate text token by token (translation, captioning, language model).

    It owns the decoding plumbing they share: the greedy / beam / sample choice, the cache of traced
    decoders used by evaluation, the serving signatures (plain and XLA-compiled) and the string outputs.
    A subclass keeps only what is its own, in four members:

    - `numeric_inputs(preprocessing, raw)`: raw strings [batch] -> what `decode` takes (token ids, images);
    - `decode(model, preprocessing, inputs, mode, temperature, seed)`: the encoder and the step function,
      run through `search` -> `decoding.DecodeResult`;
    - `outputs(preprocessing, raw, result)`: the signature's outputs (detokenized text, score);
    - `max_decode_length`, and the `end_token` its vocabulary ends generations with.
    """

    compiles_serving = True

    @property
    @abc.abstractmethod
    def max_decode_length(self) -> int:
        """Most generated tokens, end token included."""

    end_token: typing.ClassVar[int] = END_ID

    @property
    def input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string, name=self.serving_input)

    @abc.abstractmethod
    def numeric_inputs(self, preprocessing: base.Preprocessing, raw: tf.Tensor):
        """Raw strings [batch] -> the inputs of `decode` (core TensorFlow ops, run inside the export)."""

    @abc.abstractmethod
    def decode(self, model, preprocessing: base.Preprocessing, inputs, mode: str, temperature=1.0,
               seed=None) -> decoding.DecodeResult:
        """Encodes `inputs` and decodes with `mode` (`greedy`, `beam` or `sample`), through `search`."""

    @abc.abstractmethod
    def outputs(self, preprocessing: base.Preprocessing, raw: tf.Tensor, result: decoding.DecodeResult) -> dict:
        """The signature outputs for a decoding result: readable strings [batch] and their scores."""

    # === Decoding ===

    def beam_settings(self) -> dict:
        """Keyword arguments of `decoding.beam_search` beyond the shared ones."""
        return {"beam_size": self.config.model.beam_size, "length_penalty": self.config.model.length_penalty}

    def sample_settings(self) -> dict:
        """Keyword arguments of `decoding.sample` beyond the shared ones and the temperature and seed."""
        return {}

    def search(self, step_function: decoding.StepFunction, state, start_tokens: tf.Tensor, mode: str,
               temperature=1.0, seed=None, end_token: typing.Optional[int] = None) -> decoding.DecodeResult:
        """Runs `greedy_search`, `beam_search` or `sample` of `pipeline.decoding` from `state`."""
        settings = {"end_token": self.end_token if end_token is None else end_token,
                    "max_length": self.max_decode_length}
        if mode == "beam":
            return decoding.beam_search(step_function, state, start_tokens, **settings, **self.beam_settings())
        if mode == "sample":
            return decoding.sample(step_function, state, start_tokens, temperature=temperature, seed=seed,
                                   **settings, **self.sample_settings())
        return decoding.greedy_search(step_function, state, start_tokens, **settings)

    def generate(self, model, preprocessing: base.Preprocessing, raw: tf.Tensor, mode: str, temperature=1.0,
                 seed=None) -> dict:
        """Raw strings [batch] -> the signature outputs, decoding with `mode` (core TF ops; batched)."""
        result = self.decode(model, preprocessing, self.numeric_inputs(preprocessing, raw), mode,
                             temperature=temperature, seed=seed)
        return self.outputs(preprocessing, raw, result)

    def evaluation_modes(self) -> list[str]:
        """The configured decoding (greedy when it samples) first, then greedy when that differs."""
        configured = self.config.model.decoding
        mode = "greedy" if configured == "sample" else configured
        return [mode] + (["greedy"] if mode != "greedy" else [])

    def traced_decoder(self, model, preprocessing: base.Preprocessing,
                       mode: str) -> typing.Callable[[tf.Tensor], tf.Tensor]:
        """Evaluation inputs [batch, ...] -> readable strings [batch], as one traced graph.

        Kept for the next split evaluated with the same model and preprocessing: tracing a decoding loop
        takes seconds.
        """
        cache = self.__dict__.setdefault("_traced_decoders", {})
        cached = cache.get(mode)
        if cached is not None and cached[0] is model and cached[1] is preprocessing:
            return cached[2]

        def decode(inputs):
            result = self.decode_for_evaluation(model, preprocessing, inputs, mode)
            return self.detokenize(preprocessing, result.token_ids)
        spec = self.evaluation_input_spec()
        decoder = (tf.function(decode, input_signature=[spec]) if spec is not None
                   else tf.function(decode, reduce_retracing=True))
        cache[mode] = (model, preprocessing, decoder)
        return decoder

    def evaluation_input_spec(self) -> typing.Optional[tf.TensorSpec]:
        """The spec of what `decode_for_evaluation` takes, so the decoders trace once; None retraces by shape."""
        return None

    def decode_for_evaluation(self, model, preprocessing: base.Preprocessing, inputs,
                              mode: str) -> decoding.DecodeResult:
        """Decodes the inputs that the evaluation datasets carry; those of `decode` by default."""
        return self.decode(model, preprocessing, inputs, mode)

    def detokenize(self, preprocessing: base.Preprocessing, token_ids: tf.Tensor) -> tf.Tensor:
        """Generated ids [batch, time] -> readable strings [batch]."""
        return readable_text(preprocessing.target_vocabulary, token_ids)

    def teacher_forced_pass(self, model, dataset: tf.data.Dataset, preprocessing: base.Preprocessing,
                            input_keys: tuple[str, ...],
                            decoder_inputs: typing.Callable[[dict], typing.Optional[tf.Tensor]],
                            collect: typing.Callable[[dict], None]) -> tuple[dict, dict[str, list[str]]]:
        """One pass over a split: teacher-forced loss and token accuracy, and decoded text per mode.

        Args:
            input_keys: The features the model's forward pass takes.
            decoder_inputs: features -> what the traced decoders take for this batch, or None to decode
                nothing from it.
            collect: Called with each batch's features (after decoding), to gather references etc.

        Returns:
            ({"loss": mean per token, "accuracy", "tokens", "examples"}, {mode: decoded strings}).
        """
        forward = tf.function(lambda features: model(features, training=False), reduce_retracing=True)
        decoders = {mode: self.traced_decoder(model, preprocessing, mode) for mode in self.evaluation_modes()}
        loss, accuracy = self.loss(), losses.MaskedTokenAccuracy()
        totals = {"loss": 0.0, "tokens": 0.0, "examples": 0}
        decoded = {mode: [] for mode in decoders}
        for features, labels in progress.bar(dataset, "evaluating and decoding"):
            logits = forward({key: features[key] for key in input_keys})
            tokens = float(np.count_nonzero(labels.numpy()))
            totals["loss"] += float(loss(labels, logits)) * tokens
            totals["tokens"] += tokens
            totals["examples"] += int(labels.shape[0])
            accuracy.update_state(labels, logits)
            inputs = decoder_inputs(features)
            if inputs is not None:
                for mode, decoder in decoders.items():
                    decoded[mode].extend(strings(decoder(inputs)))
            collect(features)
        totals["loss"] /= max(totals["tokens"], 1.0)
        totals["accuracy"] = float(accuracy.result())
        return totals, decoded

    def decoded_rows(self, model, preprocessing: base.Preprocessing, inputs: typing.Iterable,
                     batch_size: int = 64, total: typing.Optional[int] = None) -> typing.Iterator[dict]:
        """The signature outputs for raw inputs (strings, or bytes such as encoded images), in order.

        Decodes as evaluation does (`evaluation_modes()[0]`), batch by batch in one traced graph, reading
        `inputs` lazily; strings come back decoded and scores as floats.

        Args:
            total: Number of inputs, for the progress bar, when `len(inputs)` does not give it.
        """
        mode = self.evaluation_modes()[0]
        generate = tf.function(lambda raw: self.generate(model, preprocessing, raw, mode),
                               input_signature=[self.input_spec])
        total = len(inputs) if total is None and hasattr(inputs, "__len__") else total
        bar = progress.counter(f"decoding ({mode})", total=total)
        iterator = iter(inputs)
        with contextlib.closing(bar):
            while batch := list(itertools.islice(iterator, batch_size)):
                outputs = {key: value.numpy() for key, value in
                           generate(tf.constant(batch, dtype=tf.string)).items()}
                bar.update(len(batch))
                for row in range(len(batch)):
                    yield {key: _plain(value[row]) for key, value in outputs.items()}

    # === Serving ===

    def serving_functions(self, model, preprocessing: base.Preprocessing) -> dict[str, typing.Callable]:
        """`serving_default` (the configured decoding) plus `greedy`, `beam` and `sample` signatures.

        `serving_default` with `decoding: sample` uses `model.temperature` and the run's seed, so it is
        repeatable; the `sample` signature draws a fresh seed on every call.
        """
        return decoding_signatures(
            self.input_spec, functools.partial(self.generate, model, preprocessing),
            default_mode=self.config.model.decoding, temperature=self.config.model.temperature,
            seed=self.config.runtime.seed)

    def compiled_inputs(self, preprocessing: base.Preprocessing, raw: tf.Tensor):
        """`numeric_inputs` for the XLA signatures (time axes padded to bound recompilations)."""
        return self.numeric_inputs(preprocessing, raw)

    def compiled_serving_functions(self, model, preprocessing: base.Preprocessing) -> dict[str, typing.Callable]:
        """`greedy_xla`, `beam_xla` (and `serving_default_xla` unless it samples): the encoder and the whole
        decoding loop compiled by XLA, string work outside (`export.jit_compile`)."""
        return compiled.decoding_signatures(
            self.input_spec,
            prepare=functools.partial(self.compiled_inputs, preprocessing),
            decode=lambda inputs, mode: self.decode(model, preprocessing, inputs, mode),
            finish=functools.partial(self.outputs, preprocessing),
            default_mode=self.config.model.decoding)


def readable_text(vocabulary: typing.Sequence[str], token_ids: tf.Tensor) -> tf.Tensor:
    """Ids [batch, time] of a vocabulary that starts with `RESERVED` -> detokenized strings [batch].

    Padding, start and end tokens are dropped; `[UNK]` is kept, so that a reader sees a word is missing.
    """
    tokens = tf.gather(tf.constant(list(vocabulary), dtype=tf.string), token_ids)  # (batch, time)
    keep = tf.logical_or(token_ids > END_ID, tf.equal(token_ids, UNKNOWN_ID))
    return sequence_text.detokenize(tf.ragged.boolean_mask(tokens, keep))


def strings(tensor: tf.Tensor) -> list[str]:
    """A string tensor [batch] -> Python strings."""
    return [item.decode("utf-8") for item in tensor.numpy()]


def _plain(value):
    """One output value of one row as plain JSON: text decoded, floats rounded to 6 digits."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, np.floating):
        return round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value
