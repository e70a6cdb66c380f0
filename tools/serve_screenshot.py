"""Regenerates docs/serve.png, the README's picture of `cxr-edge serve`.

    .venv/bin/python tools/serve_screenshot.py [--out docs/serve.png]

A station on 127.0.0.1 serving the test suite's small attention model (pushed like the
pipeline pushes, marked synthetic), headless Chromium (Selenium + Debian's chromium-driver)
uploading the real CR radiograph from pydicom-data, two demo phantoms and a text file named
.png through the page. Needs the pipeline venv (the phantoms come from components/).
"""

import argparse
import base64
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image

from components.lib.demo_data import render_phantom
from edge import spec
from edge.manifest import write_model_dir
from edge.serve.options import ServeOptions
from edge.serve.server import serve_in_thread

MODEL = REPO / "tests" / "edge" / "data" / "golden_fp32.tflite"
METRICS = {"gates": [{"gate": "macro F1", "value": 0.996, "threshold": 0.9, "comparison": ">=",
                      "passed": True},
                     {"gate": "COVID recall", "value": 0.992, "threshold": 0.9,
                      "comparison": ">=", "passed": True}]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "serve.png"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="serve-shot-"))
    try:
        uploads = _uploads(work)
        serving = work / "serving"
        write_model_dir(serving / spec.VERSIONS_DIR / "20261126T120000Z", MODEL, variant="float32",
                        synthetic_data=True, metrics=METRICS,
                        referral={"ood_threshold": spec.DEFAULT_OOD_THRESHOLD, "refer_below": 0.5,
                                  "method": "example threshold for the picture"})
        (serving / spec.LATEST_FILE).write_text("20261126T120000Z\n")
        running = serve_in_thread(ServeOptions(model=str(serving), port=0,
                                               data_dir=str(work / "data")))
        try:
            _shoot(running.url, uploads, work, Path(args.out))
        finally:
            running.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {args.out}")
    return 0


def _uploads(work: Path) -> list[Path]:
    from pydicom.data import get_testdata_file

    paths = [Path(get_testdata_file("RG1_UNCR.dcm", download=False))]
    for name in ("COVID", "Normal"):
        path = work / f"phantom-{name.lower()}.png"
        Image.fromarray(render_phantom(name, 3, size=320)).save(path)
        paths.append(path)
    (work / "notes.png").write_text("ward list, not an image\n")
    return paths + [work / "notes.png"]


def _shoot(url: str, uploads: list[Path], work: Path, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = Options()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-proxy-server",
                     "--hide-scrollbars", "--window-size=1000,900",
                     f"--user-data-dir={work / 'profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(url + "/")
        driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in uploads))
        deadline = time.monotonic() + 30
        while any(card.get_attribute("data-status") == "pending" for card in
                  driver.find_elements(By.CSS_SELECTOR, "#results .card")):
            if time.monotonic() > deadline:
                raise TimeoutError("the uploads were not classified within 30 s")
            time.sleep(0.1)
        time.sleep(0.5)  # the inline heat maps decode
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}})  # the whole page, not only the window
        shot = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    finally:
        driver.quit()
    out.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours: a readable page at a fraction of the bytes of a true-colour PNG.
    shot.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)


if __name__ == "__main__":
    sys.exit(main())
