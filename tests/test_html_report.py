"""The HTML reports (``harness/reporting/html/``) on a small synthetic ``results.json``: every row is on the
page with its anchor, the counts are the file's, an unbounded CI reads ±∞ and never reaches a script as
``Infinity``, nothing is fetched from outside the page (figures are ``data:`` URIs), text is escaped; and
the matrix page links each cell to the row on its model's page."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from harness.reporting.html import write_matrix_page, write_model_page
from harness.reporting.html.encoding import element_id, row_anchor, script_json
from harness.reporting.matrix import build_matrix, load_results, write_matrix
from harness.reporting.report import ClaimOutcome, ReportBuilder
from harness.verdicts.declared import CLAIMS, declarations_sha256
from harness.verdicts.record import ClaimRecord

P1 = "test_directional_patching.py::test_p1_das_patching_flips_sentiment[logit_flip]"
A3 = "test_ablation.py::test_a3_direction_ablation_at_commas[accuracy]"
S1 = "test_steering.py::test_s1_steered_share_rises_with_coefficient[mirror]"
A2 = "test_ablation.py::test_a2_random_direction_ablation_does_little[all]"
K1 = "test_circuit.py::test_k1_paper_heads_among_top_heads"
HOSTILE = "<script>alert('x')</script> & more"


class Page(HTMLParser):
    """What the tests read of a page: elements by id, every src/href, the rows, scripts' texts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: dict[str, dict[str, str | None]] = {}
        self.links: list[str] = []
        self.images: list[str] = []
        self.row_ids: list[str] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids[attributes["id"]] = attributes
        self.links += [value for name, value in attrs if name in ("src", "href") and value is not None]
        if tag == "img" and attributes.get("src"):
            self.images.append(attributes["src"])
        if tag == "tr" and "row" in (attributes.get("class") or "").split():
            self.row_ids.append(attributes["id"])
        if tag == "script":
            self._script = attributes.get("id") or f"script-{len(self.scripts)}"
            self.scripts[self._script] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts[self._script] += data


def measured(test_id: str, claim: str, verdict: str, value: float | None, low: float | None, high: float | None,
             **extra) -> dict:
    """A claim row shaped like ``results.json``'s (``ReportBuilder._json``)."""
    declared = CLAIMS[claim]
    return {"test_id": test_id, "outcome": "passed", "status": verdict, "seconds": 2.5, "note": "",
            "expected_verdict": None, "stable_over_seeds": None, "claim": claim, "section": declared.section,
            "statement": declared.statement, "description": "the statistic", "paper_value": "96% (gpt2-small [3P])",
            "measured": value, "ci_low": low, "ci_high": high, "n": 27 if value is not None else 0,
            "n_unit": "test pairs", "ci_method": "percentile bootstrap", "threshold": 90.0, "passes_when": "above",
            "threshold_kind": "generic", "tolerance": ">= 90%", "threshold_source": "generic", "verdict": verdict,
            "passed": verdict == "replicates", "undefined_resamples": 0, "n_to_decide": None, "centre": None,
            "unit": "%", "details": "", "case": None, "preconditions": {}, "p_replicates": 0.01,
            "p_not_replicates": 0.9, "kind": declared.kind.value, "failed_controls": [], **extra}


