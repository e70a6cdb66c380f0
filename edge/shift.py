"""The acquisition-shift battery: the same X-rays as another clinic's scanner would make them.

Each family is a pure numpy/Pillow transform of a decoded 8-bit image, at graded severities,
applied *before* the device's own decoding and resize (a transform that changes the file, such
as JPEG or bit depth, goes through `edge.imageio` again), so a cell measures what the device
would answer on such a file. Severities are expressed on the model's input grid (a blur of
1 px is one model pixel whatever the stored image's size), so the battery means the same at
64 px and at 224 px. The first severity of each family is its mildest.

What in a clinic produces each family:
- source_resolution: CR/DX units deliver 1,000-3,000 px images, datasets 299 px PNGs; the
  image reaches the device at another size and is resampled by another path (here: the
  stored image resampled to a multiple of the model's size with bicubic filtering, or to
  0.75x with box filtering, then the device's own resize).
- blur: a detector with a softer modulation transfer (CR plates, older flat panels, a
  larger focal spot), patient motion, or a viewer's smoothing before export.
- sharpen: unsharp masking applied by the modality's image processing ("edge enhancement").
- gamma: another detector response or look-up table (a proprietary tone curve).
- contrast: another window width, or a raw image without contrast enhancement.
- noise: a lower dose or a noisier sensor (quantum and electronic noise).
- jpeg: images exported from a PACS or sent by phone as JPEG at some quality.
- rotation / shift: the patient not centred or not square to the detector.
- collimation: the collimator's shadow as a dark border around the exposed field.
- bit_depth: 12-bit or 16-bit files whose values fill only part of their range.
Inverted images and other modalities are no acquisition shift: the OOD set holds them
(components/lib/ood_images.py).
"""

from __future__ import annotations

import dataclasses
import io
import zlib
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageFilter

from edge.imageio import load_grayscale
from edge.preprocess import to_model_input


@dataclasses.dataclass(frozen=True)
class Family:
    name: str
    cause: str  # what in a clinic produces it
    unit: str  # what a severity's number means
    severities: tuple[float, ...]  # mildest first
    apply: Callable[[np.ndarray, float, int, np.random.Generator], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Cell:
    family: str
    severity: float

    @property
    def name(self) -> str:
        return f"{self.family}@{self.severity:g}"


def shifted(gray: np.ndarray, cell: Cell, model_size: int, seed: int = 0) -> np.ndarray:
    """One decoded uint8 image as the family's acquisition would deliver it, decoded again by
    the device's decoder (uint8 [h, w]); `seed` fixes its random draws (noise)."""
    family = FAMILIES[cell.family]
    rng = np.random.default_rng([seed, zlib.crc32(cell.name.encode())])
    return family.apply(gray, cell.severity, model_size, rng)


def model_inputs(images: list[np.ndarray], cell: Cell, model_size: int,
                 seed: int = 0) -> np.ndarray:
    """The device's model inputs (float32 [N, s, s, 1]) for decoded images under one cell."""
    return np.stack([to_model_input(shifted(gray, cell, model_size, seed + index), model_size)
                     for index, gray in enumerate(images)])


def cells(families: tuple[str, ...] | None = None) -> Iterator[Cell]:
    """Every (family, severity) cell, families in FAMILIES order, mildest severity first."""
    for name in families or tuple(FAMILIES):
        for severity in FAMILIES[name].severities:
            yield Cell(name, severity)


def is_mildest(cell: Cell) -> bool:
    return cell.severity == FAMILIES[cell.family].severities[0]


# ------------------------------------------------------------------------- transforms


def _scale(gray: np.ndarray, model_size: int) -> float:
    """Stored pixels per model pixel."""
    return max(gray.shape) / model_size


def _source_resolution(gray, factor, model_size, rng):
    side = max(8, int(round(factor * model_size)))
    resample = Image.Resampling.BICUBIC if factor >= 1 else Image.Resampling.BOX
    out = Image.fromarray(gray).resize((side, side), resample)
    return np.asarray(out, dtype=np.uint8)


def _blur(gray, sigma, model_size, rng):
    radius = sigma * _scale(gray, model_size)
    return np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(radius)), np.uint8)


def _sharpen(gray, amount, model_size, rng):
    radius = 1.0 * _scale(gray, model_size)
    mask = ImageFilter.UnsharpMask(radius=radius, percent=int(round(amount * 100)), threshold=0)
    return np.asarray(Image.fromarray(gray).filter(mask), np.uint8)


