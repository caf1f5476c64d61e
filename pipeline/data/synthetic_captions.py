"""`synthetic:captioning`: small images of coloured shapes drawn with Pillow, with captions that describe them.

An image holds one shape ("a red circle at the top") or two shapes side by side, described both ways
("a red circle left of a blue square", "a blue square right of a red circle"). Colour, kind, size,
position and background jitter at random, so a model must look at the image: no caption is right
for more than a small share of the images.
"""

import io

import numpy as np
from PIL import Image
from PIL import ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("left", "right", "top", "bottom")
IMAGE_SIZE = 64


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, colour: str, centre: tuple[float, float],
                radius: float) -> None:
    x, y = centre
    box = [x - radius, y - radius, x + radius, y + radius]
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], fill=fill)


def _canvas(generator: np.random.Generator) -> Image.Image:
    shade = int(generator.integers(200, 256))
    noise = generator.integers(-12, 13, size=(IMAGE_SIZE, IMAGE_SIZE, 1))
    pixels = np.clip(shade + noise, 0, 255).repeat(3, axis=2).astype(np.uint8)
    return Image.fromarray(pixels)


def _one_shape(generator: np.random.Generator) -> tuple[Image.Image, list[str]]:
    colour, shape = str(generator.choice(list(COLOURS))), str(generator.choice(SHAPES))
    position = str(generator.choice(POSITIONS))
    radius = generator.uniform(10, 14)
    near, far, middle = generator.uniform(15, 20), generator.uniform(44, 49), generator.uniform(26, 38)
    centre = {"left": (near, middle), "right": (far, middle), "top": (middle, near), "bottom": (middle, far)}[position]
    image = _canvas(generator)
    _draw_shape(ImageDraw.Draw(image), shape, colour, centre, radius)
    where = f"on the {position}" if position in ("left", "right") else f"at the {position}"
    return image, [f"a {colour} {shape} {where}"]


def _two_shapes(generator: np.random.Generator) -> tuple[Image.Image, list[str]]:
    while True:
        kinds = [(str(generator.choice(list(COLOURS))), str(generator.choice(SHAPES))) for _ in range(2)]
        if kinds[0] != kinds[1]:
            break
    image = _canvas(generator)
    draw = ImageDraw.Draw(image)
    for (colour, shape), x in zip(kinds, (generator.uniform(15, 20), generator.uniform(44, 49))):
        _draw_shape(draw, shape, colour, (x, generator.uniform(20, 44)), generator.uniform(9, 12))
    (left_colour, left_shape), (right_colour, right_shape) = kinds
    return image, [f"a {left_colour} {left_shape} left of a {right_colour} {right_shape}",
                   f"a {right_colour} {right_shape} right of a {left_colour} {left_shape}"]


def captioning_examples(num_examples: int, seed: int) -> tuple[list[bytes], list[list[str]]]:
    """PNG-encoded images (64x64 RGB) and their reference captions (one or two per image).

    The same seed always gives the same images and captions.
    """
    generator = np.random.default_rng(seed)
    images, captions = [], []
    for _ in range(num_examples):
        image, references = (_one_shape if generator.random() < 0.5 else _two_shapes)(generator)
        stream = io.BytesIO()
        image.save(stream, format="PNG")
        images.append(stream.getvalue())
        captions.append(references)
    return images, captions
