"""Config blocks of the captioning task: images with captions, a CNN encoder and a recurrent decoder."""

import dataclasses
from typing import Literal, Optional, Union

from pipeline.config import bounds, common, errors, translation


@dataclasses.dataclass(frozen=True)
class CaptioningDataConfig(common.DataConfig):
    """Images with reference captions (captions CSV or COCO JSON + image folder, TFDS or synthetic).

    Files come in two layouts: one captions file for every image (`captions`) with `train`,
    `validation` and `test` as split lists (one image name per line, the Flickr8k layout), or
    `train`, `validation` and `test` as captions files of their own (the COCO layout).

    Attributes:
        file_format: `csv` (`image,caption` rows with RFC 4180 quoting, the Flickr8k/Kaggle layout) or
            `coco_json` (`{"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}`);
            `auto` picks by extension (`.json` -> `coco_json`).
        captions: One captions file for all splits; null when `train` etc. are captions files.
        image_directory: Folder that image names in the captions files are relative to.
        header: CSV captions files start with a header row naming the columns.
        image_column: CSV column (name or 0-based index) of the image file name.
        caption_column: CSV column (name or 0-based index) of the caption.
        on_bad_images: `error` stops at the first missing or undecodable image, naming its path;
            `skip` drops such images (and their captions) and counts them (log and metrics.json).
        cache_features: With a frozen encoder, compute each image's features once and keep them in
            memory, so training epochs never rerun the CNN.
        vocabulary_size: Largest caption vocabulary, including padding, out-of-vocabulary, start and end.
        max_caption_length: Tokens kept per caption (before the start/end token is added).
        lowercase: Lower-case captions.
        strip_punctuation: Remove punctuation from captions (the COCO evaluation ignores it too).
    """

    file_format: Literal["auto", "csv", "coco_json"] = "auto"
    captions: Optional[str] = None
    image_directory: Optional[str] = None
    header: bool = True
    image_column: Union[str, int] = "image"
    caption_column: Union[str, int] = "caption"
    on_bad_images: Literal["error", "skip"] = "error"
    cache_features: bool = True
    vocabulary_size: int = bounds.bounded(5000, minimum=5)
    max_caption_length: int = bounds.bounded(30, minimum=1)
    lowercase: bool = True
    strip_punctuation: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.source == "files" and self.image_directory is None:
            raise errors.ConfigError("data.image_directory: required when data.source is 'files' (the folder "
                                     "the image names in the captions are relative to)")
        if self.source != "files" and self.captions is not None:
            raise errors.ConfigError(f"data.captions: only for data.source 'files' (got source {self.source!r})")

    def input_paths(self) -> dict[str, list[str]]:
        """The split files, the captions file and the image folder."""
        paths = super().input_paths()
        for key in ("captions", "image_directory"):
            if self.source == "files" and getattr(self, key) is not None:
                paths[f"data.{key}"] = [getattr(self, key)]
        return paths


@dataclasses.dataclass(frozen=True)
class ImageEncoderConfig:
    """The CNN that turns an image into a grid of feature vectors.

    Attributes:
        name: `small_cnn` (trained from scratch), `squeezenet` (SqueezeNet v1.1) or a
            `keras.applications` backbone: `mobilenet_v2`, `mobilenet_v3_small`, `mobilenet_v3_large`,
            `efficientnet_b0`, `resnet50`.
        weights: Pretrained weights: null (random initialization), `imagenet` (downloaded on first use:
            needs internet) or the path of a local weights file (`.h5` or `.weights.h5`).
        trainable: Fine-tune the encoder with the decoder; false freezes it (its features are then
            computed once per image and cached when `data.cache_features` is true).
        image_size: Images are resized to this square size; null uses the backbone's own (227 for
            SqueezeNet, 224 for the others, 64 for `small_cnn`).
        filters: Convolution filters per block of `small_cnn` (each block halves the resolution).
    """

    name: Literal["small_cnn", "squeezenet", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                  "efficientnet_b0", "resnet50"] = "small_cnn"
    weights: Optional[str] = None
    trainable: bool = True
    image_size: Optional[int] = bounds.bounded(None, minimum=32)
    filters: tuple[int, ...] = (32, 64, 128)

    def __post_init__(self):
        bounds.check(self, "model.encoder")
        if not self.filters or min(self.filters) < 1:
            raise errors.ConfigError(f"model.encoder.filters: must be a non-empty list of positive sizes "
                                     f"(got {list(self.filters)})")
        if self.weights is not None and not self.weights.strip():
            raise errors.ConfigError("model.encoder.weights: must be null, 'imagenet' or a weights file path "
                                     "(got an empty string)")
        if not self.trainable and self.weights is None:
            raise errors.ConfigError(f"model.encoder.trainable: a frozen encoder needs pretrained weights; set "
                                     f"model.encoder.weights ('imagenet' or a weights file) or "
                                     f"model.encoder.trainable: true (encoder {self.name!r})")


@dataclasses.dataclass(frozen=True)
class CaptionerModelConfig(translation.Seq2SeqModelConfig):
    """Image captioner: CNN encoder -> recurrent decoder (Show-and-Tell or Show-Attend-and-Tell).

    `cell`, `units`, `layers`, `embedding_dim` and `dropout` apply to the decoder; the decoding keys
    (`decoding`, `beam_size`, `length_penalty`, `temperature`, `max_decode_length`) and
    `label_smoothing` work as for translation.

    Attributes:
        encoder: The image encoder block.
        decoder: `show_and_tell`: the pooled image feature initializes the recurrent state (Vinyals et
            al. 2015); `show_attend_and_tell`: the initial state comes from the mean feature and every
            step attends over the spatial feature grid (Xu et al. 2015).
        attention: Scores of `show_attend_and_tell`: `bahdanau` (additive) or `luong` (multiplicative).
        beam_size: Hypotheses kept per image by beam search.
    """

    encoder: ImageEncoderConfig = ImageEncoderConfig()
    decoder: Literal["show_and_tell", "show_attend_and_tell"] = "show_attend_and_tell"
    beam_size: int = bounds.bounded(3, minimum=1)

    def __post_init__(self):
        super().__post_init__()
        if self.bidirectional:
            raise errors.ConfigError("model.bidirectional: the caption decoder generates left to right; it "
                                     "cannot be bidirectional")
        if self.decoder == "show_attend_and_tell" and self.attention == "none":
            raise errors.ConfigError("model.attention: show_attend_and_tell needs 'bahdanau' or 'luong' (for no "
                                     "attention use model.decoder: show_and_tell)")

    def input_paths(self) -> dict[str, list[str]]:
        """A local pretrained weights file (`imagenet` weights are downloaded)."""
        if self.encoder.weights in (None, "imagenet"):
            return {}
        return {"model.encoder.weights": [self.encoder.weights]}

    def check_with_data(self, data: common.DataConfig) -> None:
        super().check_with_data(data)
        if isinstance(data, CaptioningDataConfig):
            self._check_decode_length("max_caption_length", data.max_caption_length, "captions")


SCHEMA = common.TaskSchema(data=CaptioningDataConfig, model=CaptionerModelConfig,
                           monitor_choices=("val_loss", "val_accuracy", "val_cider"),
                           scored_monitors=("val_cider",))
