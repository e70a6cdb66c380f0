"""Ingestion quarantines hostile files instead of failing the run."""

import shutil

import pytest
from ingest_fixtures import PER_CLASS, make_clean_tree

from components.image_example_gen import executor, ingest
from edge import imageio, spec
from tests.edge import fuzz

pytest.importorskip("pydicom")


def test_a_file_that_fails_in_any_way_is_quarantined_not_raised(tmp_path, monkeypatch, caplog):
    (tmp_path / "Normal").mkdir()
    (tmp_path / "Normal" / "a.dcm").write_bytes(fuzz.make_dicom_samples()["explicit.dcm"])
    kind, record = ingest.decode_file(str(tmp_path), "Normal/a.dcm", 0, ["Normal"])
    assert kind == "ok" and record["width"] == 24

    def broken(*args, **kwargs):
        raise KeyError("a bug nobody foresaw")

    monkeypatch.setattr(ingest, "encode_png", broken)
    with caplog.at_level("DEBUG", logger=ingest.__name__):
        kind, entry = ingest.decode_file(str(tmp_path), "Normal/a.dcm", 0, ["Normal"])
    assert kind == "quarantine"
    assert entry == {"path": "Normal/a.dcm", "reason": imageio.DECODE_FAILED,
                     "message": "KeyError: 'a bug nobody foresaw'"}
    assert any(r.exc_info and "Normal/a.dcm" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_malformed_dicoms_in_a_data_root_are_quarantined(tmp_path, run_example_gen):
    root = tmp_path / "data"
    make_clean_tree(root)
    crashers = [p for p in fuzz.saved_cases() if p.suffix == ".dcm"]
    assert crashers
    planted = []
    for index, path in enumerate(crashers):
        # Spread over the classes, as a hospital export would be.
        name = spec.CLASS_NAMES[index % len(spec.CLASS_NAMES)]
        target = root / name / "images" / f"damaged-{path.name}"
        shutil.copy(path, target)
        planted.append(f"{name}/images/{target.name}")

    run = run_example_gen(str(root), **{executor.MAX_QUARANTINE_FRACTION: 0.5})

    files = {entry["path"]: entry for entry in run.quarantine["files"]}
    assert sorted(files) == sorted(planted)
    assert {entry["reason"] for entry in files.values()} == {imageio.MALFORMED_DICOM}
    assert run.quarantine["by_reason"] == {imageio.MALFORMED_DICOM: len(planted)}
    assert run.summary["examples"] == PER_CLASS * len(spec.CLASS_NAMES)