def synthetic_results() -> dict:
    claims = [
        measured(P1, "P1", "replicates", 96.3, 92.0, 99.0, details=HOSTILE, n_to_decide=None),
        measured(A3, "A3", "inconclusive", 13.0, -math.inf, math.inf, n_to_decide=400),
        measured(S1, "S1", "not interpretable", 0.04, -0.09, 0.17, failed_controls=["S1.unsteered"]),
        measured(A2, "A2", "not applicable", None, None, None,
                 preconditions={"P0.zero_shot replicates": False}, expected_verdict="not applicable"),
    ]
    not_measured = [{"test_id": K1, "claim": "K1.paper_heads", "outcome": "skipped", "status": "skipped",
                     "note": "Skipped: the paper names its circuit heads on gpt2-small only"}]
    counts = {"replicates": 1, "does not replicate": 0, "inconclusive": 1, "not applicable": 1,
              "not interpretable": 1, "expected among them": 1, "skipped": 1, "error": 0}
    claim_verdicts = {row["claim"]: {"claim": row["claim"], "verdict": row["verdict"], "rule": "every row holds",
                                     "how": "every", "reason": "", "note": "", "rows": [
                                         {"test_id": row["test_id"], "verdict": row["verdict"], "role": "decides"}]}
                      for row in claims}
    return {"model": "tiny", "run_id": "run-1", "declarations_sha256": declarations_sha256(), "claims": claims,
            "not_measured": not_measured, "verdict_counts": counts, "claim_verdicts": claim_verdicts,
            "claim_verdict_counts_by_kind": {"paper claim": {"replicates": 1, "inconclusive": 1,
                                                             "not interpretable": 1},
                                             "control": {"not applicable": 1}},
            "seeds": {"seeds": [0], "by_test": {}}, "data": {}, "timings": {"load model": 3.25, "fit das": 1.5},
            "environment": {"model": "tiny", "git_commit": "abc123", "generated_unix_time": 1_700_000_000}}


def png(path: Path, colour: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3), colour).save(path)
    return path.read_bytes()


@pytest.fixture
def model_page(tmp_path) -> tuple[Page, str, dict[str, bytes]]:
    figures = {name: png(tmp_path / "tiny" / "figures" / f"{name}.png", colour)
               for name, colour in (("verdicts_forest", "red"), ("toy_layer_sweep", "blue"))}
    path = write_model_page(synthetic_results(), tmp_path / "tiny" / "figures", tmp_path / "tiny" / "report.html")
    text = path.read_text()
    return Page(text), text, figures


def test_every_row_is_on_the_page_with_its_anchor(model_page):
    page, _, _ = model_page
    results = synthetic_results()
    expected = [row_anchor(r["test_id"]) for r in results["claims"] + results["not_measured"]]
    assert page.row_ids == expected
    assert all(f"{anchor}-details" in page.ids for anchor in expected)


def test_the_counts_shown_are_the_files(model_page):
    page, text, _ = model_page
    counts = synthetic_results()["verdict_counts"]
    shown = {verdict: int(count) for verdict, count in
             re.findall(r'data-count-verdict="([^"]+)"[^>]*>[^<]*<b>(\d+)</b>', text)}
    assert shown == {v: c for v, c in counts.items() if c and v != "expected among them"}
    assert f'<strong id="shown-count">{len(page.row_ids)}</strong>' in text


