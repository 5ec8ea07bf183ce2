"""The command line (``python -m harness.reporting.html reports/ [--screenshots]``): (re)write
``report.html`` beside every ``<dir>/*/results.json`` and ``MATRIX.html`` beside ``<dir>/matrix.json``;
with ``--screenshots``, also a PNG of each page (``report.png``, ``MATRIX.png``) taken in headless
Chromium (``harness.reporting.html.browser``). Exits 2 when it finds nothing to write."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from harness.reporting.html import browser
from harness.reporting.html.matrix_page import write_matrix_page
from harness.reporting.html.model_page import write_model_page

DESCRIPTION = "Write the HTML reports (report.html per model, MATRIX.html) from results.json and matrix.json."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.reporting.html", description=DESCRIPTION)
    parser.add_argument("dirs", nargs="+", type=Path, help="reports directories (holding <model>/results.json)")
    parser.add_argument("--screenshots", action="store_true",
                        help="also save report.png and MATRIX.png, taken in headless Chromium")
    args = parser.parse_args(argv)
    pages = write_pages(args.dirs)
    if not pages:
        print(f"harness.reporting.html: no results.json or matrix.json under {', '.join(map(str, args.dirs))}",
              file=sys.stderr)
        return 2
    for page in pages:
        print(f"{page} ({page.stat().st_size // 1024} KB)")
    if args.screenshots:
        reason = browser.unavailable()
        if reason:
            print(f"harness.reporting.html: no screenshots: {reason}", file=sys.stderr)
            return 1
        for shot in take_screenshots(pages):
            print(shot)
    return 0


def write_pages(dirs: Sequence[Path]) -> list[Path]:
    """Write every page the directories have the JSON of; returns the pages' paths."""
    pages = []
    for directory in dirs:
        for results in sorted(directory.glob("*/results.json")):
            pages.append(write_model_page(json.loads(results.read_text()), results.parent / "figures",
                                          results.parent / "report.html"))
        matrix = directory / "matrix.json"
        if matrix.is_file():
            pages.append(write_matrix_page(json.loads(matrix.read_text()), directory / "figures",
                                           directory / "MATRIX.html"))
    return pages


def take_screenshots(pages: Sequence[Path]) -> list[Path]:
    """A PNG beside each page (``report.html`` -> ``report.png``), from one headless Chromium."""
    shots = []
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            browser.headless_chromium(Path(profile)) as driver:
        for page in pages:
            browser.open_page(driver, page)
            shots.append(browser.save_screenshot(driver, page.with_suffix(".png")))
    return shots
