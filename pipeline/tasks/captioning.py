"""Image captioning: images with reference captions -> CNN encoder + recurrent decoder -> caption, score.

Each image is decoded and resized once, in a checked pass that names any missing or corrupt file (or
skips and counts it, `data.on_bad_images: skip`). With a frozen encoder the same pass computes the
encoder features, which are kept in memory (`data.cache_features`), so training epochs, evaluation and
the nearest-neighbour baseline never rerun the CNN. Training examples are (image, one of its captions);
evaluation decodes each image once and scores it against all its captions.
"""

import base64
import dataclasses
import logging
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import decoding
from pipeline import metrics as metrics_lib
from pipeline.data import batching
from pipeline.data import captioning as captioning_data
from pipeline.data import images as images_lib
from pipeline.data import sequence_text
from pipeline.data import text as text_lib
from pipeline.layers import image_encoders
from pipeline.models import image_captioner
from pipeline.tasks import compiled
from pipeline.tasks import generation
from pipeline.tasks import translation

logger = logging.getLogger(__name__)

VOCABULARY_FILE = "caption_vocabulary.json"
REFERENCE_SEPARATOR = "\n"
_SAMPLE_IMAGES = 4
_EVALUATION_SAMPLES = 5
_FEATURE_BATCH_SIZE = 32


@dataclasses.dataclass
class _ImageStore:
    """The decoded images of one split: cached encoder features, cached pixels, or only their sources."""

    split: captioning_data.CaptionedImages
    features: typing.Optional[np.ndarray] = None  # float32 [images, locations, channels]
    pixels: typing.Optional[np.ndarray] = None  # uint8 [images, size, size, 3]


