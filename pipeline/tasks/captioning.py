"""Image captioning: images with reference captions -> CNN encoder + recurrent decoder -> caption, score.

Each image is decoded and resized once, in a checked pass that names any missing or corrupt file (or
skips and counts it, `data.on_bad_images: skip`). With a frozen encoder the same pass computes the
encoder features, which are kept in memory (`data.cache_features`), so training epochs, evaluation and
the nearest-neighbour baseline never rerun the CNN. Training examples are (image, one of its captions);
evaluation decodes each image once and scores it against all its captions.
"""

import base64
import contextlib
import dataclasses
import functools
import logging
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from pipeline import config as config_lib
from pipeline import decoding
from pipeline import figures as figures_lib
from pipeline import losses
from pipeline import metrics as metrics_lib
from pipeline import progress
from pipeline.data import batching
from pipeline.data import captioning as captioning_data
from pipeline.data import images as images_lib
from pipeline.data import text as text_lib
from pipeline.data import sequence_text
from pipeline.layers import image_encoders
from pipeline.models import image_captioner
from pipeline.tasks import base
from pipeline.tasks import generation

logger = logging.getLogger(__name__)

REFERENCE_SEPARATOR = "\n"
_SAMPLE_IMAGES = 4
_EVALUATION_SAMPLES = 5
_FEATURE_BATCH_SIZE = 32
_FIGURE_IMAGES = 8


@dataclasses.dataclass
class _ImageStore:
    """The decoded images of one split: cached encoder features, cached pixels, or only their sources."""

    split: captioning_data.CaptionedImages
    features: typing.Optional[np.ndarray] = None  # float32 [images, locations, channels]
    pixels: typing.Optional[np.ndarray] = None  # uint8 [images, size, size, 3]


@dataclasses.dataclass
class CaptioningPreprocessing(base.Preprocessing):
    """The caption vocabulary, fitted on the training captions; it starts with "", "[UNK]", "[START]",
    "[END]" (ids 0 to 3), as translation's target vocabulary."""

    target_vocabulary: list[str]

    FILES = {"target_vocabulary": "caption_vocabulary.json"}

    lookup = base.LookupTable("target_vocabulary")


