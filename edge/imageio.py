"""Turn an X-ray file into an 8-bit grayscale array, or say clearly why not.

One decoder for the whole project: ingestion (components/) and the device (edge/) both call
`load_grayscale`, so a file means the same pixels in training and on the device, and a bad file
gets the same quarantine reason in both places.

Handles PNG/JPEG/BMP/TIFF through Pillow (EXIF orientation, 16-bit, alpha, CMYK, palettes) and
DICOM through pydicom when installed (modality LUT, VOI LUT/window, MONOCHROME1, 12-16 bit).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The quarantine vocabulary: every failure maps to exactly one of these reasons.
EMPTY_FILE = "empty_file"  # zero bytes
NOT_FOUND = "not_found"  # the path does not exist
NOT_A_FILE = "not_a_file"  # a directory or other non-regular file
NOT_AN_IMAGE = "not_an_image"  # no decoder recognises the bytes (e.g. text named .png)
TRUNCATED = "truncated"  # recognised, but the pixel data ends early
TOO_LARGE = "too_large"  # more pixels than max_pixels (decompression-bomb guard)
UNSUPPORTED_DICOM = "unsupported_dicom"  # DICOM we cannot turn into one grayscale image
MALFORMED_DICOM = "malformed_dicom"  # DICOM whose header values have the wrong type/VR/length
DECODE_FAILED = "decode_failed"  # recognised, but decoding failed for another reason
REASONS = (
    EMPTY_FILE,
    NOT_FOUND,
    NOT_A_FILE,
    NOT_AN_IMAGE,
    TRUNCATED,
    TOO_LARGE,
    UNSUPPORTED_DICOM,
    MALFORMED_DICOM,
    DECODE_FAILED,
)

# Large enough for any radiograph (a 43x43 cm detector at 100 um is ~18.5 MP), small enough
# that a forged header cannot make us allocate gigabytes.
DEFAULT_MAX_PIXELS = 50_000_000

DICOM_SUFFIXES = (".dcm", ".dicom")

# Tracebacks of files that failed in an unforeseen way go here at DEBUG: a bug stays findable
# without stopping the batch.
log = logging.getLogger(__name__)

Source = str | os.PathLike | bytes | bytearray | memoryview


class ImageError(ValueError):
    """A file that cannot become a grayscale image; `.reason` is one of REASONS."""

    def __init__(self, reason: str, message: str):
        if reason not in REASONS:
            raise ValueError(f"unknown image error reason {reason!r}; use one of {REASONS}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def load_grayscale(source: Source, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decodes `source` (a path or the file's bytes) to a uint8 array of shape [height, width].

    Raises ImageError with a reason from REASONS for anything that is not a usable image, and
    nothing else: whatever a decoding library raises on a hostile file becomes an ImageError
    here, so one bad file in a batch is one error record, never a crashed batch.
    """
    try:
        data, name = _read_source(source)
        if _looks_like_dicom(data, name):
            return _load_dicom(data, max_pixels)
        return _load_with_pillow(data, max_pixels)
    except ImageError:
        raise
    except Exception as err:  # the last line of defence; the specific mappings come first
        log.debug("cannot decode %s", _describe(source), exc_info=True)
        raise ImageError(DECODE_FAILED, f"{type(err).__name__}: {err}") from err


