"""The pointing game: hits, chance, images without a finding, and the masks the phantoms write."""

import math

import numpy as np
import pytest

from components.lib import attention_score, demo_data


def _mask(size, rows, cols):
    mask = np.zeros((size, size), dtype=bool)
    mask[rows, cols] = True
    return mask


def test_a_peak_on_the_finding_is_a_hit_and_elsewhere_a_miss():
    mask = _mask(64, slice(40, 48), slice(4, 12))  # inside cell (2, 0) of a 4x4 map
    on, off = np.zeros((4, 4)), np.zeros((4, 4))
    on[2, 0] = 1.0
    off[0, 3] = 1.0

    score = attention_score.pointing_game(np.stack([on, off]), [mask, mask])

    assert (score.hits, score.scored, score.without_finding) == (1, 2, 0)
    assert score.score == 0.5
    assert score.grid == (4, 4)
    assert score.chance == 1 / 16  # one cell of 16 holds the finding
    assert math.isclose(score.finding_area, 64 / 4096)


def test_a_finding_across_cell_borders_counts_every_cell_it_touches():
    mask = _mask(64, slice(14, 18), slice(30, 34))  # the corner of four cells
    cells = attention_score.finding_cells(mask, (4, 4))
    assert cells.sum() == 4 and cells[0:2, 1:3].all()
    assert attention_score.finding_cells(mask, (2, 2)).tolist() == [[True, True], [False, False]]


def test_images_without_a_finding_are_not_scored():
    maps = np.ones((3, 4, 4, 1))
    empty = np.zeros((64, 64), dtype=bool)

    score = attention_score.pointing_game(maps, [None, empty, None])

    assert (score.scored, score.without_finding) == (0, 3)
    assert math.isnan(score.score)


def test_the_phantoms_masks_are_found_beside_their_images(tmp_path):
    written = demo_data.generate(tmp_path, per_class=1, size=64, seed=2)

    covid = attention_score.read_finding_mask(written["COVID"][0], 32)
    normal = attention_score.read_finding_mask(written["Normal"][0], 32)

    assert covid.shape == (32, 32) and covid.any()
    assert normal is not None and not normal.any()
    assert attention_score.read_finding_mask(str(tmp_path / "elsewhere.png"), 32) is None


@pytest.mark.slow
def test_the_shipped_files_maps_are_read_on_the_edge_runner(tmp_path):
    """The report scores the variant that ships, not only the SavedModel: its maps come from
    the .tflite file on the edge runner and match the SavedModel's for a float32 file."""
    from components.quantizer import QuantizerConfig, convert
    from tests.components import evalkit

    examples = evalkit.write_examples(str(tmp_path / "examples"), {"train": 4, "test": 2})
    model_dir = evalkit.train_tiny_model(examples, str(tmp_path / "model"), epochs=1)
    model_file = tmp_path / "float32.tflite"
    model_file.write_bytes(convert("float32", model_dir, None, QuantizerConfig()))
    signature = attention_score.load_signature(model_dir)
    keys = attention_score.attention_keys(signature)
    images = np.random.default_rng(0).uniform(0, 255, (3, evalkit.IMAGE_SIZE,
                                                       evalkit.IMAGE_SIZE, 1)).astype(np.float32)

    on_device = attention_score.runner_attention_maps(str(model_file), images, keys)
    reference = attention_score.signature_outputs(signature, images)

    assert keys
    for key in keys:
        assert on_device[key].shape == reference[key].shape
        np.testing.assert_allclose(on_device[key], reference[key], atol=1e-4)
    with pytest.raises(ValueError, match="no attention outputs"):
        attention_score.runner_attention_maps(str(model_file), images, ["attention_9"])

    # The report scores the file the Quantizer selected, and without its maps it says so.
    from components.lib import storage
    from components.quantizer import VARIANTS_FILENAME
    from components.report.attention import shipped_attention

    storage.write_json(str(tmp_path / VARIANTS_FILENAME), {
        "variants": [{"variant": "float32"}], "selected": "float32",
        "selected_file": model_file.name, "selection": {}})
    cases = attention_score.TestCases(images, np.zeros(3, np.int64), [None] * 3)
    (name, maps), note = shipped_attention(str(tmp_path), keys, cases)
    assert name == "float32" and note is None
    np.testing.assert_allclose(maps[keys[0]], reference[keys[0]], atol=1e-4)
    shipped, note = shipped_attention(str(tmp_path), ["attention_9"], cases)
    assert shipped is None
    assert "not scored" in note
