"""The History page in real Chromium finds a DICOM result by its study, and says why a lateral
sent by the X-ray unit (dcmtk's storescu) was not read."""

import pytest

pytest.importorskip("pynetdicom", reason="the dicom-net extra is not installed")

from tests.edge.chromium import By, open_chromium  # skips without Chromium
from tests.edge.dicom_peers import require, storescu
from tests.edge.dicom_samples import write_radiograph
from tests.edge.serve_helpers import make_model_dir, wait_for
from tests.edge.test_dicom_node import NODE_AE, UNIT_AE, start_station


def test_the_history_page_finds_a_study_and_shows_the_header_reason(tmp_path):
    require("storescu")
    frontal = write_radiograph(tmp_path / "frontal.dcm")
    lateral = write_radiograph(tmp_path / "lateral.dcm", view="LL")  # another study
    running = start_station(tmp_path, make_model_dir(tmp_path / "model"))
    driver = open_chromium(tmp_path)
    try:
        sent = storescu(running.station.dicom.port, [tmp_path / "frontal.dcm",
                                                     tmp_path / "lateral.dcm"],
                        NODE_AE, calling_ae=UNIT_AE)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        driver.get(running.url + "/history")
        rows = lambda: driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")  # noqa: E731
        wait_for(lambda: len(rows()) == 2, "both DICOM results are listed")
        study = driver.find_element(By.ID, "study")
        study.send_keys(str(lateral.StudyInstanceUID) + "\n")
        wait_for(lambda: len(rows()) == 1, "only the lateral's study is listed")
        [row] = rows()
        assert row.get_attribute("data-status") == "refer"
        assert "unsupported_view" in row.text
        origin = row.find_element(By.CSS_SELECTOR, "td:nth-child(2) span").get_attribute("title")
        assert f"DICOM from {UNIT_AE}" in origin and str(lateral.StudyInstanceUID) in origin
        study.clear()
        study.send_keys(str(frontal.StudyInstanceUID) + "\n")
        wait_for(lambda: len(rows()) == 1 and "unsupported_view" not in rows()[0].text,
                 "only the frontal's study is listed")
    finally:
        driver.quit()
        running.stop()