def content_hash(gray: np.ndarray) -> str:
    """sha256 hex of a decoded 8-bit image: shape and pixels, not the file's encoding.

    Two files that decode to the same pixels (a PNG and a re-saved copy) hash the same.
    """
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 array, got {gray.dtype} {gray.shape}")
    digest = hashlib.sha256(f"uint8:{gray.shape[0]}x{gray.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(gray).tobytes())
    return digest.hexdigest()


def _read_source(source: Source) -> tuple[bytes, str]:
    """Returns the file's bytes and a name for format sniffing (the path's suffix)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = ""
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(NOT_FOUND, f"{path} does not exist")
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise ImageError(NOT_A_FILE, f"{path} is {kind}")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ImageError(NOT_A_FILE, f"{path} cannot be read: {err}") from err
        name = path.name
    if not data:
        raise ImageError(EMPTY_FILE, "the file is empty (0 bytes)")
    return data, name


def _describe(source: Source) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    return str(source)


def _looks_like_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith(DICOM_SUFFIXES)


# ---------------------------------------------------------------------------- Pillow


def _load_with_pillow(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # Our own max_pixels guard replaces Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                _check_size(image.width, image.height, 1, max_pixels)
                image.load()  # force the full decode now, so truncation surfaces here
                image = ImageOps.exif_transpose(image)
                return _pillow_to_gray(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(TOO_LARGE, str(err)) from err
    except UnidentifiedImageError as err:
        raise ImageError(NOT_AN_IMAGE, "no image format recognises this file") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        text = str(err)
        if isinstance(err, EOFError) or any(hint in text.lower() for hint in _TRUNCATION_HINTS):
            raise ImageError(TRUNCATED, text or "the image data ends early") from err
        raise ImageError(DECODE_FAILED, text or type(err).__name__) from err


# Pillow reports an early end of data in several wordings, depending on the format.
_TRUNCATION_HINTS = ("truncated", "end of file", "broken data stream", "premature end")


def _check_size(width: int, height: int, frames: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(DECODE_FAILED, f"image has no pixels ({width}x{height})")
    if width * height * frames > max_pixels:
        raise ImageError(
            TOO_LARGE,
            f"{width}x{height}{f'x{frames}' if frames > 1 else ''} exceeds the limit of "
            f"{max_pixels} pixels",
        )


def _pillow_to_gray(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "L":
        return np.array(image, dtype=np.uint8)
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _high_depth_to_uint8(np.asarray(image), mode)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Radiographs carry constant alpha; dropping it keeps the pixels as stored instead of
        # inventing a background colour to composite onto.
        image = image.convert("RGB") if mode in ("RGBA", "RGBa", "PA") else image.getchannel(0)
    if image.mode != "L":
        if image.mode not in ("RGB", "P", "1"):
            image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV: via RGB for a defined luma
        image = image.convert("L")
    return np.array(image, dtype=np.uint8)


def _high_depth_to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Scales 16-bit, 32-bit integer or float pixels to 0..255.

    Integers are scaled by their bit depth (the smallest of 8/10/12/14/16 bits that holds the
    brightest pixel), so a 12-bit radiograph in a 16-bit PNG is not crushed to black and two
    images at the same depth keep their relative brightness. Floats and negative or wider
    integers fall back to the image's own min..max.
    """
    values = pixels.astype(np.float64)
    if mode != "F" and values.size and values.min() >= 0 and values.max() < 2**16:
        top = float(values.max())
        bits = next(b for b in (8, 10, 12, 14, 16) if top < 2**b)
        return _scale_to_uint8(values, 0.0, float(2**bits - 1))
    finite = values[np.isfinite(values)]
    if not finite.size:
        raise ImageError(DECODE_FAILED, "the image holds no finite pixel values")
    return _scale_to_uint8(np.nan_to_num(values), float(finite.min()), float(finite.max()))


def _scale_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.clip(values, low, high) - low) * (255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)


# ---------------------------------------------------------------------------- DICOM


def _load_dicom(data: bytes, max_pixels: int) -> np.ndarray:
    try:
        import pydicom
    except ImportError as err:
        raise ImageError(
            UNSUPPORTED_DICOM, "DICOM support needs pydicom: pip install pydicom"
        ) from err
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except pydicom.errors.InvalidDicomError as err:
        raise ImageError(NOT_AN_IMAGE, f"not a DICOM file: {err}") from err
    except EOFError as err:
        raise ImageError(TRUNCATED, f"the DICOM file ends early: {err}") from err
    except Exception as err:  # pydicom raises many types for damaged headers
        log.debug("cannot read the DICOM header", exc_info=True)
        raise ImageError(MALFORMED_DICOM, f"cannot read the DICOM header: {err}") from err
    try:
        return _dataset_to_uint8(dataset, max_pixels)
    except ImageError:
        raise
    except Exception as err:
        # pydicom converts element values lazily, when first read: a value of the wrong type
        # or VR (text where a number belongs, an unknown VR code, a multi-valued window)
        # surfaces only here, as TypeError, ValueError, NotImplementedError, numpy errors...
        log.debug("malformed DICOM header", exc_info=True)
        raise ImageError(MALFORMED_DICOM, f"{type(err).__name__}: {err}") from err