class CaptioningTask:
    """Wires a captioning `RunConfig` to data, model, loss, evaluation and the serving signatures.

    The caption vocabulary is fitted on the training captions and saved under `<run_dir>/vocab/`; it
    starts with "", "[UNK]", "[START]", "[END]" (ids 0 to 3), as translation's target vocabulary.
    """

    monitor_choices = ("val_loss", "val_accuracy")
    serving_input = "image_bytes"

    def __init__(self, config: config_lib.RunConfig):
        self.config = config
        self.data_config: config_lib.CaptioningDataConfig = config.data
        self.model_config: config_lib.CaptionerModelConfig = config.model
        self.vocabulary: list[str] = []
        self.lookup: typing.Optional[keras.layers.StringLookup] = None
        self.stores: dict[str, _ImageStore] = {}
        self._feature_encoder: typing.Optional[image_encoders.ImageEncoder] = None
        self._encode_pixels: typing.Optional[typing.Callable[[tf.Tensor], tf.Tensor]] = None
        self._captioners: dict[str, tuple[keras.Model, typing.Callable]] = {}  # mode -> (model, traced graph)

    @property
    def image_size(self) -> int:
        encoder = self.model_config.encoder
        return encoder.image_size or image_encoders.BACKBONES[encoder.name][2]

    @property
    def caches_features(self) -> bool:
        """True when the encoder is frozen and its features are computed once and kept in memory."""
        return not self.model_config.encoder.trainable and self.data_config.cache_features

    @property
    def image_key(self) -> str:
        return "image_features" if self.caches_features else "images"

    @property
    def max_decode_length(self) -> int:
        return self.model_config.max_decode_length or self.data_config.max_caption_length + 1

    # === Data ===

    def load_splits(self) -> captioning_data.CaptionSplits:
        return captioning_data.load_splits(self.data_config, seed=self.config.runtime.seed)

    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw captions [batch] -> standardized tokens [batch, (time)]."""
        return tf.strings.split(text_lib.standardize(texts, lowercase=self.data_config.lowercase,
                                                     strip_punctuation=self.data_config.strip_punctuation))

    def fit_preprocessing(self, splits: captioning_data.CaptionSplits) -> None:
        """Builds the caption vocabulary from the training captions only."""
        texts = [text for items in splits.splits["train"].captions for text in items]
        batches = ([token.decode("utf-8") for token in self.tokenize(tf.constant(texts[start:start + 1024]))
                    .flat_values.numpy()] for start in range(0, len(texts), 1024))
        self._set_vocabulary(text_lib.build_vocabulary(batches, self.data_config.vocabulary_size,
                                                       sequence_text.TARGET_RESERVED))
        logger.info("caption vocabulary: %d tokens", len(self.vocabulary))

    def _set_vocabulary(self, vocabulary: list[str]) -> None:
        self.vocabulary = list(vocabulary)
        self.lookup = text_lib.string_lookup(self.vocabulary)

    def save_preprocessing(self, run_dir: str) -> None:
        text_lib.save_vocabulary(self.vocabulary, os.path.join(run_dir, "vocab"), VOCABULARY_FILE)

    def load_preprocessing(self, run_dir: str) -> None:
        self._set_vocabulary(text_lib.load_vocabulary(os.path.join(run_dir, "vocab"), VOCABULARY_FILE))

    def has_preprocessing(self, run_dir: str) -> bool:
        return os.path.exists(os.path.join(run_dir, "vocab", VOCABULARY_FILE))

    def encode_captions(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw captions [batch] -> ids [batch, (time)], truncated, without start and end tokens."""
        return tf.cast(self.lookup(self.tokenize(texts)[:, :self.data_config.max_caption_length]), tf.int32)

    def read_images(self, split: captioning_data.CaptionedImages) -> _ImageStore:
        """Decodes a split's images once (naming or skipping bad ones); caches features or pixels."""
        consume, features, pixels = None, [], []
        if self.caches_features:
            self.feature_encoder()  # builds it (pretrained weights) and its traced call

            def consume(rows, batch):
                features.append(self._encode_pixels(tf.constant(batch)).numpy())
        elif self.data_config.cache:
            def consume(rows, batch):
                pixels.append(batch)
        checked = images_lib.read_images(split.images, self.image_size, on_bad_images=self.data_config.on_bad_images,
                                         consume=consume, batch_size=_FEATURE_BATCH_SIZE)
        split = captioning_data.keep_images(split, checked.kept, checked.skipped)
        return _ImageStore(split=split, features=np.concatenate(features) if features else None,
                           pixels=np.concatenate(pixels) if pixels else None)

    def feature_encoder(self) -> image_encoders.ImageEncoder:
        """The frozen encoder with its pretrained weights: the one whose features are cached."""
        if self._feature_encoder is None:
            encoder = self.model_config.encoder
            self._feature_encoder = image_encoders.ImageEncoder(encoder.name, encoder.image_size, encoder.filters,
                                                                name="image_encoder")
            self._feature_encoder.load_pretrained(encoder.weights)
            self._feature_encoder.trainable = False
            self._encode_pixels = tf.function(lambda images: self._feature_encoder(images, training=False),
                                              reduce_retracing=True)
        return self._feature_encoder

    def datasets(self, splits: captioning_data.CaptionSplits) -> dict[str, tf.data.Dataset]:
        """Batched (image, caption) datasets per split; the train split shuffled (seeded) and bucketed.

        Reads every image once first; each split in `splits` is then replaced by its decodable images
        (with the skipped ones recorded, so `splits.skipped_rows` counts them).
        """
        for name, split in list(splits.splits.items()):
            logger.info("%s: reading %d images%s", name, len(split),
                        " and computing encoder features" if self.caches_features else "")
            self.stores[name] = self.read_images(split)
            splits.splits[name] = self.stores[name].split
        rows = {name: self._caption_rows(store.split) for name, store in self.stores.items()}
        lengths = {name: self._caption_lengths(row["caption_text"]) for name, row in rows.items()}
        boundaries = None
        if self.data_config.bucketing:
            boundaries = batching.bucket_boundaries(lengths["train"], self.data_config.num_buckets)
        return {name: batching.batch_examples(
                    self._example_dataset(self.stores[name], rows[name], shuffle=name == "train"),
                    lengths=lengths[name], batch_size=self.config.train.batch_size, boundaries=boundaries,
                    length_key="decoder_token_ids")
                for name in self.stores}

    @staticmethod
    def _caption_rows(split: captioning_data.CaptionedImages) -> dict[str, np.ndarray]:
        """One row per caption: its image, its position among the image's captions, all the references."""
        rows = {"image_row": [], "caption_index": [], "caption_text": [], "references": []}
        for image_row, items in enumerate(split.captions):
            joined = REFERENCE_SEPARATOR.join(text.replace(REFERENCE_SEPARATOR, " ") for text in items)
            for index, text in enumerate(items):
                rows["image_row"].append(image_row)
                rows["caption_index"].append(index)
                rows["caption_text"].append(text)
                rows["references"].append(joined)
        return {"image_row": np.asarray(rows["image_row"], np.int32),
                "caption_index": np.asarray(rows["caption_index"], np.int32),
                "caption_text": np.asarray(rows["caption_text"], dtype=object),
                "references": np.asarray(rows["references"], dtype=object)}

    def _caption_lengths(self, texts: np.ndarray) -> np.ndarray:
        lengths = [self.encode_captions(tf.constant(texts[start:start + 1024].tolist(), tf.string))
                   .row_lengths().numpy() + 1 for start in range(0, len(texts), 1024)]
        return np.concatenate(lengths) if lengths else np.zeros([0], np.int64)

    def _example_dataset(self, store: _ImageStore, rows: dict, shuffle: bool) -> tf.data.Dataset:
        """(features, labels): the image (features, pixels or file), [START] + caption ids, caption ids + [END]."""
        dataset = tf.data.Dataset.from_tensor_slices(
            {key: tf.constant(value.tolist(), tf.string) if value.dtype == object else value
             for key, value in rows.items()})
        if shuffle:  # only indices and strings sit in the buffer, never images
            dataset = dataset.shuffle(max(len(rows["image_row"]), 1), seed=self.config.runtime.seed,
                                      reshuffle_each_iteration=True)
        dataset = dataset.batch(1024).map(self._vectorize).unbatch()
        image_of = self._image_lookup(store)
        return dataset.map(lambda features, labels: (
            {**features, self.image_key: image_of(features.pop("image_row"))}, labels),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _vectorize(self, rows: dict) -> tuple[dict, tf.RaggedTensor]:
        ids = self.encode_captions(rows["caption_text"])  # (batch, (time))
        batch_size = tf.shape(rows["caption_text"])[0]
        start = tf.RaggedTensor.from_tensor(tf.fill([batch_size, 1], sequence_text.START_ID))
        end = tf.RaggedTensor.from_tensor(tf.fill([batch_size, 1], sequence_text.END_ID))
        features = {"image_row": rows["image_row"], "caption_index": rows["caption_index"],
                    "references": rows["references"], "decoder_token_ids": tf.concat([start, ids], axis=1)}
        return features, tf.concat([ids, end], axis=1)

    def _image_lookup(self, store: _ImageStore) -> typing.Callable[[tf.Tensor], tf.Tensor]:
        if store.features is not None:
            features = tf.constant(store.features)
            return lambda row: tf.gather(features, row)
        if store.pixels is not None:
            pixels = tf.constant(store.pixels)
            return lambda row: tf.gather(pixels, row)
        sources = store.split.images
        from_path = bool(sources) and isinstance(sources[0], str)
        table = tf.constant(sources, tf.string) if sources else tf.zeros([0], tf.string)
        return lambda row: images_lib.load_image(tf.gather(table, row), self.image_size, from_path)

    def sample_inputs(self, splits: captioning_data.CaptionSplits) -> list[dict]:
        """A few decodable validation images as `{"b64": ...}` (TF Serving's JSON form of bytes)."""
        samples = []
        for source in splits.splits["validation"].images:
            try:
                encoded = _read_bytes(source)
                images_lib.decode_and_resize(tf.constant(encoded), 32)
            except (tf.errors.OpError, OSError):
                continue
            samples.append({"b64": base64.b64encode(encoded).decode("ascii")})
            if len(samples) == _SAMPLE_IMAGES:
                break
        return samples

    # === Model ===

    def build_model(self) -> image_captioner.ImageCaptioner:
        model = image_captioner.build_image_captioner(self.model_config, vocabulary_size=len(self.vocabulary))
        weights = self.model_config.encoder.weights
        if weights is not None:
            if self._feature_encoder is not None:  # the very weights whose features are cached
                model.image_encoder.backbone.set_weights(self._feature_encoder.backbone.get_weights())
            else:
                model.image_encoder.load_pretrained(weights)
        return model

    def loss(self) -> keras.losses.Loss:
        return translation.MaskedSequenceLoss(label_smoothing=self.model_config.label_smoothing)

    def metrics(self) -> list:
        return [translation.MaskedTokenAccuracy(name="accuracy")]

    # === Decoding ===

    def decode_state(self, model, state, batch_size, mode: str, temperature=1.0, seed=None) -> decoding.DecodeResult:
        """Decodes from `model.encode*` state with `greedy`, `beam` or `sample` (pipeline.decoding)."""
        start_tokens = tf.fill([batch_size], sequence_text.START_ID)

        def step_function(token_ids, step_state, step):
            del step  # The decoder state carries the position.
            return model.decode_step(token_ids, step_state)

        settings = {"end_token": sequence_text.END_ID, "max_length": self.max_decode_length}
        if mode == "beam":
            return decoding.beam_search(step_function, state, start_tokens, beam_size=self.model_config.beam_size,
                                        length_penalty=self.model_config.length_penalty, **settings)
        if mode == "sample":
            return decoding.sample(step_function, state, start_tokens, temperature=temperature, seed=seed, **settings)
        return decoding.greedy_search(step_function, state, start_tokens, **settings)

    def detokenize(self, token_ids: tf.Tensor) -> tf.Tensor:
        """Caption ids [batch, time] -> strings [batch]; padding, start and end tokens dropped."""
        tokens = tf.gather(tf.constant(self.vocabulary, dtype=tf.string), token_ids)  # (batch, time)
        keep = tf.logical_or(token_ids > sequence_text.END_ID, tf.equal(token_ids, sequence_text.UNKNOWN_ID))
        return sequence_text.detokenize(tf.ragged.boolean_mask(tokens, keep))

    def caption(self, model, image_bytes: tf.Tensor, mode: str, temperature=1.0, seed=None) -> dict:
        """Encoded images string [batch] -> {"caption": string [batch], "score": float32 [batch]} (core TF ops)."""
        images = images_lib.decode_batch(image_bytes, self.image_size)  # (batch, size, size, 3) uint8
        result = self.decode_images(model, images, mode, temperature=temperature, seed=seed)
        return self.caption_outputs(result)

    def decode_images(self, model, images: tf.Tensor, mode: str, temperature=1.0, seed=None) -> decoding.DecodeResult:
        """Decoded images uint8 [batch, size, size, 3] -> captions as a DecodeResult (encoder and decoding)."""
        return self.decode_state(model, model.encode(images), tf.shape(images)[0], mode,
                                 temperature=temperature, seed=seed)

    def caption_outputs(self, result: decoding.DecodeResult) -> dict:
        """A decoding result -> the signatures' outputs: `caption` string [batch], `score` float32 [batch]."""
        return {"caption": self.detokenize(result.token_ids), "score": result.scores}

    def caption_with_attention(self, model, image_bytes: list[bytes]) -> list[dict]:
        """Greedy captions with, for the attention decoder, the attention map of every generated token.

        Returns:
            Per image: `image` (uint8 [size, size, 3]), `tokens` (the caption's tokens and "[END]") and
            `attention` (float [len(tokens), grid_height, grid_width], or None for Show-and-Tell).
        """
        images = images_lib.decode_batch(tf.constant(image_bytes), self.image_size)
        state = model.encode(images)
        token_ids = tf.fill([len(image_bytes)], sequence_text.START_ID)
        steps, maps = [], []
        for _ in range(self.max_decode_length):
            logits, state, weights = model.decode_step_with_attention(token_ids, state)
            token_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
            steps.append(token_ids.numpy())
            maps.append(None if weights is None else weights.numpy())
        height, width, _ = model.image_encoder.grid_shape
        rows = []
        for row in range(len(image_bytes)):
            ids = [int(step[row]) for step in steps]
            length = ids.index(sequence_text.END_ID) + 1 if sequence_text.END_ID in ids else len(ids)
            tokens = [self.vocabulary[index] for index in ids[:length]]
            attention = None if maps[0] is None else np.stack(
                [maps[step][row].reshape(height, width) for step in range(length)])
            rows.append({"image": images[row].numpy(), "tokens": tokens, "attention": attention})
        return rows

    # === Evaluation ===

    def evaluate(self, model, dataset: tf.data.Dataset) -> dict:
        """Teacher-forced loss and token accuracy; BLEU-1..4, CIDEr-D and exact match of decoded captions
        against all references of each image; the same scores for the nearest-neighbour baseline.

        Decoding is the configured one (greedy when it is `sample`); with beam search the greedy scores
        are reported too, as `greedy_bleu_4` etc. The baseline captions each image with the consensus
        caption of the most similar training image by pooled encoder features.
        """
        mode = "greedy" if self.model_config.decoding == "sample" else self.model_config.decoding
        modes = [mode] + (["greedy"] if mode != "greedy" else [])
        totals, outputs = self._evaluation_pass(model, dataset, modes)
        report = {"examples": len(outputs["references"]), "captions": int(totals["captions"]),
                  "loss": totals["loss"] / max(totals["tokens"], 1.0), "accuracy": totals["accuracy"],
                  "decoding": mode}
        report.update(metrics_lib.captioning_scores(outputs[mode], outputs["references"]))
        if mode != "greedy":
            report.update({f"greedy_{key}": value for key, value in
                           metrics_lib.captioning_scores(outputs["greedy"], outputs["references"]).items()})
        baseline = metrics_lib.nearest_neighbour_captions(np.concatenate(outputs["pooled"]),
                                                          *self._training_neighbours(model))
        report.update({f"nearest_neighbour_{key}": value for key, value in
                       metrics_lib.captioning_scores(baseline, outputs["references"]).items()})
        report["cider_ratio_to_nearest_neighbour"] = report["cider"] / max(report["nearest_neighbour_cider"], 1e-9)
        report["samples"] = [{"caption": caption, "nearest_neighbour": neighbour, "references": references}
                             for caption, neighbour, references in
                             list(zip(outputs[mode], baseline, outputs["references"]))[:_EVALUATION_SAMPLES]]
        return report

    def _evaluation_pass(self, model, dataset: tf.data.Dataset, modes: list[str]) -> tuple[dict, dict]:
        forward = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
        pooled = tf.function(lambda images: tf.reduce_mean(model.image_features(images), axis=1),
                             reduce_retracing=True)
        captioners = {mode: self._captioner(model, mode) for mode in modes}
        loss, accuracy = self.loss(), translation.MaskedTokenAccuracy()
        totals = {"loss": 0.0, "tokens": 0.0, "captions": 0.0}
        outputs = {key: [] for key in ["references", "pooled"] + modes}
        for features, labels in dataset:
            inputs = {key: features[key] for key in (self.image_key, "decoder_token_ids")}
            logits = forward(inputs)
            tokens = float(np.count_nonzero(labels.numpy()))
            totals["loss"] += float(loss(labels, logits)) * tokens
            totals["tokens"] += tokens
            totals["captions"] += float(labels.shape[0])
            accuracy.update_state(labels, logits)
            first = tf.equal(features["caption_index"], 0)  # decode each image once
            images = tf.boolean_mask(features[self.image_key], first)
            if int(tf.shape(images)[0]) == 0:
                continue
            for mode, captioner in captioners.items():
                outputs[mode].extend(_strings(captioner(images)))
            outputs["references"].extend(text.split(REFERENCE_SEPARATOR) for text in
                                         _strings(tf.boolean_mask(features["references"], first)))
            outputs["pooled"].append((tf.reduce_mean(images, axis=1) if self.caches_features
                                      else pooled(images)).numpy())
        totals["accuracy"] = float(accuracy.result())
        return totals, outputs

    def _captioner(self, model, mode: str) -> typing.Callable[[tf.Tensor], tf.Tensor]:
        """Images or cached features [batch, ...] -> captions [batch], as one traced graph.

        Kept for the next split evaluated with the same model: tracing a decoding loop takes seconds.
        """
        cached_model, caption = self._captioners.get(mode, (None, None))
        if cached_model is model:
            return caption
        image_key = self.image_key

        @tf.function(reduce_retracing=True)
        def caption(images):
            state = model.encode_features(images) if image_key == "image_features" else model.encode(images)
            return self.detokenize(self.decode_state(model, state, tf.shape(images)[0], mode).token_ids)
        self._captioners[mode] = (model, caption)
        return caption

    def _training_neighbours(self, model) -> tuple[np.ndarray, list[str]]:
        """Pooled encoder features and the consensus caption of every training image."""
        store = self.stores["train"]
        if store.features is not None:
            pooled = store.features.mean(axis=1)
        else:
            batches = []
            encode = tf.function(lambda images: tf.reduce_mean(model.image_features(images), axis=1),
                                 reduce_retracing=True)
            if store.pixels is not None:
                for start in range(0, len(store.pixels), _FEATURE_BATCH_SIZE):
                    batches.append(encode(tf.constant(store.pixels[start:start + _FEATURE_BATCH_SIZE])).numpy())
            else:
                images_lib.read_images(store.split.images, self.image_size, on_bad_images="skip",
                                       consume=lambda rows, batch: batches.append(encode(tf.constant(batch)).numpy()))
            pooled = np.concatenate(batches)
        return pooled, metrics_lib.consensus_captions(store.split.captions)

    # === Serving ===

    def serving_functions(self, model) -> dict[str, typing.Callable]:
        """`serving_default` (the configured decoding) plus `greedy`, `beam` and `sample` signatures.

        Each takes `image_bytes` string [batch] (JPEG, PNG, GIF or BMP files' bytes; `sample` also a
        `temperature` float scalar) and returns `caption` string [batch] and `score` float32 [batch]:
        the log-probability of the caption (end token included), length-normalized for beam search.
        Decoding, resizing and the encoder's preprocessing run inside the graph.
        """
        return generation.decoding_signatures(
            tf.TensorSpec([None], tf.string, name="image_bytes"),
            lambda inputs, mode, **settings: self.caption(model, inputs, mode, **settings),
            default_mode=self.model_config.decoding, temperature=self.model_config.temperature,
            seed=self.config.runtime.seed)

    def compiled_serving_functions(self, model) -> dict[str, typing.Callable]:
        """`greedy_xla`, `beam_xla` (and `serving_default_xla` unless it samples): image encoder and decoding
        loop compiled by XLA, image decoding and detokenization outside (`export.jit_compile`)."""
        return compiled.decoding_signatures(
            tf.TensorSpec([None], tf.string, name="image_bytes"),
            prepare=lambda image_bytes: images_lib.decode_batch(image_bytes, self.image_size),
            decode=lambda images, mode: self.decode_images(model, images, mode),
            finish=lambda image_bytes, result: self.caption_outputs(result),
            default_mode=self.model_config.decoding)

    def trackables(self) -> list:
        """Nothing besides the model: the vocabulary is a constant of the graph."""
        return []


def _read_bytes(source: images_lib.ImageSource) -> bytes:
    if isinstance(source, bytes):
        return source
    with open(source, "rb") as stream:
        return stream.read()


def _strings(tensor: tf.Tensor) -> list[str]:
    return [item.decode("utf-8") for item in tensor.numpy()]
