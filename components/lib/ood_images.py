"""A built-in set of images that are not chest X-rays, for the out-of-distribution gate.

Deterministic (one numpy Generator per image, seeded from seed, family and index): the same
call gives the same pixels. 8-bit grayscale, square, any size. Families:

- flat: black, white and gray fields (a blank upload, a lens cap, an over-exposed plate)
- noise: uniform, Gaussian, salt-and-pepper, blocky low-resolution noise (a broken sensor)
- gradient: linear at several angles, radial (vignettes, an empty light box)
- shapes: circles, rectangles and lines on a flat background (diagrams, logos)
- text: rows of glyph-like strokes on paper, tables, stripes, checkerboards (documents,
  screenshots)
- texture: 1/f "cloud" noise and blurred blobs (natural-image-like photographs)
- not_upright: chest phantoms turned 90°, 180° and 270°, and inverted (a negative)

Numpy and Pillow only, like the phantoms (components/lib/demo_data.py).
"""

from __future__ import annotations

import os
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from components.lib import demo_data
from edge import spec

PER_FAMILY = 12
FAMILIES = ("flat", "noise", "gradient", "shapes", "text", "texture", "not_upright")


def generate(size: int = spec.DEMO_IMAGE_SIZE, per_family: int = PER_FAMILY,
             seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """[(family, name, uint8 [size, size])] for every family, `per_family` images each."""
    images = []
    for family in FAMILIES:
        for index in range(per_family):
            rng = np.random.default_rng(
                [seed, zlib.crc32(family.encode()), index])
            pixels = _DRAW[family](rng, index, size, seed)
            images.append((family, f"{family}-{index:02d}", np.clip(pixels, 0, 255)
                           .astype(np.uint8)))
    return images


def write(out_dir: str, size: int = spec.DEMO_IMAGE_SIZE, per_family: int = PER_FAMILY,
          seed: int = 0) -> list[str]:
    """Writes the set as PNGs under out_dir/<family>/; returns the paths."""
    paths = []
    for family, name, pixels in generate(size, per_family, seed):
        folder = os.path.join(out_dir, family)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{name}.png")
        Image.fromarray(pixels, mode="L").save(path)
        paths.append(path)
    return paths


def _flat(rng, index, size, seed):
    levels = (0, 255, 128, 30, 220)
    level = levels[index] if index < len(levels) else rng.uniform(0, 255)
    return np.full((size, size), level, np.float64)


def _noise(rng, index, size, seed):
    kind = index % 4
    if kind == 0:
        return rng.uniform(0, 255, (size, size))
    if kind == 1:
        return rng.normal(rng.uniform(60, 190), rng.uniform(10, 60), (size, size))
    if kind == 2:
        image = np.full((size, size), rng.uniform(40, 215))
        mask = rng.random((size, size))
        image[mask < 0.05] = 0
        image[mask > 0.95] = 255
        return image
    cells = int(rng.integers(4, 12))
    coarse = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.NEAREST), np.float64)


def _gradient(rng, index, size, seed):
    yy, xx = np.mgrid[:size, :size] / max(1, size - 1)
    if index % 3 == 2:
        cy, cx = rng.uniform(0.2, 0.8, 2)
        ramp = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / np.sqrt(2)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy)
        ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    low, high = sorted(rng.uniform(0, 255, 2))
    return low + (high - low) * ramp


def _shapes(rng, index, size, seed):
    image = Image.new("L", (size, size), int(rng.uniform(0, 255)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        box = sorted(rng.uniform(0, size, 2)), sorted(rng.uniform(0, size, 2))
        xy = [box[0][0], box[1][0], box[0][1] + 2, box[1][1] + 2]
        fill = int(rng.uniform(0, 255))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse(xy, fill=fill)
        elif shape == 1:
            draw.rectangle(xy, fill=fill)
        else:
            draw.line(xy, fill=fill, width=max(1, size // 32))
    return np.asarray(image, np.float64)


def _text(rng, index, size, seed):
    kind = index % 4
    yy, xx = np.mgrid[:size, :size]
    if kind == 2:  # stripes
        period = int(rng.integers(3, max(4, size // 6)))
        return np.where((xx if rng.random() < 0.5 else yy) // period % 2, 230.0, 25.0)
    if kind == 3:  # checkerboard
        cell = int(rng.integers(2, max(3, size // 6)))
        return np.where((xx // cell + yy // cell) % 2, 240.0, 15.0)
    paper, ink = (int(rng.uniform(200, 255)), int(rng.uniform(0, 60)))
    if rng.random() < 0.3:
        paper, ink = ink, paper  # a dark-mode screenshot
    image = Image.new("L", (size, size), paper)
    draw = ImageDraw.Draw(image)
    line_height = max(4, size // int(rng.integers(6, 12)))
    for top in range(line_height // 2, size - line_height, line_height):
        x = int(rng.integers(1, max(2, size // 10)))
        while x < size - 3:
            width = int(rng.integers(1, max(2, line_height)))
            draw.rectangle([x, top, x + width, top + line_height // 2], fill=ink)
            x += width + int(rng.integers(1, max(2, line_height // 2)))
        if kind == 1:  # a table: rules between rows
            draw.line([0, top - 1, size, top - 1], fill=ink)
    return np.asarray(image, np.float64)


def _texture(rng, index, size, seed):
    if index % 2 == 0:  # 1/f noise: clouds, foliage, skin at a distance
        frequency = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None] ** 2)
        spectrum = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / (
            np.maximum(frequency, 1.0 / size) ** rng.uniform(0.8, 1.6))
        field = np.real(np.fft.ifft2(spectrum))
        field = (field - field.mean()) / max(field.std(), 1e-9)
        return 128 + rng.uniform(25, 60) * field
    image = Image.new("L", (size, size), int(rng.uniform(40, 200)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(5, 15))):
        cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size / 12, size / 3)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=int(rng.uniform(0, 255)))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(size / 24)), np.float64)


def _not_upright(rng, index, size, seed):
    class_name = spec.CLASS_NAMES[index % len(spec.CLASS_NAMES)]
    phantom = demo_data.render_phantom(class_name, 10_000 + index, size=size, seed=seed + 1)
    turn = index % 4
    if turn == 0:
        return 255.0 - phantom
    return np.rot90(phantom, turn).astype(np.float64)


_DRAW = {
    "flat": _flat,
    "noise": _noise,
    "gradient": _gradient,
    "shapes": _shapes,
    "text": _text,
    "texture": _texture,
    "not_upright": _not_upright,
}