def _dataset_to_uint8(dataset, max_pixels: int) -> np.ndarray:
    if "PixelData" not in dataset:
        raise ImageError(UNSUPPORTED_DICOM, "the DICOM file has no pixel data")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    _check_size(int(dataset.get("Columns", 0)), int(dataset.get("Rows", 0)), frames, max_pixels)
    if frames > 1:
        raise ImageError(UNSUPPORTED_DICOM, f"multi-frame DICOM ({frames} frames)")
    try:
        pixels = dataset.pixel_array
    except (NotImplementedError, RuntimeError) as err:
        if not _is_compressed(dataset):
            raise  # an uncompressed file the decoder rejects: its header is malformed
        # A compressed transfer syntax whose decoder plugin is not installed.
        raise ImageError(UNSUPPORTED_DICOM, f"cannot decode pixel data: {err}") from err
    except Exception as err:
        text = str(err)
        if any(hint in text for hint in _SHORT_PIXEL_DATA_HINTS):
            raise ImageError(TRUNCATED, f"cannot decode pixel data: {text}") from err
        raise
    return _dicom_to_uint8(dataset, pixels)


# pydicom's wordings for pixel data that ends early.
_SHORT_PIXEL_DATA_HINTS = ("shorter than", "less than expected", "missing")


def _is_compressed(dataset) -> bool:
    try:
        return bool(dataset.file_meta.TransferSyntaxUID.is_compressed)
    except Exception:  # no or a damaged transfer syntax: not a codec problem
        return False


def _dicom_to_uint8(dataset, pixels: np.ndarray) -> np.ndarray:
    """Modality LUT, then VOI LUT or window if the file has one, scaled to 8 bits."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        if pixels.ndim == 3 and pixels.shape[-1] == 3:
            # pydicom already converted YBR to RGB; use Pillow's luma so colour files match.
            rgb = _scale_to_uint8(pixels.astype(np.float64), 0.0, float(2 ** _bits(dataset) - 1))
            return np.array(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.uint8)
        raise ImageError(UNSUPPORTED_DICOM, f"photometric interpretation {photometric}")
    if pixels.ndim != 2:
        raise ImageError(UNSUPPORTED_DICOM, f"unexpected pixel array shape {pixels.shape}")

    values = apply_modality_lut(pixels, dataset)
    low, high = _modality_output_range(dataset)
    if "VOILUTSequence" in dataset or "WindowCenter" in dataset:
        values = apply_voi_lut(values, dataset, prefer_lut=True)
        low, high = _voi_output_range(dataset, low, high)
    else:
        # No window in the file: the stored range is usually far wider than the data, so use
        # the data's own range (what a viewer's auto-window does).
        low, high = float(np.min(values)), float(np.max(values))
    gray = _scale_to_uint8(np.asarray(values, dtype=np.float64), low, high)
    if photometric == "MONOCHROME1":
        gray = 255 - gray  # MONOCHROME1: low values are white; the models see bone as bright
    return gray


def _bits(dataset) -> int:
    return int(dataset.get("BitsStored", dataset.get("BitsAllocated", 8)))


def _modality_output_range(dataset) -> tuple[float, float]:
    """The range of values the modality LUT can produce (mirrors pydicom's apply_windowing)."""
    if "ModalityLUTSequence" in dataset:
        return 0.0, float(2 ** int(dataset.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = _bits(dataset)
    if int(dataset.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    first, second = low * slope + intercept, high * slope + intercept
    return min(first, second), max(first, second)


def _voi_output_range(dataset, low: float, high: float) -> tuple[float, float]:
    """apply_voi_lut maps a window onto the modality range, a LUT onto its own entry range."""
    if "VOILUTSequence" in dataset:
        bits = int(dataset.VOILUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    return low, high
