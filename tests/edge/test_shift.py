"""edge.shift: the acquisition-shift battery changes images as each family says, reproducibly."""

import numpy as np
import pytest

from edge import shift
from tests.edge.conftest import radiograph_like

SIZE = 32


def _laplacian_energy(gray: np.ndarray) -> float:
    image = gray.astype(np.float64)
    lap = (4 * image[1:-1, 1:-1] - image[:-2, 1:-1] - image[2:, 1:-1]
           - image[1:-1, :-2] - image[1:-1, 2:])
    return float(np.mean(lap ** 2))


def test_every_cell_delivers_a_decodable_uint8_image_and_is_reproducible():
    gray = radiograph_like(64, 64, seed=3)
    names = []
    for cell in shift.cells():
        out = shift.shifted(gray, cell, SIZE, seed=5)
        assert out.dtype == np.uint8 and out.ndim == 2, cell.name
        np.testing.assert_array_equal(out, shift.shifted(gray, cell, SIZE, seed=5))
        names.append(cell.name)
    assert len(names) == len(set(names)) == sum(len(f.severities) for f in shift.FAMILIES.values())
    inputs = shift.model_inputs([gray, gray], shift.Cell("noise", 4.0), SIZE, seed=1)
    assert inputs.shape == (2, SIZE, SIZE, 1) and inputs.dtype == np.float32
    assert not np.array_equal(inputs[0], inputs[1])  # each image draws its own noise


def test_the_families_change_what_they_name():
    gray = radiograph_like(64, 64, seed=4)
    resampled = shift.shifted(gray, shift.Cell("source_resolution", 2.0), SIZE)
    assert resampled.shape == (2 * SIZE, 2 * SIZE)
    assert shift.shifted(gray, shift.Cell("source_resolution", 0.75), SIZE).shape == (24, 24)
    # Blur removes detail in proportion to sigma; sharpening adds it.
    energies = [_laplacian_energy(shift.shifted(gray, shift.Cell("blur", s), SIZE))
                for s in shift.FAMILIES["blur"].severities]
    assert _laplacian_energy(gray) > energies[0] > energies[1] > energies[2] > energies[3]
    assert _laplacian_energy(shift.shifted(gray, shift.Cell("sharpen", 1.0), SIZE)) > \
        _laplacian_energy(gray)
    # Tone: gamma > 1 darkens mid-tones, contrast < 1 narrows the spread about the mean.
    assert shift.shifted(gray, shift.Cell("gamma", 1.5), SIZE).mean() < gray.mean()
    assert shift.shifted(gray, shift.Cell("contrast", 0.6), SIZE).std() < 0.7 * gray.std()
    noisy = shift.shifted(gray, shift.Cell("noise", 8.0), SIZE).astype(float)
    assert 8.0 < np.std(noisy - gray) < 24.0  # 8 grey levels at the model's grid, 2x finer
    assert not np.array_equal(shift.shifted(gray, shift.Cell("jpeg", 30), SIZE), gray)
    bordered = shift.shifted(gray, shift.Cell("collimation", 0.10), SIZE)
    assert (bordered[:6] == 0).all() and (bordered[:, -6:] == 0).all()
    assert bordered[32, 32] == gray[32, 32]
    moved = shift.shifted(gray, shift.Cell("shift", 0.10), SIZE)
    assert moved.shape == gray.shape and not np.array_equal(moved, gray)
    turned = shift.shifted(gray, shift.Cell("rotation", 10.0), SIZE)
    assert turned.shape == gray.shape and not np.array_equal(turned, gray)


def test_bit_depth_files_go_through_the_device_decoder():
    gray = radiograph_like(48, 48, seed=6)
    full = shift.shifted(gray, shift.Cell("bit_depth", 12), SIZE)
    assert np.abs(full.astype(int) - gray).max() <= 1  # a 12-bit file filling its range
    # 11 bits of a 12-bit range: the decoder scales by bit depth, so the image arrives at
    # half its contrast, as a detector using part of its range delivers it.
    half = shift.shifted(gray, shift.Cell("bit_depth", 11), SIZE).astype(float)
    assert 0.45 < half.std() / gray.std() < 0.55


def test_mildest_cells_and_family_selection():
    assert shift.is_mildest(shift.Cell("blur", 0.5))
    assert not shift.is_mildest(shift.Cell("blur", 2.0))
    chosen = list(shift.cells(("gamma", "jpeg")))
    assert {cell.family for cell in chosen} == {"gamma", "jpeg"}
    with pytest.raises(KeyError):
        list(shift.cells(("no_such_family",)))
