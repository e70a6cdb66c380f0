"""A second clinic's scanner drawn from its name: deterministic, bounded, and it moves the
pixels but not the phantoms' size or class layout."""

import json
import os

import numpy as np
from PIL import Image

from components.lib import demo_data, site_shift
from edge import spec

NAMES = ("Clinic B", "St. Elsewhere", "Hill County", "north-3", "Ward 7")
CLASSES = ("COVID", "Normal")


def test_the_same_name_draws_the_same_site_and_other_names_differ():
    profiles = [site_shift.profile_for(name) for name in NAMES]

    assert profiles == [site_shift.profile_for(name) for name in NAMES]
    assert len({tuple(p.parameters().values()) for p in profiles}) == len(NAMES)
    # crc32, not hash(): the seed is the same in every process.
    assert site_shift.site_seed("Clinic B") == 2251711142


def test_every_drawn_parameter_stays_in_its_range():
    for index in range(200):
        profile = site_shift.profile_for(f"site-{index}")
        for key, value in profile.parameters().items():
            bounds = site_shift.RANGES[key]
            assert bounds.low <= value <= bounds.high, (profile.name, key, value)


def test_the_profile_prints_its_parameters():
    text = str(site_shift.profile_for("Clinic B"))

    assert "Clinic B" in text and "SYNTHETIC" in text
    assert all(key in text for key in site_shift.RANGES)


def test_site_images_differ_but_keep_size_layout_and_masks(tmp_path):
    plain = demo_data.generate(tmp_path / "plain", per_class=2, size=48, seed=3,
                               class_names=CLASSES)
    site = demo_data.generate(tmp_path / "site", per_class=2, size=48, seed=3,
                              class_names=CLASSES, site="Clinic B")
    again = demo_data.generate(tmp_path / "again", per_class=2, size=48, seed=3,
                               class_names=CLASSES, site="Clinic B")

    assert sorted(site) == sorted(plain)
    for name in CLASSES:
        assert [os.path.basename(p) for p in site[name]] == [
            os.path.basename(p) for p in plain[name]]
        for before, after, repeat in zip(plain[name], site[name], again[name], strict=True):
            pixels, shifted = _pixels(before), _pixels(after)
            assert shifted.shape == pixels.shape == (48, 48)
            assert np.abs(shifted.astype(int) - pixels).mean() > 2
            assert np.array_equal(shifted, _pixels(repeat))
            assert np.array_equal(_pixels(demo_data.finding_mask_path(after)),
                                  _pixels(demo_data.finding_mask_path(before)))


def test_mixed_sizes_keep_each_phantoms_side(tmp_path):
    plain = demo_data.generate(tmp_path / "plain", per_class=3, size=32, seed=5, max_size=96,
                               class_names=("Normal",))
    site = demo_data.generate(tmp_path / "site", per_class=3, size=32, seed=5, max_size=96,
                              class_names=("Normal",), site="north-3")

    assert [_pixels(p).shape for p in site["Normal"]] == [
        _pixels(p).shape for p in plain["Normal"]]


def test_cli_writes_site_json_beside_the_class_folders(tmp_path, capsys):
    code = demo_data.main(["--out", str(tmp_path), "--per-class", "1", "--size", "32",
                           "--seed", "4", "--site", "Hill County"])

    assert code == 0
    assert len(list(tmp_path.glob("*/images/*.png"))) == len(spec.CLASS_NAMES)
    record = json.loads((tmp_path / "site-profile.json").read_text())
    assert record["site"] == "Hill County" and record["synthetic"] is True
    assert record["parameters"] == {
        key: round(value, 4)
        for key, value in site_shift.profile_for("Hill County").parameters().items()}
    assert record["generated"]["per_class"] == 1 and record["generated"]["seed"] == 4
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "Hill County" in out


def _pixels(path):
    with Image.open(path) as image:
        return np.asarray(image)