class CaptioningTask(generation.GenerativeTask):
    """Wires a captioning `RunConfig` to data, model, loss, evaluation and the serving signatures.

    `datasets` reads every image once and keeps what it decoded (features or pixels) per split in
    `stores`; evaluation reads the training store for its nearest-neighbour baseline.
    """

    preprocessing_class = CaptioningPreprocessing
    schema = config_lib.captioning.SCHEMA
    serving_input = "image_bytes"

    def __init__(self, config: config_lib.RunConfig):
        super().__init__(config)
        self.stores: dict[str, _ImageStore] = {}
        self._feature_encoder: typing.Optional[image_encoders.ImageEncoder] = None
        self._encode_pixels: typing.Optional[typing.Callable[[tf.Tensor], tf.Tensor]] = None

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

    def fit_preprocessing(self, splits: captioning_data.CaptionSplits) -> CaptioningPreprocessing:
        """Builds the caption vocabulary from the training captions only."""
        texts = [text for items in splits.splits["train"].captions for text in items]
        batches = ([token.decode("utf-8") for token in self.tokenize(tf.constant(texts[start:start + 1024]))
                    .flat_values.numpy()] for start in range(0, len(texts), 1024))
        preprocessing = CaptioningPreprocessing(text_lib.build_vocabulary(
            batches, self.data_config.vocabulary_size, sequence_text.TARGET_RESERVED))
        logger.info("caption vocabulary: %d tokens", len(preprocessing.target_vocabulary))
        return preprocessing

    def encode_captions(self, preprocessing: CaptioningPreprocessing, texts: tf.Tensor) -> tf.RaggedTensor:
        """Raw captions [batch] -> ids [batch, (time)], truncated, without start and end tokens."""
        tokens = self.tokenize(texts)[:, :self.data_config.max_caption_length]
        return tf.cast(preprocessing.lookup(tokens), tf.int32)

    def read_images(self, split: captioning_data.CaptionedImages) -> _ImageStore:
        """Decodes a split's images once (naming or skipping bad ones); caches features or pixels."""
        consume, features, pixels = None, [], []
        bar = progress.counter("reading images" + (" and caching features" if self.caches_features else ""),
                               total=len(split.images), unit="image")
        if self.caches_features:
            self.feature_encoder()  # builds it (pretrained weights) and its traced call

            def consume(rows, batch):
                features.append(self._encode_pixels(tf.constant(batch)).numpy())
                bar.update(len(batch))
        elif self.data_config.cache:
            def consume(rows, batch):
                pixels.append(batch)
                bar.update(len(batch))
        with contextlib.closing(bar):
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

    def datasets(self, splits: captioning_data.CaptionSplits,
                 preprocessing: CaptioningPreprocessing) -> dict[str, tf.data.Dataset]:
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
        encode = functools.partial(self.encode_captions, preprocessing)
        lengths = {name: _caption_lengths(encode, row["caption_text"]) for name, row in rows.items()}
        boundaries = None
        if self.data_config.bucketing:
            boundaries = batching.bucket_boundaries(lengths["train"], self.data_config.num_buckets)
        return {name: batching.batch_examples(
                    self._example_dataset(self.stores[name], rows[name], encode, shuffle=name == "train"),
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

    def _example_dataset(self, store: _ImageStore, rows: dict, encode_captions, shuffle: bool) -> tf.data.Dataset:
        """(features, labels): the image (features, pixels or file), [START] + caption ids, caption ids + [END]."""
        dataset = tf.data.Dataset.from_tensor_slices(
            {key: tf.constant(value.tolist(), tf.string) if value.dtype == object else value
             for key, value in rows.items()})
        if shuffle:  # only indices and strings sit in the buffer, never images
            dataset = batching.shuffle_each_pass(dataset, buffer_size=max(len(rows["image_row"]), 1),
                                                 seed=self.config.runtime.seed)
        dataset = dataset.batch(1024).map(functools.partial(_vectorize, encode_captions)).unbatch()
        image_of = self._image_lookup(store)
        return dataset.map(lambda features, labels: (
            {**features, self.image_key: image_of(features.pop("image_row"))}, labels),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

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

    def build_model(self, preprocessing: CaptioningPreprocessing) -> image_captioner.ImageCaptioner:
        model = image_captioner.build_image_captioner(self.model_config,
                                                      vocabulary_size=len(preprocessing.target_vocabulary))
        weights = self.model_config.encoder.weights
        if weights is not None:
            if self._feature_encoder is not None:  # the very weights whose features are cached
                model.image_encoder.backbone.set_weights(self._feature_encoder.backbone.get_weights())
            else:
                model.image_encoder.load_pretrained(weights)
        return model

    def loss(self) -> keras.losses.Loss:
        return losses.MaskedSequenceLoss(label_smoothing=self.model_config.label_smoothing)

    def metrics(self) -> list:
        return [losses.MaskedTokenAccuracy(name="accuracy")]

    def cudnn_reasons(self) -> list[str]:
        if self.model_config.decoder == "show_attend_and_tell":
            return ["model.decoder: show_attend_and_tell steps a recurrent cell once per word (attention reads "
                    "each new state), which never uses cuDNN; show_and_tell's decoder layers do"]
        return []

    # === Decoding ===

    def numeric_inputs(self, preprocessing: CaptioningPreprocessing, image_bytes: tf.Tensor) -> tf.Tensor:
        """Encoded images string [batch] -> decoded, resized images uint8 [batch, size, size, 3]."""
        del preprocessing
        return images_lib.decode_batch(image_bytes, self.image_size)

    def decode(self, model, preprocessing: CaptioningPreprocessing, images: tf.Tensor, mode: str,
               temperature=1.0, seed=None) -> decoding.DecodeResult:
        """Decoded images uint8 [batch, size, size, 3] -> captions as a DecodeResult (encoder and decoding)."""
        return self.decode_state(model, model.encode(images), tf.shape(images)[0], mode,
                                 temperature=temperature, seed=seed)

    def decode_for_evaluation(self, model, preprocessing: CaptioningPreprocessing, images: tf.Tensor,
                              mode: str) -> decoding.DecodeResult:
        """Decodes the evaluation inputs: cached encoder features when the encoder is frozen, else images."""
        state = model.encode_features(images) if self.caches_features else model.encode(images)
        return self.decode_state(model, state, tf.shape(images)[0], mode)

    def decode_state(self, model, state, batch_size, mode: str, temperature=1.0, seed=None) -> decoding.DecodeResult:
        """Decodes from `model.encode*` state with `greedy`, `beam` or `sample` (pipeline.decoding)."""
        def step_function(token_ids, step_state, step):
            del step  # The decoder state carries the position.
            return model.decode_step(token_ids, step_state)

        return self.search(step_function, state, tf.fill([batch_size], sequence_text.START_ID), mode,
                           temperature=temperature, seed=seed)

    def outputs(self, preprocessing: CaptioningPreprocessing, image_bytes: tf.Tensor,
                result: decoding.DecodeResult) -> dict:
        """`caption` string [batch] and `score` float32 [batch]: the log-probability of the caption (end token
        included), length-normalized for beam search."""
        del image_bytes
        return {"caption": self.detokenize(preprocessing, result.token_ids), "score": result.scores}

    def caption_with_attention(self, model, preprocessing: CaptioningPreprocessing,
                               image_bytes: list[bytes]) -> list[dict]:
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
            tokens = [preprocessing.target_vocabulary[index] for index in ids[:length]]
            attention = None if maps[0] is None else np.stack(
                [maps[step][row].reshape(height, width) for step in range(length)])
            rows.append({"image": images[row].numpy(), "tokens": tokens, "attention": attention})
        return rows

    # === Error analysis and reports ===

    def read_labelled_file(self, path: str, splits: captioning_data.CaptionSplits) -> captioning_data.CaptionedImages:
        """A captions file (CSV or COCO JSON); image names relative to `data.image_directory`, else to its folder."""
        del splits
        return captioning_data.read_labelled_file(self.data_config, path)

    def predictions(self, model, preprocessing: CaptioningPreprocessing,
                    split: captioning_data.CaptionedImages) -> typing.Iterator[dict]:
        """Per image: its file (or position), its reference captions, the caption (decoded as evaluation
        decodes) and its score."""
        encoded = (_read_bytes(source) for source in split.images)
        rows = self.decoded_rows(model, preprocessing, encoded, self.config.train.batch_size, total=len(split.images))
        for index, (source, references, row) in enumerate(zip(split.images, split.captions, rows)):
            yield {"image": source if isinstance(source, str) else f"#{index}", "references": list(references),
                   "caption": row["caption"], "score": row["score"]}

    def figures(self, model, preprocessing: CaptioningPreprocessing, splits: captioning_data.CaptionSplits,
                metrics: dict, directory: str) -> list[str]:
        """A grid of validation images with their captions and, for the attention decoder, one row per image
        with the attention map of each word."""
        del metrics
        images = [_read_bytes(source) for source in splits.splits["validation"].images[:_FIGURE_IMAGES]]
        if not images:
            return []
        rows = self.caption_with_attention(model, preprocessing, images)
        os.makedirs(directory, exist_ok=True)
        written = [figures_lib.render_caption_grid([dict(row, attention=None) for row in rows],
                                                   os.path.join(directory, "captions.png"), cell_size=96)]
        if rows[0]["attention"] is not None:
            written.append(figures_lib.render_caption_grid(rows[:2], os.path.join(directory, "attention.png"),
                                                           cell_size=96, max_words=6))
        return written

    # === Evaluation ===

    def evaluate(self, model, dataset: tf.data.Dataset, preprocessing: CaptioningPreprocessing) -> dict:
        """Teacher-forced loss and token accuracy; BLEU-1..4, CIDEr-D and exact match of decoded captions
        against all references of each image; the same scores for the nearest-neighbour baseline.

        Decoding is the configured one (greedy when it is `sample`); with beam search the greedy scores
        are reported too, as `greedy_bleu_4` etc. The baseline captions each image with the consensus
        caption of the most similar training image by pooled encoder features.
        """
        pooled = tf.function(lambda images: tf.reduce_mean(model.image_features(images), axis=1),
                             reduce_retracing=True)
        gathered = {"references": [], "pooled": []}

        def first_captions(features):  # decode each image once
            first = tf.equal(features["caption_index"], 0)
            images = tf.boolean_mask(features[self.image_key], first)
            return images if int(tf.shape(images)[0]) else None

        def collect(features):
            images = first_captions(features)
            if images is None:
                return
            references = tf.boolean_mask(features["references"], tf.equal(features["caption_index"], 0))
            gathered["references"].extend(text.split(REFERENCE_SEPARATOR) for text in generation.strings(references))
            gathered["pooled"].append((tf.reduce_mean(images, axis=1) if self.caches_features
                                       else pooled(images)).numpy())

        totals, decoded = self.teacher_forced_pass(model, dataset, preprocessing,
                                                   (self.image_key, "decoder_token_ids"), first_captions, collect)
        mode = self.evaluation_modes()[0]
        references = gathered["references"]
        report = {"examples": len(references), "captions": totals["examples"], "loss": totals["loss"],
                  "accuracy": totals["accuracy"], "decoding": mode}
        report.update(metrics_lib.captioning_scores(decoded[mode], references))
        if mode != "greedy":
            report.update({f"greedy_{key}": value for key, value in
                           metrics_lib.captioning_scores(decoded["greedy"], references).items()})
        baseline = metrics_lib.nearest_neighbour_captions(np.concatenate(gathered["pooled"]),
                                                          *self._training_neighbours(model))
        report.update({f"nearest_neighbour_{key}": value for key, value in
                       metrics_lib.captioning_scores(baseline, references).items()})
        report["cider_ratio_to_nearest_neighbour"] = report["cider"] / max(report["nearest_neighbour_cider"], 1e-9)
        report["samples"] = [{"caption": caption, "nearest_neighbour": neighbour, "references": references}
                             for caption, neighbour, references in
                             list(zip(decoded[mode], baseline, references))[:_EVALUATION_SAMPLES]]
        return report

    def validation_scores(self, model, dataset: tf.data.Dataset,
                          preprocessing: CaptioningPreprocessing) -> base.ValidationScores:
        """CIDEr-D of greedy captions (each image once, against all its references), for `val_cider`."""
        decoder = self.traced_decoder(model, preprocessing, "greedy")
        captions, references = [], []
        for features, _ in dataset:
            first = tf.equal(features["caption_index"], 0)
            if not bool(tf.reduce_any(first)):
                continue
            captions.extend(generation.strings(decoder(tf.boolean_mask(features[self.image_key], first))))
            references.extend(text.split(REFERENCE_SEPARATOR) for text in
                              generation.strings(tf.boolean_mask(features["references"], first)))
        scores = metrics_lib.captioning_scores(captions, references)
        samples = [{"caption": caption, "references": " / ".join(items)}
                   for caption, items in list(zip(captions, references))[:_EVALUATION_SAMPLES]]
        return base.ValidationScores({"cider": scores["cider"]}, samples)

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

def _caption_lengths(encode_captions, texts: np.ndarray) -> np.ndarray:
    lengths = [encode_captions(tf.constant(texts[start:start + 1024].tolist(), tf.string)).row_lengths().numpy() + 1
               for start in range(0, len(texts), 1024)]
    return np.concatenate(lengths) if lengths else np.zeros([0], np.int64)


def _vectorize(encode_captions, rows: dict) -> tuple[dict, tf.RaggedTensor]:
    decoder_token_ids, labels = sequence_text.teacher_forcing(encode_captions(rows["caption_text"]))
    features = {"image_row": rows["image_row"], "caption_index": rows["caption_index"],
                "references": rows["references"], "decoder_token_ids": decoder_token_ids}
    return features, labels


def _read_bytes(source: images_lib.ImageSource) -> bytes:
    if isinstance(source, bytes):
        return source
    with open(source, "rb") as stream:
        return stream.read()

