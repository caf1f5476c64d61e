"""Images with reference captions: captions CSV (RFC 4180) or COCO JSON + an image folder, TFDS, or synthetic.

Readers return image sources (file paths, or encoded bytes for TFDS and synthetic images) and the raw
caption strings of each image; `pipeline.data.images` decodes the images and the captioning task
vectorizes the captions. Every malformed record is reported as `path:line: reason`.
"""

import dataclasses
import json
import logging
import os
import typing

import numpy as np

from pipeline import config as config_lib
from pipeline.data import files
from pipeline.data import text_files
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
        raise files.DataError(text_files.located(path, 1, f"no column {column!r} (data.{key}); the header has {header}"))
    return header.index(column)


def read_captions_csv(path: str, *, image_column: typing.Union[str, int] = "image",
                      caption_column: typing.Union[str, int] = "caption", header: bool = True,
                      on_bad_rows: str = "error") -> tuple[dict[str, list[str]], int]:
    """Reads `image,caption` rows (RFC 4180: quoted fields may hold commas, quotes and line breaks).

    A row with more fields than the header (without a header: than the first row) holds an unquoted
    comma that would cut its caption short; like a row with an empty image name or caption, it is
    malformed.

    Returns:
        (image name -> its captions in file order, number of malformed rows skipped).

    Raises:
        files.DataError: `path:line: reason` for a malformed row (`on_bad_rows="error"`), a missing
            column, or a missing file.
    """
    captions: dict[str, list[str]] = {}
    skipped = 0
    reference, indices = None, None
    for row in text_files.delimited_rows(text_files.read_lines(path), "csv"):
        if row.problem is None and not any(field.strip() for field in row.fields):
            continue
        if reference is None and header and row.problem is not None:
            raise files.DataError(text_files.located(path, row.line, f"cannot read the header: {row.problem}"))
        if reference is None and row.problem is None:
            reference = row
            indices = (_column_index(path, row.fields if header else None, image_column, "image_column"),
                       _column_index(path, row.fields if header else None, caption_column, "caption_column"))
            if header:
                continue
        problem = row.problem or _row_problem(row, reference, indices, header)
        if problem is None:
            captions.setdefault(row.fields[indices[0]].strip(), []).append(row.fields[indices[1]].strip())
            continue
        if on_bad_rows != "skip":
            raise files.DataError(text_files.located(path, row.line, problem))
        skipped += 1
    files.log_skipped(path, skipped, "rows")
    return captions, skipped


def _row_problem(row: text_files.DelimitedRow, reference: text_files.DelimitedRow, indices: tuple[int, int],
                 header: bool) -> typing.Optional[str]:
    needed = max(indices) + 1
    if len(row.fields) < needed:
        return f"expected at least {needed} fields, found {len(row.fields)}"
    width = text_files.width_problem(row, reference, "csv", reference_is_header=header)
    if width is not None:
        return width
    if not row.fields[indices[0]].strip():
        return "empty image name"
    if not row.fields[indices[1]].strip():
        return "empty caption"
    return None


def read_coco_json(path: str, *, on_bad_rows: str = "error") -> tuple[dict[str, list[str]], int]:
    """Reads COCO captions JSON: `images` (`id`, `file_name`) and `annotations` (`image_id`, `caption`).

    An annotation whose caption is empty or not a string is malformed: the first stops reading
    (`on_bad_rows="error"`) or each is skipped and counted ("skip").

    Returns:
        (image name -> its captions in file order, number of malformed annotations skipped).

    Raises:
        files.DataError: Invalid JSON (with its line), a missing key, an image id given twice, an
            annotation of an unknown image, or a malformed annotation under `on_bad_rows="error"`.
    """
    with text_files.open_text(path) as stream:
        try:
            tree = json.load(stream)
        except json.JSONDecodeError as error:
            raise files.DataError(text_files.located(path, error.lineno, f"invalid JSON: {error.msg}")) from None
    if not isinstance(tree, dict) or not isinstance(tree.get("images"), list) \
            or not isinstance(tree.get("annotations"), list):
        raise files.DataError(f"{path}: expected COCO captions JSON with 'images' and 'annotations' lists")
    try:
        names = _coco_image_names(path, tree["images"])
        captions: dict[str, list[str]] = {}
        skipped = 0
        for number, annotation in enumerate(tree["annotations"]):
            if annotation["image_id"] not in names:
                raise files.DataError(f"{path}: annotations[{number}] refers to unknown image_id "
                                      f"{annotation['image_id']!r}")
            text = annotation["caption"]
            if isinstance(text, str) and text.strip():
                captions.setdefault(names[annotation["image_id"]], []).append(text.strip())
                continue
            if on_bad_rows != "skip":
                found = "an empty string" if isinstance(text, str) else type(text).__name__
                raise files.DataError(f"{path}: annotations[{number}]: the caption is {found}, expected text")
            skipped += 1
    except (KeyError, TypeError) as error:
        raise files.DataError(f"{path}: an image or annotation lacks the key {error}") from None
    files.log_skipped(path, skipped, "annotations")
    return captions, skipped


def _coco_image_names(path: str, images: list) -> dict:
    """COCO `images` -> {id: file name}; an id given twice would merge two images' captions."""
    names = {}
    for number, image in enumerate(images):
        if image["id"] in names:
            raise files.DataError(f"{path}: images[{number}] repeats the id {image['id']!r} of "
                                  f"{names[image['id']]!r}")
        names[image["id"]] = str(image["file_name"])
    return names


def read_split_list(path: str) -> list[str]:
    """Image names, one per line (the first whitespace-separated field; blank lines ignored)."""
    return [line.text.split()[0] for line in text_files.read_lines(path) if line.text.strip()]


def _read_captions(path: str, data_config) -> tuple[dict[str, list[str]], int]:
    if _resolve_format(path, data_config.file_format) == "coco_json":
        return read_coco_json(path, on_bad_rows=data_config.on_bad_rows)
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
                logger.warning("%s: %d of %d listed images have no captions in %s; left out", path,
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
