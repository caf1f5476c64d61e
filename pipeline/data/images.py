"""Image decoding and resizing in core TensorFlow ops (shared by the input pipeline and the exported graph),
and one checked pass over a set of images that names every missing or undecodable file.
"""

import dataclasses
import logging
import os
import re
import typing

import numpy as np
import tensorflow as tf

from pipeline.data import files

logger = logging.getLogger(__name__)

ImageSource = typing.Union[str, bytes]  # a file path, or the encoded bytes themselves
_CHECK_BATCH_SIZE = 32


def decode_and_resize(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded JPEG/PNG (or GIF/BMP) bytes -> uint8 [image_size, image_size, 3].

    Grayscale and RGBA images become RGB; the image is squashed to a square with antialiased bilinear
    resizing, then rounded back to uint8 so that cached pixels, training and serving see the same values.
    """
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)  # (height, width, 3)
    image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def decode_batch(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded images string [batch] (each its own size and format) -> uint8 [batch, size, size, 3]."""
    return tf.map_fn(lambda item: decode_and_resize(item, image_size), image_bytes,
                     fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.uint8))


def load_image(source: tf.Tensor, image_size: int, from_path: bool) -> tf.Tensor:
    """A path (read from disk) or encoded bytes -> uint8 [image_size, image_size, 3]."""
    return decode_and_resize(tf.io.read_file(source) if from_path else source, image_size)


def describe(source: ImageSource, index: int) -> str:
    """How an image is named in messages: its path, or its position for in-memory images."""
    return source if isinstance(source, str) else f"image #{index} (in-memory bytes)"


@dataclasses.dataclass(frozen=True)
class CheckedImages:
    """The outcome of `read_images`.

    Attributes:
        kept: Indices (into the given sources) of the images that decoded.
        skipped: `(name, reason)` of each image dropped under `on_bad_images="skip"`.
    """

    kept: list[int]
    skipped: list[tuple[str, str]]


def read_images(sources: list[ImageSource], image_size: int, *, on_bad_images: str = "error",
                consume: typing.Optional[typing.Callable[[list[int], np.ndarray], None]] = None,
                batch_size: int = _CHECK_BATCH_SIZE) -> CheckedImages:
    """Decodes and resizes every image once, in order, in a parallel tf.data pipeline.

    Args:
        sources: Image file paths, or encoded image bytes.
        image_size: Square size the images are resized to.
        on_bad_images: `error` raises on the first missing or undecodable image; `skip` drops it and
            carries on (each skip is logged and counted).
        consume: Called with (indices, uint8 [n, size, size, 3]) for each batch of good images, e.g. to
            compute encoder features or keep the pixels; None only checks the images.
        batch_size: Images per `consume` call.

    Raises:
        files.DataError: A missing or undecodable image under `on_bad_images="error"`; the message
            names the file.
    """
    from_path = bool(sources) and isinstance(sources[0], str)
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(sources, dtype=tf.string) if sources
                                                 else tf.zeros([0], tf.string))
    dataset = dataset.map(lambda source: load_image(source, image_size, from_path),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)
    iterator = iter(dataset)
    kept, skipped, pending, pixels = [], [], [], []
    for index, source in enumerate(sources):
        problem = _missing(source)
        try:
            image = next(iterator)  # advance even for a missing file, to stay aligned with `sources`
        except tf.errors.OpError as error:
            problem = problem or f"not a decodable image ({_first_line(error)})"
        if problem:
            name = describe(source, index)
            if on_bad_images != "skip":
                raise files.DataError(f"{name}: {problem} (set data.on_bad_images: skip to skip such images)")
            logger.warning("%s: %s; skipped (data.on_bad_images: skip)", name, problem)
            skipped.append((name, problem))
            continue
        kept.append(index)
        if consume is not None:
            pending.append(index)
            pixels.append(image.numpy())
            if len(pending) == batch_size:
                consume(pending, np.stack(pixels))
                pending, pixels = [], []
        if (index + 1) % 1000 == 0:
            logger.info("read %d of %d images", index + 1, len(sources))
    if consume is not None and pending:
        consume(pending, np.stack(pixels))
    return CheckedImages(kept=kept, skipped=skipped)


def _missing(source: ImageSource) -> typing.Optional[str]:
    if isinstance(source, str) and not tf.io.gfile.exists(source):
        return "image file not found"
    return None


def _first_line(error: Exception) -> str:
    """TensorFlow's message without its graph-node and op decorations."""
    message = re.sub(r"\{\{[^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]", "", getattr(error, "message", str(error)))
    message = re.sub(r"Error in user-defined function .*?Iterator::\S+:\s*", "", message)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:200]


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 [height, width, 3] -> PNG bytes."""
    return tf.io.encode_png(pixels).numpy()


def image_name_in(directory: str, name: str) -> str:
    """The path of an image named in a captions file, relative to the image folder unless absolute."""
    return name if os.path.isabs(name) else os.path.join(directory, name)