def _gamma(gray, gamma, model_size, rng):
    return _to_uint8(255.0 * (gray / 255.0) ** gamma)


def _contrast(gray, factor, model_size, rng):
    mean = float(gray.mean())
    return _to_uint8(mean + (gray.astype(np.float64) - mean) * factor)


def _noise(gray, sigma, model_size, rng):
    # sigma grey levels at the model's grid: finer stored pixels carry more, averaged away.
    per_pixel = sigma * _scale(gray, model_size)
    return _to_uint8(gray + rng.normal(0.0, per_pixel, gray.shape))


def _jpeg(gray, quality, model_size, rng):
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="JPEG", quality=int(quality))
    return load_grayscale(buffer.getvalue())


def _rotation(gray, degrees, model_size, rng):
    angle = degrees * (1 if rng.random() < 0.5 else -1)
    pad = int(np.ceil(0.2 * max(gray.shape)))
    padded = Image.fromarray(np.pad(gray, pad, mode="reflect"))
    turned = np.asarray(padded.rotate(angle, resample=Image.Resampling.BICUBIC), np.uint8)
    return turned[pad:pad + gray.shape[0], pad:pad + gray.shape[1]]


def _shift(gray, fraction, model_size, rng):
    dy, dx = (np.round(fraction * np.array(gray.shape) * rng.choice([-1, 1], 2))).astype(int)
    padded = np.pad(gray, ((abs(dy),) * 2, (abs(dx),) * 2), mode="reflect")
    rows, cols = gray.shape
    return padded[abs(dy) + dy:abs(dy) + dy + rows, abs(dx) + dx:abs(dx) + dx + cols]


def _collimation(gray, fraction, model_size, rng):
    out = gray.copy()
    rows, cols = gray.shape
    band_r, band_c = max(1, int(round(fraction * rows))), max(1, int(round(fraction * cols)))
    out[:band_r], out[-band_r:], out[:, :band_c], out[:, -band_c:] = 0, 0, 0, 0
    return out


def _bit_depth(gray, bits_used, model_size, rng):
    """A 16-bit PNG whose values span `bits_used` bits above an offset, read by the device:
    12 is a 12-bit detector's full range; 11 and 10 use half and a quarter of it."""
    span = 2 ** int(bits_used) - 1
    offset = 64 if bits_used < 12 else 0
    values = np.rint(offset + gray.astype(np.float64) / 255.0 * span).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")
    return load_grayscale(buffer.getvalue())


def _to_uint8(values) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


FAMILIES = {family.name: family for family in (
    Family("source_resolution", "a CR/DX image larger (or smaller) than the model's input, "
           "resampled by another path", "x the model's input side",
           (1.5, 2.0, 4.0, 0.75), _source_resolution),
    Family("blur", "a softer detector, motion, or smoothing before export",
           "Gaussian sigma in model pixels", (0.5, 0.8, 1.2, 2.0), _blur),
    Family("sharpen", "the modality's edge enhancement (unsharp mask)",
           "unsharp-mask amount", (0.3, 0.6, 1.0), _sharpen),
    Family("gamma", "another detector response or tone curve", "gamma exponent",
           (0.85, 1.2, 0.7, 1.5), _gamma),
    Family("contrast", "another window width or no contrast enhancement",
           "contrast factor about the mean", (0.8, 1.25, 0.6), _contrast),
    Family("noise", "a lower dose or a noisier sensor",
           "Gaussian sigma in grey levels at the model's grid", (2.0, 4.0, 8.0), _noise),
    Family("jpeg", "export or transfer as JPEG", "JPEG quality", (90, 70, 50, 30), _jpeg),
    Family("rotation", "a patient not square to the detector", "degrees",
           (2.0, 5.0, 10.0), _rotation),
    Family("shift", "a patient off the detector's centre", "fraction of the side",
           (0.03, 0.06, 0.10), _shift),
    Family("collimation", "the collimator's shadow around the exposed field",
           "border width, fraction of the side", (0.02, 0.05, 0.10), _collimation),
    Family("bit_depth", "12-16 bit files whose values fill part of their range",
           "bits of the 16-bit range the values span", (12, 11, 10), _bit_depth),
)}
