"""Images with reference captions: captions CSV (RFC 4180) or COCO JSON + an image folder, TFDS, or synthetic.

Readers return image sources (file paths, or encoded bytes for TFDS and synthetic images) and the raw
caption strings of each image; `pipeline.data.images` decodes the images and the captioning task
vectorizes the captions. Every malformed record is reported as `path:line: reason`.
"""

import csv
import dataclasses
import json
import logging
import os
import typing

import numpy as np

from pipeline import config as config_lib
from pipeline.data import files
from pipeline.data import images as images_lib
from pipeline.data import sources as sources_lib
from pipeline.data import splits as splits_lib
from pipeline.data import synthetic_captions
from pipeline.data import tfds_source

logger = logging.getLogger(__name__)

# TFDS split names per split of ours (coco_captions calls its validation split `val`).
_TFDS_SPLIT_NAMES = {"train": ("train",), "validation": ("val", "validation"), "test": ("test",)}


@dataclasses.dataclass(frozen=True)
class CaptionedImages:
    """One split: images and their reference captions.

    Attributes:
        images: File paths, or encoded image bytes (TFDS, synthetic).
        captions: The reference captions of each image (at least one each).
        origin: Where they came from, for messages.
        skipped_rows: Malformed caption records skipped while reading (`data.on_bad_rows: skip`).
        skipped_images: `(name, reason)` of images dropped as missing or undecodable
            (`data.on_bad_images: skip`); filled in when the images are read.
    """

    images: list[images_lib.ImageSource]
    captions: list[list[str]]
    origin: str
    skipped_rows: int = 0
    skipped_images: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.images)


@dataclasses.dataclass(frozen=True)
class CaptionSplits(splits_lib.SplitSet):
    """Train, validation and (optionally) test images with captions."""

    @property
    def skipped_rows(self) -> dict[str, dict[str, int]]:
        """Per split: malformed caption rows and bad images skipped (explicit skip policies), for metrics.json."""
        return {name: {"rows": split.skipped_rows, "images": len(split.skipped_images)}
                for name, split in self.splits.items()}


# === Readers ===


def _resolve_format(path: str, file_format: str) -> str:
    if file_format != "auto":
        return file_format
    name = path[:-3] if path.endswith(".gz") else path
    return "coco_json" if name.endswith(".json") else "csv"


def _column_index(path: str, header: typing.Optional[list[str]], column: typing.Union[str, int],
                  key: str) -> int:
    if isinstance(column, int):
        return column
    if header is None:
        raise files.DataError(f"{path}: data.{key} is the name {column!r} but data.header is false; "
                              "give a 0-based column index")
    if column not in header:
        raise files.DataError(files.located(path, 1, f"no column {column!r} (data.{key}); the header has {header}"))
    return header.index(column)


def read_captions_csv(path: str, *, image_column: typing.Union[str, int] = "image",
                      caption_column: typing.Union[str, int] = "caption", header: bool = True,
                      on_bad_rows: str = "error") -> tuple[dict[str, list[str]], int]:
    """Reads `image,caption` rows (RFC 4180: quoted fields may hold commas, quotes and line breaks).

    Returns:
        (image name -> its captions in file order, number of malformed rows skipped).

    Raises:
        files.DataError: `path:line: reason` for a malformed row (`on_bad_rows="error"`), a missing
            column, or a missing file.
    """
    captions: dict[str, list[str]] = {}
    skipped = 0
    with files.open_text(path) as stream:
        reader = csv.reader(stream, strict=True)
        line, header_row, indices = 1, None, None
        while True:
            start = line
            try:
                row = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as error:
                problem, row = f"malformed CSV ({error})", None
            line = reader.line_num + 1
            if row is not None and not any(field.strip() for field in row):
                continue
            if indices is None and row is not None:
                header_row = row if header else None
                indices = (_column_index(path, header_row, image_column, "image_column"),
                           _column_index(path, header_row, caption_column, "caption_column"))
                if header:
                    continue
            if row is not None:
                problem = _row_problem(row, indices)
                if problem is None:
                    captions.setdefault(row[indices[0]].strip(), []).append(row[indices[1]].strip())
                    continue
            if on_bad_rows != "skip":
                raise files.DataError(files.located(path, start, problem))
            skipped += 1
            if row is None:
                break  # the reader cannot resynchronize after a quoting error
    if skipped:
        logger.warning("%s: skipped %d malformed rows (data.on_bad_rows: skip)", path, skipped)
    return captions, skipped


