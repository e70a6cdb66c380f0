"""Attention maps drawn over the X-ray, as PNG, with Pillow and numpy only."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

# Overlays are drawn at most this many pixels on the long side: enough to read, small to store.
MAX_OVERLAY_SIDE = 512
OVERLAY_OPACITY = 0.45


def save_overlay(gray: np.ndarray, attention: np.ndarray, path: str | os.PathLike) -> None:
    """Writes gray (uint8 [h, w]) with attention ([a, b] in 0..1) stretched over it, as PNG."""
    overlay(gray, attention).save(path, format="PNG")


def overlay(gray: np.ndarray, attention: np.ndarray) -> Image.Image:
    """gray (uint8 [h, w]) with attention ([a, b] in 0..1) stretched over it, RGB.

    The map is shown relative to its own range (as saliency displays do): the colours say where
    the model looked most and least on this image, not how strongly in absolute terms.
    """
    base = Image.fromarray(gray)
    scale = min(1.0, MAX_OVERLAY_SIDE / max(base.size))
    size = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
    base = base.resize(size, Image.Resampling.BILINEAR).convert("RGB")
    heat = Image.fromarray(np.asarray(attention, np.float32)).resize(
        size, Image.Resampling.BILINEAR
    )
    values = np.asarray(heat, np.float32)
    spread = float(values.max() - values.min())
    values = (values - values.min()) / spread if spread > 1e-6 else np.zeros_like(values)
    colours = _heat_colours(values)
    return Image.blend(base, Image.fromarray(colours, "RGB"), OVERLAY_OPACITY)


def _heat_colours(values: np.ndarray) -> np.ndarray:
    """Maps 0..1 to a blue-cyan-yellow-red ramp (a small 'jet'), uint8 RGB."""
    stops = np.array([0.0, 0.35, 0.65, 1.0])
    palette = np.array([[0, 0, 160], [0, 200, 220], [250, 230, 0], [220, 0, 0]], np.float32)
    channels = [np.interp(values, stops, palette[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).astype(np.uint8)
