"""A failed quarantine check leaves its evidence: every corrupt file is named in a file under the
pipeline root and in what `cxr-pipeline run` prints, with exit code 1."""

import csv
import glob
import json
import os

import pytest

from components.lib import demo_data
from pipelines import cli

CORRUPT = {
    "COVID/images/zero.png": b"",
    "Normal/images/truncated.png": None,  # filled below: a PNG cut in half
    "Lung_Opacity/images/not_an_image.png": b"this is text, not a PNG",
    "Viral Pneumonia/images/garbage.png": bytes(range(256)) * 4,
}


@pytest.mark.slow
def test_failed_quarantine_check_names_every_corrupt_file(tmp_path, capsys):
    data = tmp_path / "data"
    written = demo_data.generate(str(data), per_class=5, size=64, seed=11)
    good = written["Normal"][0]
    with open(good, "rb") as handle:
        png = handle.read()
    for relative, content in CORRUPT.items():
        with open(data / relative, "wb") as handle:
            handle.write(png[: len(png) // 2] if content is None else content)
    root = tmp_path / "pipeline"

    code = cli.main(["run", "--data-root", str(data), "--pipeline-root", str(root),
                     "--runner", "local", "--epochs", "1"])
    printed = capsys.readouterr()

    assert code == cli.EXIT_FAILED
    output = printed.out + printed.err
    assert "above max_quarantine_fraction 5.0%" in output
    for relative in CORRUPT:
        assert relative in output, output[-3000:]
    (evidence,) = glob.glob(str(root / "quarantine" / "*"))
    assert os.path.join(evidence, "quarantine.csv") in output
    with open(os.path.join(evidence, "quarantine.csv"), newline="") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(CORRUPT)
    assert all(row["reason"] for row in rows.values())
    with open(os.path.join(evidence, "quarantine.json")) as handle:
        report = json.load(handle)
    assert report["count"] == len(CORRUPT)
