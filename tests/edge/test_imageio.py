"""edge.imageio: one decoder, one set of failure reasons, for ingestion and the device."""

import io
import sys

import numpy as np
import pytest
from PIL import Image

from edge import imageio
from edge.imageio import ImageError, content_hash, load_grayscale
from tests.edge.conftest import PLANTED
from tests.edge.fuzz import dicom_bytes


def test_every_planted_file_decodes_or_fails_with_its_reason(planted):
    folder, _ = planted
    for name, expected_reason in PLANTED.items():
        if expected_reason is None:
            gray = load_grayscale(folder / name)
            assert gray.dtype == np.uint8 and gray.ndim == 2, name
        else:
            with pytest.raises(ImageError) as caught:
                load_grayscale(folder / name)
            assert caught.value.reason == expected_reason, (name, str(caught.value))


def test_good_files_keep_their_pixels(planted):
    folder, gray = planted
    np.testing.assert_array_equal(load_grayscale(folder / "ok.png"), gray)
    np.testing.assert_array_equal(load_grayscale(folder / "rgba.png"), gray)
    # 12-bit values in a 16-bit PNG are scaled by their bit depth, not crushed to black.
    sixteen = load_grayscale(folder / "gray16.png").astype(int)
    assert np.abs(sixteen - gray.astype(int) * 16 * 255 / 4095).max() <= 0.5 + 1e-9
    cmyk = load_grayscale(folder / "cmyk.jpg").astype(int)
    assert np.abs(cmyk - gray).mean() < 4  # JPEG loss only


def test_exif_orientation_is_applied(planted):
    folder, gray = planted
    rotated = load_grayscale(folder / "exif_rotated.jpg").astype(float)
    assert rotated.shape == (gray.shape[1], gray.shape[0])
    expected = np.rot90(gray, k=-1).astype(float)  # orientation 6: turn 90 degrees clockwise
    wrong = np.rot90(gray, k=1).astype(float)
    assert np.abs(rotated - expected).mean() < 4
    assert np.abs(rotated - wrong).mean() > 10


def test_bytes_and_paths_decode_alike(planted):
    folder, _ = planted
    for name in ("ok.png", "cmyk.jpg", "gray16.png"):
        data = (folder / name).read_bytes()
        np.testing.assert_array_equal(load_grayscale(data), load_grayscale(folder / name))
    with pytest.raises(ImageError) as caught:
        load_grayscale(b"")
    assert caught.value.reason == "empty_file"


def test_size_guard_runs_before_decoding(planted, tmp_path):
    folder, _ = planted
    with pytest.raises(ImageError) as caught:
        load_grayscale(folder / "ok.png", max_pixels=100)
    assert caught.value.reason == "too_large"
    with pytest.raises(ImageError) as caught:
        load_grayscale(tmp_path / "missing.png")
    assert caught.value.reason == "not_found"


def test_other_pillow_modes_become_8_bit_gray():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    palette = Image.fromarray(gray).convert("P")
    bilevel = Image.fromarray(gray).convert("1")
    as_float = Image.fromarray(gray.astype(np.float32) / 10)
    for image in (palette, bilevel, as_float):
        buffer = io.BytesIO()
        image.save(buffer, "TIFF" if image.mode == "F" else "PNG")
        out = load_grayscale(buffer.getvalue())
        assert out.shape == (16, 16) and out.dtype == np.uint8
    # A float TIFF is scaled by its own range.
    buffer = io.BytesIO()
    as_float.save(buffer, "TIFF")
    np.testing.assert_allclose(load_grayscale(buffer.getvalue()), gray, atol=1)


def test_image_error_vocabulary_is_closed():
    with pytest.raises(ValueError):
        ImageError("something_else", "not in the vocabulary")
    assert set(PLANTED.values()) - {None} <= set(imageio.REASONS)


def test_content_hash_depends_on_pixels_and_shape_not_encoding(tmp_path):
    gray = np.arange(24, dtype=np.uint8).reshape(4, 6)
    Image.fromarray(gray).save(tmp_path / "a.png")
    Image.fromarray(gray).save(tmp_path / "a.bmp")
    png_hash = content_hash(load_grayscale(tmp_path / "a.png"))
    assert png_hash == content_hash(load_grayscale(tmp_path / "a.bmp"))
    assert png_hash != content_hash(gray.reshape(6, 4))
    assert len(png_hash) == 64
    with pytest.raises(ValueError):
        content_hash(gray.astype(np.float32))


# ---------------------------------------------------------------------------- DICOM


def _write_dicom(path, pixels, photometric="MONOCHROME2", bits=12, window=None, rescale=None):
    pytest.importorskip("pydicom")
    path.write_bytes(dicom_bytes(pixels, photometric=photometric, bits=bits, window=window,
                                 rescale=rescale))


def test_dicom_monochrome1_is_inverted_and_windowed(tmp_path):
    pixels = np.linspace(0, 4095, 32 * 24).reshape(32, 24).astype(np.uint16)
    _write_dicom(tmp_path / "m2.dcm", pixels, "MONOCHROME2")
    _write_dicom(tmp_path / "m1.dcm", pixels, "MONOCHROME1")
    mono2 = load_grayscale(tmp_path / "m2.dcm")
    mono1 = load_grayscale(tmp_path / "m1.dcm")
    assert mono2[0, 0] == 0 and mono2[-1, -1] == 255  # no window: the data's own range
    np.testing.assert_array_equal(mono1, 255 - mono2)

    # A narrow window saturates everything outside it.
    _write_dicom(tmp_path / "w.dcm", pixels, window=(2048, 1024))
    windowed = load_grayscale(tmp_path / "w.dcm")
    flat = windowed.ravel()
    values = pixels.ravel()
    assert (flat[values < 1536 - 1] == 0).all() and (flat[values > 2560] == 255).all()
    middle = (values > 1700) & (values < 2400)
    assert ((flat[middle] > 0) & (flat[middle] < 255)).all()


