"""Headless Chromium through Selenium, for the HTML pages' screenshots and their browser test.

It uses Debian's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``apt-get install chromium
chromium-driver``) named explicitly, so Selenium Manager never looks for a driver on the network, and a
fresh profile directory; the browser's console log is kept (``console_errors``). ``unavailable`` says
why a browser cannot start here (the test skips with it)."""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
             "--hide-scrollbars")
WINDOW = (1400, 1000)
MAX_SCREENSHOT_HEIGHT = 3000  # px: the page's first screens (title, forest plot, claim verdicts); the rest is cut


def unavailable() -> str | None:
    """Why a headless Chromium cannot be driven here (None when it can)."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def headless_chromium(profile_dir: Path) -> Iterator[object]:
    """A Selenium ``WebDriver`` on headless Chromium with its profile in ``profile_dir``; quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*ARGUMENTS, f"--user-data-dir={profile_dir}", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def open_page(driver, path: Path, fragment: str = "") -> None:
    """Load the local file ``path`` (with ``#fragment``) and wait until its images are decoded."""
    driver.get(path.resolve().as_uri() + (f"#{fragment}" if fragment else ""))
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all(Array.from(document.images).filter(i => i.getAttribute('src'))"
        ".map(i => i.decode().catch(() => null))).then(() => done(true));")


def console_errors(driver) -> list[str]:
    """The messages of level SEVERE in the browser's console log since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def save_screenshot(driver, path: Path) -> Path:
    """A PNG of the whole page (cut at ``MAX_SCREENSHOT_HEIGHT``) into ``path``."""
    import base64

    width = driver.execute_script("return document.documentElement.scrollWidth")
    height = min(MAX_SCREENSHOT_HEIGHT, driver.execute_script("return document.documentElement.scrollHeight"))
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