def _row_problem(row: list[str], indices: typing.Optional[tuple[int, int]]) -> typing.Optional[str]:
    needed = max(indices) + 1 if indices else 2
    if len(row) < needed:
        return f"expected at least {needed} fields, found {len(row)}"
    if not row[indices[0]].strip():
        return "empty image name"
    if not row[indices[1]].strip():
        return "empty caption"
    return None


def read_coco_json(path: str) -> dict[str, list[str]]:
    """Reads COCO captions JSON: `images` (`id`, `file_name`) and `annotations` (`image_id`, `caption`).

    Raises:
        files.DataError: Invalid JSON (with its line), a missing key, or an annotation of an unknown image.
    """
    with files.open_text(path) as stream:
        try:
            tree = json.load(stream)
        except json.JSONDecodeError as error:
            raise files.DataError(files.located(path, error.lineno, f"invalid JSON: {error.msg}")) from None
    if not isinstance(tree, dict) or not isinstance(tree.get("images"), list) \
            or not isinstance(tree.get("annotations"), list):
        raise files.DataError(f"{path}: expected COCO captions JSON with 'images' and 'annotations' lists")
    try:
        names = {image["id"]: str(image["file_name"]) for image in tree["images"]}
        captions: dict[str, list[str]] = {}
        for number, annotation in enumerate(tree["annotations"]):
            if annotation["image_id"] not in names:
                raise files.DataError(f"{path}: annotations[{number}] refers to unknown image_id "
                                      f"{annotation['image_id']!r}")
            text = str(annotation["caption"]).strip()
            if text:
                captions.setdefault(names[annotation["image_id"]], []).append(text)
    except (KeyError, TypeError) as error:
        raise files.DataError(f"{path}: an image or annotation lacks the key {error}") from None
    return captions


def read_split_list(path: str) -> list[str]:
    """Image names, one per line (the first whitespace-separated field; blank lines ignored)."""
    return [line.text.split()[0] for line in files.read_lines(path) if line.text.strip()]


def _read_captions(path: str, data_config) -> tuple[dict[str, list[str]], int]:
    if _resolve_format(path, data_config.file_format) == "coco_json":
        return read_coco_json(path), 0
    return read_captions_csv(path, image_column=data_config.image_column, caption_column=data_config.caption_column,
                             header=data_config.header, on_bad_rows=data_config.on_bad_rows)


# === Splits ===


def load_splits(data_config: config_lib.CaptioningDataConfig, seed: int) -> CaptionSplits:
    """Reads every split and carves a seeded validation split from train when none is given.

    Raises:
        files.DataError: Malformed captions, or a split without images.
    """
    splits = sources_lib.load_splits(data_config, seed, read_files=_file_splits, read_tfds=_tfds_splits,
                                     generate=_generate)
    splits_lib.require_training_examples(splits, data_config.source, "captioned images")
    splits = splits_lib.with_validation(splits, data_config.validation_fraction, seed, _take)
    for split_name, split in splits.items():
        logger.info("%s: %d images, %d captions from %s", split_name, len(split),
                    sum(len(captions) for captions in split.captions), split.origin)
    return CaptionSplits(splits=splits)


