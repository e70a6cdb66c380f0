"""`cxr-edge serve` in a real browser: headless Chromium (Debian's chromium + chromium-driver,
tools/install_system_deps.sh) driven by Selenium uploads files through the page, reads the
results, filters and exports the history as CSV, deletes an entry, reads the provenance page,
logs in with an access code, and saves screenshots (CXR_SERVE_SCREENSHOT=PATH keeps one)."""

import csv
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.edge.chromium import By, Select, open_chromium  # skips without Chromium
from tests.edge.conftest import radiograph_like
from tests.edge.serve_helpers import Client, make_model_dir, start, wait_for

CLASSES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")
CODE = "browser-code-42"


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = open_chromium(tmp_path, downloads)
    yield driver, downloads
    driver.quit()


@pytest.fixture
def files(tmp_path, planted, real_dicom_path_or_none):
    folder, _ = planted
    made = tmp_path / "uploads"
    made.mkdir()
    Image.fromarray(radiograph_like(256, 220, seed=1)).save(made / "chest-1.png")
    Image.fromarray(radiograph_like(300, 300, seed=2)).save(made / "chest-2.jpg", quality=92)
    shutil.copy(folder / "text.png", made / "notes.png")  # text named .png: not an image
    paths = [made / "chest-1.png", made / "chest-2.jpg", made / "notes.png"]
    if real_dicom_path_or_none is not None:
        paths.insert(0, real_dicom_path_or_none)
    return paths


@pytest.fixture
def real_dicom_path_or_none():
    try:
        from pydicom.data import get_testdata_file

        path = get_testdata_file("RG1_UNCR.dcm", download=False)
    except ImportError:
        return None
    return Path(path) if path else None


def test_upload_results_history_csv_and_provenance_in_chromium(tmp_path, browser, files):
    driver, downloads = browser
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data")
    try:
        driver.get(running.url + "/")
        _wait(lambda: driver.find_element(By.ID, "model-line").text.startswith("Model "),
              "the model line is filled")
        assert driver.find_element(By.ID, "synthetic").is_displayed()
        assert "never a diagnosis" in driver.find_element(By.ID, "notice").text
        camera = driver.find_element(By.ID, "camera")
        assert camera.get_attribute("accept") == "image/*"
        assert camera.get_attribute("capture") is not None

        driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in files))
        _wait(lambda: len(_cards(driver)) == len(files) and not [
            c for c in _cards(driver) if c.get_attribute("data-status") == "pending"],
            "every card has its result")
        cards = {c.find_element(By.TAG_NAME, "h3").text: c for c in _cards(driver)}
        assert set(cards) == {p.name for p in files}
        bad = cards["notes.png"]
        assert bad.get_attribute("data-status") == "error"
        assert "not_an_image" in bad.text
        for name in set(cards) - {"notes.png"}:
            card = cards[name]
            assert card.get_attribute("data-status") in ("ok", "refer"), card.text
            assert card.find_element(By.CLASS_NAME, "predicted").text in CLASSES
            rows = card.find_elements(By.CSS_SELECTOR, ".probs li")
            assert [r.get_attribute("data-class") for r in rows] == list(CLASSES)
            heat = card.find_element(By.CSS_SELECTOR, "img.heatmap")
            assert heat.get_attribute("src").startswith("data:image/jpeg;base64,")
            assert driver.execute_script("return arguments[0].naturalWidth", heat) > 0
            assert "ms" in card.text and "model model (float32)" in card.text
        _screenshot(driver, tmp_path / "triage.png")

        driver.set_window_size(390, 844)  # a phone: nothing wider than the screen
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1")
        driver.set_window_size(1100, 1000)

        driver.get(running.url + "/history")
        _wait(lambda: len(_rows(driver)) == len(files), "the history lists every upload")
        Select(driver.find_element(By.ID, "status")).select_by_value("error")
        _wait(lambda: len(_rows(driver)) == 1, "the status filter leaves the bad file")
        driver.find_element(By.ID, "export").click()
        exported = _downloaded(downloads)
        rows = list(csv.DictReader(exported.open()))
        assert [(r["filename"], r["status"], r["reason"]) for r in rows] == [
            ("notes.png", "error", "not_an_image")]
        Select(driver.find_element(By.ID, "status")).select_by_value("")
        _wait(lambda: len(_rows(driver)) == len(files), "all rows are back")
        newest = _rows(driver)[0]
        newest_id = newest.get_attribute("data-id")
        button = newest.find_element(By.TAG_NAME, "button")
        button.click()
        assert button.text == "Really delete?"
        button.click()
        _wait(lambda: len(_rows(driver)) == len(files) - 1, "the deleted row is gone")
        assert Client(running.url).get(f"/api/history/{newest_id}").status == 404

        driver.get(running.url + "/about")
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#gates tbody tr"), "gates shown")
        assert driver.find_element(By.ID, "synthetic").is_displayed()
        gates = driver.find_element(By.ID, "gates").text
        assert "macro F1" in gates and "pass" in gates
        assert "float32 shipped" in driver.find_element(By.ID, "model").text
        assert "never a diagnosis" in driver.find_element(By.ID, "notice").text
    finally:
        running.stop()


def test_the_access_code_form_in_chromium(tmp_path, browser, files):
    driver, _ = browser
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data", access_code=CODE)
    try:
        driver.get(running.url + "/")
        code = driver.find_element(By.ID, "code")  # the 401 page is the login form
        code.send_keys("wrong-code")
        code.submit()
        _wait(lambda: "not right" in driver.page_source, "the wrong code is refused")
        code = driver.find_element(By.ID, "code")
        code.send_keys(CODE)
        code.submit()
        _wait(lambda: driver.find_elements(By.ID, "model-line") and driver.find_element(
            By.ID, "model-line").text.startswith("Model "), "the triage page opens")
        driver.find_element(By.ID, "files").send_keys(str(files[-2]))
        _wait(lambda: _cards(driver) and _cards(driver)[0].get_attribute("data-status") in (
            "ok", "refer"), "the upload is classified")
        driver.find_element(By.ID, "logout").click()
        _wait(lambda: driver.find_elements(By.ID, "code"), "logging out shows the form again")
        driver.get(running.url + "/history")
        assert driver.find_elements(By.ID, "code")  # the cookie is gone: 401 and the form
    finally:
        running.stop()


def _cards(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#results .card")


def _rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")


def _wait(condition, what: str, timeout: float = 15.0):
    wait_for(condition, what, timeout)


def _downloaded(folder: Path, timeout: float = 15.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == ".csv"]
        if done:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no CSV downloaded into {folder}: {list(folder.iterdir())}")


def _screenshot(driver, path: Path) -> None:
    """Saves the whole page (the window grown to its height); also to $CXR_SERVE_SCREENSHOT."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1100, min(max(height + 40, 600), 2400))
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    keep = os.environ.get("CXR_SERVE_SCREENSHOT")
    if keep:
        shutil.copy(path, keep)
    driver.set_window_size(1100, 1000)
