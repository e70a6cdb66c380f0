"""The Review page in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by Selenium records findings from the worklist with one click per case, imports a
findings CSV and shows its reply, and the history shows each result's finding."""


import pytest

from tests.edge.chromium import By, Select, open_chromium  # skips without Chromium
from tests.edge.serve_helpers import Client, make_model_dir, start, wait_for, xray_png

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]


@pytest.fixture
def browser(tmp_path):
    driver = open_chromium(tmp_path)
    yield driver
    driver.quit()


def test_a_reviewer_confirms_cases_from_the_worklist_and_imports_a_csv(tmp_path, browser):
    driver = browser
    running = start(make_model_dir(tmp_path / "model"), tmp_path / "data", keep_images=True)
    try:
        client = Client(running.url)
        results = client.upload([(f"chest-{n}.png", xray_png(n, size=96)) for n in (1, 2, 3)]
                                ).json()["results"]
        order = [r["id"] for r in client.get("/api/worklist").json()["results"]]

        driver.get(running.url + "/review")
        wait_for(lambda: len(_cases(driver)) == 3, "the worklist shows the three results", 15)
        assert [int(c.get_attribute("data-id")) for c in _cases(driver)] == order
        wait_for(lambda: driver.find_element(By.ID, "me").text == "kiosk (admin)",
                 "the header names the kiosk user")
        nav = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "header nav a")]
        assert nav == ["Triage", "History", "Review", "Site", "Model"]
        first = _cases(driver)[0]
        preview = first.find_element(By.CSS_SELECTOR, "img.preview")
        wait_for(lambda: driver.execute_script("return arguments[0].naturalWidth", preview) > 0,
                 "the kept image is shown")
        labels = [b.get_attribute("data-label") for b in first.find_elements(
            By.CSS_SELECTOR, "button.finding")]
        assert labels == CLASSES + ["not_assessable"]

        Select(driver.find_element(By.ID, "source")).select_by_value("clinician")
        first.find_element(By.CSS_SELECTOR, "input.note").send_keys("consolidation right base")
        first.find_element(By.CSS_SELECTOR, 'button[data-label="Normal"]').click()
        wait_for(lambda: len(_cases(driver)) == 2, "the confirmed case leaves the worklist")
        assert "Recorded Normal (clinician, kiosk)" in driver.find_element(By.ID, "recorded").text

        driver.refresh()  # the source is remembered for the session
        wait_for(lambda: len(_cases(driver)) == 2, "the worklist is back")
        assert Select(driver.find_element(By.ID, "source")).first_selected_option.text == (
            "clinician")
        _cases(driver)[0].find_element(By.CSS_SELECTOR,
                                       'button[data-label="not_assessable"]').click()
        wait_for(lambda: len(_cases(driver)) == 1, "the second case leaves the worklist")

        last = int(_cases(driver)[0].get_attribute("data-id"))
        sha = next(r["file_sha256"] for r in results if r["id"] == last)
        sheet = tmp_path / "lab.csv"
        sheet.write_text(f"file,label,note\n{sha},COVID,PCR positive\n{'e' * 64},Normal,\n")
        driver.find_element(By.ID, "import-file").send_keys(str(sheet))
        driver.find_element(By.ID, "import-send").click()
        report = driver.find_element(By.ID, "import-report")
        wait_for(lambda: "recorded" in report.text, "the import's reply is shown")
        assert "2 rows: 1 finding recorded, 1 waiting for their image, 0 not valid" in report.text
        [waiting] = report.find_elements(By.CSS_SELECTOR, "li.unmatched")
        assert waiting.get_attribute("data-row") == "3" and "e" * 64 in waiting.text
        wait_for(lambda: not _cases(driver), "the imported case leaves the worklist")
        assert "Every result has a finding" in driver.find_element(By.ID, "worklist-count").text
        wait_for(lambda: "e" * 64 in driver.find_element(By.ID, "pending").text,
                 "the waiting row is listed")

        driver.get(running.url + "/history")
        wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")) == 3,
                 "the history lists the three results")
        shown = {int(row.get_attribute("data-id")): row.find_element(By.CSS_SELECTOR,
                                                                     "td.finding").text
                 for row in driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")}
        assert shown == {order[0]: "Normal (clinician, kiosk)",
                         order[1]: "not assessable (clinician, kiosk)",
                         last: "COVID (lab, kiosk)"}
    finally:
        running.stop()


def _cases(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#worklist .case")