def test_dicom_is_sniffed_from_bytes_and_bad_dicom_is_named(tmp_path):
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8) * 50
    _write_dicom(tmp_path / "a.dcm", pixels)
    data = (tmp_path / "a.dcm").read_bytes()
    np.testing.assert_array_equal(load_grayscale(data), load_grayscale(tmp_path / "a.dcm"))
    (tmp_path / "text.dcm").write_text("not dicom at all")
    with pytest.raises(ImageError) as caught:
        load_grayscale(tmp_path / "text.dcm")
    assert caught.value.reason == "not_an_image"
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 40])
    with pytest.raises(ImageError) as caught:
        load_grayscale(tmp_path / "cut.dcm")
    assert caught.value.reason in ("truncated", "decode_failed")
    with pytest.raises(ImageError) as caught:
        load_grayscale(tmp_path / "a.dcm", max_pixels=10)
    assert caught.value.reason == "too_large"


def test_real_dicom_from_pydicom_data(real_dicom_path):
    gray = load_grayscale(real_dicom_path)
    assert gray.shape == (1955, 1841) and gray.dtype == np.uint8
    # MONOCHROME1 inverted: the lung fields (dark) are darker than the mediastinum column.
    height, width = gray.shape
    lungs = gray[height // 3 : height // 2, width // 5 : width // 3].mean()
    spine = gray[height // 3 : height // 2, width // 2 - 40 : width // 2 + 40].mean()
    assert lungs < spine
    assert gray.std() > 20


def test_dicom_without_pydicom_is_a_clear_error(tmp_path, monkeypatch):
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8)
    _write_dicom(tmp_path / "a.dcm", pixels)
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImageError) as caught:
        load_grayscale(tmp_path / "a.dcm")
    assert caught.value.reason == "unsupported_dicom" and "pip install pydicom" in str(caught.value)


# ---------------------------------------------------------------------------- hostile files


def _with_element(path, tag, vr, value):
    """Rewrites one element of a DICOM file with another VR: a header value of the wrong kind."""
    import pydicom

    dataset = pydicom.dcmread(path)
    if tag in dataset:
        del dataset[tag]
    dataset.add_new(tag, vr, value)
    dataset.save_as(path)


@pytest.mark.parametrize(
    ("tag", "vr", "value", "crash"),
    [
        # Each once crashed pydicom's apply_windowing / apply_modality_lut (a string where a
        # number belongs).
        (0x00281051, "LO", "1024", "'<' not supported between instances of 'str' and 'int'"),
        (0x00281050, "LO", "2048", "unsupported operand type(s) for -=: 'str' and 'float'"),
        (0x00281053, "LO", "0.5", "ufunc"),  # RescaleSlope as text
    ],
    ids=["window_width_text", "window_center_text", "rescale_slope_text"],
)
def test_header_values_of_the_wrong_type_are_malformed_dicom(tmp_path, tag, vr, value, crash):
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8) * 50
    path = tmp_path / "a.dcm"
    _write_dicom(path, pixels, window=(2048, 1024), rescale=(1, 0))
    _with_element(path, tag, vr, value)
    with pytest.raises(ImageError) as caught:
        load_grayscale(path)
    assert caught.value.reason == "malformed_dicom"
    assert crash in str(caught.value)  # the library's own words, for whoever debugs it


def test_unknown_value_representation_is_malformed_dicom(tmp_path):
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8)
    _write_dicom(tmp_path / "a.dcm", pixels)
    data = (tmp_path / "a.dcm").read_bytes()
    columns = b"\x28\x00\x11\x00US"  # (0028,0011) Columns, explicit VR little endian
    assert data.count(columns) == 1
    (tmp_path / "xx.dcm").write_bytes(data.replace(columns, b"\x28\x00\x11\x00XX"))
    with pytest.raises(ImageError) as caught:
        load_grayscale(tmp_path / "xx.dcm")
    assert caught.value.reason == "malformed_dicom"
    assert "Unknown Value Representation" in str(caught.value)


def test_any_unforeseen_failure_is_an_image_error_with_a_debug_traceback(
    planted, monkeypatch, caplog
):
    folder, _ = planted

    def broken(*args, **kwargs):
        raise KeyError("a decoder bug nobody foresaw")

    monkeypatch.setattr(imageio, "_pillow_to_gray", broken)
    with caplog.at_level("DEBUG", logger="edge.imageio"):
        with pytest.raises(ImageError) as caught:
            load_grayscale(folder / "ok.png")
    assert caught.value.reason == "decode_failed"
    assert "KeyError" in str(caught.value) and "nobody foresaw" in str(caught.value)
    logged = [r for r in caplog.records if r.name == "edge.imageio" and r.exc_info]
    assert logged and "ok.png" in logged[0].getMessage()
    assert logged[0].levelname == "DEBUG"
    # Interrupts are not decoding failures: they still stop the program.
    monkeypatch.setattr(imageio, "_pillow_to_gray", lambda image: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        load_grayscale(folder / "ok.png")
