"""Shared fixtures for the edge tests: planted image files, good and bad."""

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# name -> expected reason (None: decodes fine). One file per bad-input case.
PLANTED = {
    "ok.png": None,
    "gray16.png": None,
    "rgba.png": None,
    "cmyk.jpg": None,
    "exif_rotated.jpg": None,
    "truncated.png": "truncated",
    "truncated.jpg": "truncated",
    "zero.png": "empty_file",
    "text.png": "not_an_image",
    "huge.png": "too_large",
    "x.png": "not_a_file",
}


def radiograph_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth uint8 image with some structure (so resizes and orientation are testable)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(xx / max(width, 1) * 6.0) * np.cos(yy / max(height, 1) * 4.0)
    noise = rng.normal(0, 10, size=(height, width))
    ramp = 40 * yy / max(height - 1, 1)  # top-to-bottom gradient: orientation is visible
    return np.clip(base + noise + ramp, 0, 255).astype(np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming width x height, with a tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def plant_files(folder: Path) -> np.ndarray:
    """Writes PLANTED into folder; returns the source pixels of the good files."""
    gray = radiograph_like(40, 30)
    Image.fromarray(gray).save(folder / "ok.png")
    Image.fromarray(gray.astype(np.uint16) * 16).save(folder / "gray16.png")  # 12-bit in 16
    rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
    Image.fromarray(rgba).save(folder / "rgba.png")
    Image.fromarray(np.dstack([gray] * 3)).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    Image.fromarray(gray).save(folder / "exif_rotated.jpg", exif=exif, quality=95)
    png = (folder / "ok.png").read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("patient list, not an image\n")
    (folder / "huge.png").write_bytes(png_header_only(9000, 9000))  # 81 MP > default limit
    os.makedirs(folder / "x.png")
    return gray


@pytest.fixture
def planted(tmp_path):
    folder = tmp_path / "planted"
    folder.mkdir()
    gray = plant_files(folder)
    return folder, gray


@pytest.fixture(scope="session")
def real_dicom_path():
    """The real CR chest radiograph shipped by pydicom-data (offline; no download)."""
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    path = get_testdata_file("RG1_UNCR.dcm", download=False)
    if path is None:
        pytest.skip("pydicom-data is not installed (RG1_UNCR.dcm unavailable offline)")
    return Path(path)
