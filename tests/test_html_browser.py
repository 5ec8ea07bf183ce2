"""The HTML reports in a real browser (headless Chromium through Selenium, ``harness/reporting/html/browser.py``),
made from the committed ``reports/<model>/results.json`` and ``reports/matrix.json``: no console error, every
figure decoded, the rows and verdict counts shown are the file's, a verdict filter shows exactly that
verdict's rows, a row opens to its details, and a matrix cell opens its row on the model's page. Skipped
only where Chromium, chromedriver or selenium is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.reporting.html import browser, write_matrix_page, write_model_page

REPORTS = Path(__file__).parents[1] / "reports"
MODELS = ("smollm2-135m", "gemma3-270m")
SHOWN_ROWS = "return Array.from(document.querySelectorAll('tr.row')).filter(r => !r.hidden).map(r => r.id)"
SHOWN_COUNTS = ("return Object.fromEntries(Array.from(document.querySelectorAll('[data-count-verdict]'))"
                ".map(c => [c.dataset.countVerdict, Number(c.querySelector('b').textContent)]))")
UNDECODED_IMAGES = ("return Array.from(document.images).filter(i => i.getAttribute('src') && !i.naturalWidth)"
                    ".map(i => i.alt)")

pytestmark = pytest.mark.skipif(browser.unavailable() is not None,
                                reason=f"no headless Chromium: {browser.unavailable()}")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """The committed reports' pages, written into a temporary directory laid out like ``reports/``."""
    root = tmp_path_factory.mktemp("html")
    for model in MODELS:
        write_model_page(json.loads((REPORTS / model / "results.json").read_text()), REPORTS / model / "figures",
                         root / model / "report.html")
    write_matrix_page(json.loads((REPORTS / "matrix.json").read_text()), REPORTS / "figures", root / "MATRIX.html")
    return root


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    with browser.headless_chromium(tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


@pytest.mark.parametrize("model", MODELS)
def test_the_model_page_shows_the_files_rows_and_counts_and_filters_them(model, pages, driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    results = json.loads((REPORTS / model / "results.json").read_text())
    counts = {verdict: count for verdict, count in results["verdict_counts"].items()
              if count and verdict != "expected among them"}
    browser.open_page(driver, pages / model / "report.html")
    assert browser.console_errors(driver) == []
    assert driver.execute_script(UNDECODED_IMAGES) == []
    assert len(driver.execute_script(SHOWN_ROWS)) == len(results["claims"]) + len(results["not_measured"])
    assert driver.find_element(By.ID, "shown-count").text == str(sum(counts.values()))
    assert driver.execute_script(SHOWN_COUNTS) == counts

    verdict = min(counts, key=lambda v: (counts[v], v))  # the rarest verdict
    Select(driver.find_element(By.ID, "filter-verdict")).select_by_value(verdict)
    shown = driver.execute_script(SHOWN_ROWS)
    assert len(shown) == counts[verdict] and driver.find_element(By.ID, "shown-count").text == str(counts[verdict])
    assert driver.execute_script(SHOWN_COUNTS) == {v: (c if v == verdict else 0) for v, c in counts.items()}

    row = driver.find_element(By.ID, shown[0])
    details = driver.find_element(By.ID, f"{shown[0]}-details")
    assert not details.is_displayed()
    row.find_element(By.CSS_SELECTOR, "button.toggle").click()
    assert details.is_displayed() and "preconditions (gates)" in details.text
    browser.save_screenshot(driver, tmp_path / f"{model}.png")
    assert (tmp_path / f"{model}.png").stat().st_size > 0
    assert browser.console_errors(driver) == []


def test_the_matrix_page_opens_a_rows_details_on_its_models_page(pages, driver, tmp_path):
    from selenium.webdriver.common.by import By

    matrix = json.loads((REPORTS / "matrix.json").read_text())
    browser.open_page(driver, pages / "MATRIX.html")
    assert browser.console_errors(driver) == []
    assert driver.execute_script(UNDECODED_IMAGES) == []
    assert driver.execute_script("return document.querySelectorAll('tr.claim-line').length") == len(matrix["claims"])
    browser.save_screenshot(driver, tmp_path / "MATRIX.png")

    first = driver.find_element(By.CSS_SELECTOR, "tr.claim-line")
    first.find_element(By.CSS_SELECTOR, "button.toggle").click()
    tests = driver.find_element(By.ID, f"{first.get_attribute('id')}-tests")
    assert tests.is_displayed()
    link = tests.find_element(By.CSS_SELECTOR, "td.cell a")
    anchor = link.get_attribute("href").split("#", 1)[1]
    link.click()
    row = driver.find_element(By.ID, anchor)
    assert driver.current_url.endswith(f"report.html#{anchor}")
    assert row.is_displayed() and driver.find_element(By.ID, f"{anchor}-details").is_displayed()
    assert browser.console_errors(driver) == []