def _file_splits(data_config) -> dict[str, CaptionedImages]:
    directory = data_config.image_directory
    result = {}
    if data_config.captions is not None:
        captions, skipped = _read_captions(data_config.captions, data_config)
        for split_name, path in sources_lib.split_paths(data_config).items():
            listed = read_split_list(path)
            names = [name for name in dict.fromkeys(listed) if name in captions]
            if len(names) < len(listed):
                logger.info("%s: %d of %d listed images have no captions in %s; left out", path,
                            len(listed) - len(names), len(listed), data_config.captions)
            result[split_name] = CaptionedImages(
                images=[images_lib.image_name_in(directory, name) for name in names],
                captions=[captions[name] for name in names], origin=f"{data_config.captions} ({path})",
                skipped_rows=skipped if split_name == "train" else 0)
        return result
    for split_name, path in sources_lib.split_paths(data_config).items():
        captions, skipped = _read_captions(path, data_config)
        result[split_name] = CaptionedImages(
            images=[images_lib.image_name_in(directory, name) for name in captions],
            captions=list(captions.values()), origin=path, skipped_rows=skipped)
    return result


def _generate(count: int, seed: int, origin: str) -> CaptionedImages:
    encoded, captions = synthetic_captions.captioning_examples(count, seed=seed)
    return CaptionedImages(images=encoded, captions=captions, origin=origin)


def _tfds_splits(name: str, data_config) -> dict[str, CaptionedImages]:
    """TFDS captioning sets with `image` and `captions/text` features (`coco_captions`).

    Images are kept encoded (TFDS `SkipDecoding`), so memory holds the JPEG bytes: about 13 GB for the
    whole COCO 2014 training split.
    """
    import tensorflow_datasets as tfds  # Imported lazily: slow, and only needed for TFDS sources.

    builder = tfds_source.prepared_builder(name, data_config.tfds_data_dir)
    features = list(builder.info.features)
    for feature in ("image", "captions"):
        if feature not in features:
            raise files.DataError(f"tfds:{name}: no feature {feature!r}; its features are {features}")
    wanted = {tfds_name: ours for ours, names in _TFDS_SPLIT_NAMES.items() for tfds_name in names}
    result = {}
    for tfds_name, examples in tfds_source.split_examples(builder, list(wanted),
                                                          decoders={"image": tfds.decode.SkipDecoding()}):
        if wanted[tfds_name] in result:
            continue
        encoded, captions = [], []
        for example in examples:
            texts = [text.decode("utf-8").strip() for text in np.asarray(example["captions"]["text"]).ravel()]
            texts = [text for text in texts if text]
            if texts:
                image = example["image"]
                encoded.append(image if isinstance(image, bytes) else images_lib.encode_png(np.asarray(image)))
                captions.append(texts)
        result[wanted[tfds_name]] = CaptionedImages(images=encoded, captions=captions, origin=f"tfds:{name}/{tfds_name}")
    return result


def _take(split: CaptionedImages, rows: np.ndarray, origin: str, skipped: int) -> CaptionedImages:
    return CaptionedImages(images=[split.images[row] for row in rows], captions=[split.captions[row] for row in rows],
                           origin=origin, skipped_rows=skipped)


def keep_images(split: CaptionedImages, kept: list[int], skipped: list[tuple[str, str]]) -> CaptionedImages:
    """The split without the images that failed to decode, with those recorded in `skipped_images`."""
    if len(kept) == len(split.images):
        return split
    return dataclasses.replace(split, images=[split.images[row] for row in kept],
                               captions=[split.captions[row] for row in kept], skipped_images=tuple(skipped))


def read_labelled_file(data_config: config_lib.CaptioningDataConfig, path: str) -> CaptionedImages:
    """Images and their captions from one captions file (CSV or COCO JSON, as `data.file_format` reads them).

    Image names are relative to `data.image_directory` when the run has one, else to the captions file's
    folder.
    """
    captions, skipped = _read_captions(path, data_config)
    directory = data_config.image_directory or os.path.dirname(path)
    return CaptionedImages(images=[images_lib.image_name_in(directory, name) for name in captions],
                           captions=list(captions.values()), origin=path, skipped_rows=skipped)
