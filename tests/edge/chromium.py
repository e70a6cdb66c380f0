"""Headless Chromium for the station's browser tests (Debian's chromium + chromium-driver,
installed by tools/install_system_deps.sh), driven by Selenium.

Importing this skips the importing test module when selenium or Chromium is absent; the tests
take Selenium's By and Select from here, so that skip comes before any selenium import."""

import shutil

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the dev extra) is absent")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium "
                "chromium-driver, done by tools/install_system_deps.sh as root)",
                allow_module_level=True)

__all__ = ["By", "Select", "open_chromium"]
ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-proxy-server", "--disable-extensions", "--no-first-run",
             "--disable-background-networking", "--window-size=1100,1000")


def open_chromium(tmp_path, downloads=None):
    """A fresh browser with its own profile under tmp_path; downloads go to `downloads`."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in (*ARGUMENTS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER, log_output=str(tmp_path / "driver.log")),
                              options=options)
    if downloads is not None:
        driver.execute_cdp_cmd("Page.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": str(downloads)})
    driver.implicitly_wait(0)
    return driver
