"""Figures drawn with Pillow: a grid of images with their generated captions, and attention maps per word.

Takes plain arrays (as `CaptioningTask.caption_with_attention` returns them), so it knows no model.
"""

import textwrap
import typing

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

_TEXT_HEIGHT = 58  # four lines of caption
_BACKGROUND = (255, 255, 255)
_TEXT_COLOUR = (20, 20, 20)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _overlay(image: Image.Image, weights: np.ndarray) -> Image.Image:
    """The image darkened where the attention weights are low (weights: [grid_height, grid_width])."""
    peak = float(weights.max()) or 1.0
    mask = Image.fromarray(np.uint8(255 * np.clip(weights / peak, 0.0, 1.0)), mode="L")
    mask = mask.resize(image.size, Image.Resampling.BILINEAR)
    dark = Image.new("RGB", image.size, (0, 0, 0))
    return Image.composite(image, Image.blend(image, dark, 0.75), mask)


def render_caption_grid(rows: typing.Sequence[dict], path: str, cell_size: int = 160, columns: int = 4,
                        max_words: int = 8) -> str:
    """Writes a PNG: each image with its caption; with attention, one row per image with a map per word.

    Args:
        rows: Dicts with `image` (uint8 [height, width, 3]), `tokens` (the caption's words; a trailing
            "[END]" is not shown) and optionally `attention` ([len(tokens), grid_height, grid_width]).
        path: Where to write the PNG.
        cell_size: Size of each image panel in pixels.
        columns: Images per row when there are no attention maps.
        max_words: Attention maps drawn per caption (the first words).

    Returns:
        `path`.
    """
    with_attention = any(row.get("attention") is not None for row in rows)
    panels_per_row = 1 + max_words if with_attention else columns
    grid_rows = len(rows) if with_attention else -(-len(rows) // columns)
    height = cell_size + _TEXT_HEIGHT
    canvas = Image.new("RGB", (panels_per_row * cell_size, max(grid_rows, 1) * height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font, small_font = _font(13), _font(12)
    for index, row in enumerate(rows):
        image = Image.fromarray(np.asarray(row["image"], np.uint8)).resize((cell_size, cell_size))
        words = [token for token in row["tokens"] if token != "[END]"]
        top, left = (index * height, 0) if with_attention else (
            (index // columns) * height, (index % columns) * cell_size)
        canvas.paste(image, (left, top))
        caption = textwrap.fill(" ".join(words), width=max(cell_size // 6, 10))
        draw.multiline_text((left + 4, top + cell_size + 2), caption, fill=_TEXT_COLOUR, font=small_font, spacing=1)
        attention = row.get("attention")
        if attention is None:
            continue
        for position, word in enumerate(words[:max_words]):
            panel_left = (position + 1) * cell_size
            canvas.paste(_overlay(image, np.asarray(attention[position])), (panel_left, top))
            draw.text((panel_left + 4, top + cell_size + 2), word, fill=_TEXT_COLOUR, font=font)
    canvas.save(path, format="PNG")
    return path