def test_an_unbounded_interval_reads_infinity_and_no_script_sees_infinity(model_page):
    page, text, _ = model_page
    assert "13.0 <span class=\"ci\">[−∞, +∞]</span>" in text
    data = json.loads(page.scripts["page-data"], parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert [row["verdict"] for row in data["rows"]] == ["replicates", "inconclusive", "not interpretable",
                                                         "not applicable", "skipped"]
    assert "Infinity" not in page.scripts["page-data"] and "NaN" not in page.scripts["page-data"]


def test_nothing_is_fetched_from_outside_the_page(model_page):
    page, _, figures = model_page
    outside = [link for link in page.links if not link.startswith(("#", "data:"))]
    assert outside == []
    embedded = [base64.b64decode(src.removeprefix("data:image/png;base64,")) for src in page.images]
    assert embedded == [figures["verdicts_forest"], figures["toy_layer_sweep"]]  # the forest first
    assert Image.open(io.BytesIO(embedded[0])).size == (4, 3)


def test_a_rows_details_hold_its_threshold_gates_controls_and_figure(model_page):
    _, text, _ = model_page

    def details(test_id: str) -> str:
        start = text.index(f'id="{row_anchor(test_id)}-details"')
        return unescape(text[start:text.index("</tr>", start)])

    assert "96% (gpt2-small [3P])" in details(P1) and "90.0 % (above)" in details(P1)
    assert 'data-figure="toy_layer_sweep"' in details(P1) and "data-figure" not in details(S1)  # S1's not drawn
    assert "<dt>failed controls</dt><dd>S1.unsteered</dd>" in details(S1)
    assert "✗ not met: P0.zero_shot replicates" in details(A2)
    assert "not applicable (the model's expectations" in details(A2)
    assert "<dt>n to decide</dt><dd>400</dd>" in details(A3)


def test_text_from_the_results_is_escaped(model_page):
    _, text, _ = model_page
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in text


def test_script_json_is_strict_and_cannot_close_its_script():
    text = str(script_json({"low": -math.inf, "high": math.inf, "x": math.nan, "s": "</script><!--"}))
    assert json.loads(text) == {"high": "+inf", "low": "-inf", "s": "</script><!--", "x": "nan"}
    assert "<" not in text


@pytest.mark.parametrize("a, b", [("t.py::f[a-b]", "t.py::f[a_b]"), ("t.py::f[a b]", "t.py::f[a~20b]"),
                                  ("f[x]", "f(x)")])
def test_element_ids_of_different_test_ids_differ(a, b):
    assert element_id("row", a) != element_id("row", b)
    assert all(c.isalnum() or c in "_.-~" for c in element_id("row", a + b))


def test_the_report_writes_its_page_beside_results_json(tmp_path):
    builder = ReportBuilder(model_name="tiny", settings={})
    record = ClaimRecord(claim="P1", section="§6.2", statement="Patching flips", description="% flipped",
                         paper_value="96%", measured=95.0,
                         ci_low=93.0, ci_high=97.0, n=27, n_unit="test pairs", ci_method="percentile bootstrap",
                         threshold=90.0, passes_when="above", threshold_kind="generic", tolerance=">= 90%",
                         threshold_source="generic", verdict="replicates", passed=True)
    builder.outcomes.append(ClaimOutcome(P1, "P1", "passed", 1.0, record))
    builder.write(tmp_path)
    page = Page((tmp_path / "report.html").read_text())
    assert page.row_ids == [row_anchor(P1)]


def test_the_matrix_page_links_each_cell_to_the_row_on_its_models_page(tmp_path):
    for model in ("tiny-a", "tiny-b"):
        results = synthetic_results() | {"model": model}
        (tmp_path / model).mkdir()
        (tmp_path / model / "results.json").write_text(json.dumps(results))
        write_model_page(results, None, tmp_path / model / "report.html")
    write_matrix(build_matrix(load_results([tmp_path])), tmp_path)
    page = Page((tmp_path / "MATRIX.html").read_text())
    row_links = [link for link in page.links if "#row-" in link]
    assert len(row_links) == 2 * 5  # every test row of both models
    for link in row_links:
        target, anchor = link.split("#")
        assert anchor in Page((tmp_path / target).read_text()).row_ids
    assert not [link for link in page.links if "://" in link or link.startswith("//")]
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)


def test_the_matrix_page_shows_an_unbounded_interval_as_infinity(tmp_path):
    matrix = {"run_id": None, "declarations_note": "", "models": [{"model": "m", "failed": None,
                                                                     "path": "reports/m/results.json"}],
              "left_out": [], "summary": {}, "others": {},
              "claims": [{"claim": "A3", "section": "§5.3", "statement": "s", "paper_value": "p",
                          "cells": {"m": {"verdict": "inconclusive", "tally": {"inconclusive": 1}, "text": "x"}},
                          "tests": [{"test_id": A3, "paper_value": "p",
                                     "cells": {"m": {"verdict": "inconclusive", "measured": 13.0,
                                                     "ci_low": -math.inf, "ci_high": math.inf, "text": "x"}}}]}]}
    text = write_matrix_page(matrix, None, tmp_path / "MATRIX.html").read_text()
    assert "13.0 [−∞, +∞]" in text and f'href="m/report.html#{row_anchor(A3)}"' in text
