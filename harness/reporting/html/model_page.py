"""A model's HTML report, ``reports/<model>/report.html``: one self-contained page made from the dict
written to ``results.json`` and the report's figures (embedded).

It opens on the model, run and commit, the forest figure and the paper claims' claim-level verdicts (every
kind's after), then every test row in one table (filters by section, kind and verdict, a text search, and
counts that follow them; each row expands to its details and figure), then the figures, the timings and
the environment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.reporting.forest import FILENAME as FOREST
from harness.reporting.html.claim_figures import figure_of
from harness.reporting.html.encoding import (Figure, as_json_values, claim_anchor, embedded_figures, interval_text,
                                             number_text, row_anchor)
from harness.reporting.html.render import write_page
from harness.verdicts.declaration import Kind, Verdict
from harness.verdicts.declared import CLAIMS, kind_of

NOT_MEASURED_VERDICTS = ("skipped", "error")  # results.json's verdict_counts names for a test without a record
VERDICT_ORDER = (*(v.value for v in Verdict), *NOT_MEASURED_VERDICTS)


@dataclass
class RowView:
    """One test row of the page: what its line shows and what its details hold."""

    anchor: str
    test_id: str
    claim: str
    section: str
    kind: str
    verdict: str
    status: str
    measured: str = ""
    ci: str = ""
    n: str = ""
    passes_when: str = ""
    details: list[tuple[str, str]] = field(default_factory=list)  # (label, text), empty texts left out
    preconditions: list[tuple[str, bool]] = field(default_factory=list)
    failed_controls: list[str] = field(default_factory=list)
    figure: str | None = None

    @property
    def test(self) -> str:
        return self.test_id.split("::", 1)[-1]

    def search_text(self) -> str:
        return " ".join([self.test_id, self.claim, self.section, self.status,
                         *(text for _, text in self.details)]).lower()


@dataclass
class ClaimView:
    """A claim's claim-level verdict as ``results.json``'s ``claim_verdicts`` has it."""

    claim: str
    anchor: str
    statement: str
    verdict: str
    how: str
    rule: str
    reason: str
    note: str
    rows: list[dict]  # each of the claim's rows on the page: test, anchor, verdict, role


def write_model_page(results: dict, figure_dir: Path | None, path: Path) -> Path:
    """Write the page of ``results`` (the ``results.json`` dict) to ``path``, embedding the PNG files of
    ``figure_dir``; returns ``path``."""
    return write_page(path, "model.html.j2", **model_page_context(results, figure_dir))


def model_page_context(results: dict, figure_dir: Path | None) -> dict[str, object]:
    results = as_json_values(results)
    figures = embedded_figures(figure_dir)
    forest = figures.pop(Path(FOREST).stem, None)
    rows = [_measured_row(row, figures) for row in results["claims"]]
    rows += [_not_measured_row(row, figures) for row in results["not_measured"]]
    environment = results.get("environment") or {}
    timings = sorted((results.get("timings") or {}).items(), key=lambda item: -item[1])
    verdict_counts = results.get("verdict_counts") or {}
    return {
        "model": results["model"],
        "run_id": results.get("run_id") or "",
        "git_commit": environment.get("git_commit", ""),
        "forest": forest,
        "counts_by_kind": results.get("claim_verdict_counts_by_kind") or {},
        "claims_by_kind": _claims_by_kind(results, rows),
        "rows": rows,
        "row_counts": {v: n for v in VERDICT_ORDER if (n := sum(r.verdict == v for r in rows))},  # of the rows shown
        "expected_rows": verdict_counts.get("expected among them", 0),
        "kinds": [kind.value for kind in Kind if any(r.kind == kind.value for r in rows)],
        "page_data": {"rows": [{"id": r.anchor, "section": r.section, "kind": r.kind, "verdict": r.verdict,
                                "search": r.search_text()} for r in rows]},  # what the page's script filters on
        "figures": list(figures.values()),
        "timings": timings,
        "total_seconds": sum(seconds for _, seconds in timings),
        "environment": json.dumps(environment, indent=2, default=str),
    }


def _measured_row(row: dict, figures: dict[str, Figure]) -> RowView:
    measured = row.get("measured")
    n = f"{row.get('n')} {row.get('n_unit') or ''}".strip() if measured is not None else ""
    unit = row.get("unit") or ""
    threshold = f"{number_text(row.get('threshold'))}{unit and ' ' + unit} ({row.get('passes_when', '')})"
    p_values = [f"{name} {number_text(row[key])}" for name, key in (("p(replicates)", "p_replicates"),
                ("p(does not replicate)", "p_not_replicates")) if row.get(key) is not None]
    details = [
        ("statement", row.get("statement", "")),
        ("statistic", row.get("description", "")),
        ("paper value", row.get("paper_value", "")),
        ("measured", f"{number_text(measured)} {interval_text(row.get('ci_low'), row.get('ci_high'))} {unit}".strip()
         if measured is not None else "not measured"),
        ("threshold", threshold),
        ("threshold kind / source", " / ".join(dict.fromkeys(filter(None, (row.get("threshold_kind"),
                                                                           row.get("threshold_source")))))),
        ("CI method", row.get("ci_method", "")),
        ("n", n),
        ("n to decide", str(row["n_to_decide"]) if row.get("n_to_decide") else ""),
        ("undefined resamples", str(row["undefined_resamples"]) if row.get("undefined_resamples") else ""),
        ("one-sided p-values", ", ".join(p_values)),
        ("expected verdict", _expected_text(row)),
        ("stable over seeds", {True: "yes", False: "NO (unstable)"}.get(row.get("stable_over_seeds"), "")),
        ("details", row.get("details", "")),
        ("note", row.get("note", "")),
        ("outcome", f"pytest {row.get('outcome', '')}, {number_text(row.get('seconds'))} s"),
    ]
    return RowView(
        anchor=row_anchor(row["test_id"]), test_id=row["test_id"], claim=row["claim"],
        section=row.get("section", ""), kind=row.get("kind") or kind_of(row["claim"]),
        verdict=row["verdict"], status=row.get("status", row["verdict"]), measured=number_text(measured),
        ci=interval_text(row.get("ci_low"), row.get("ci_high")) if measured is not None else "", n=n,
        passes_when=row.get("tolerance", ""), details=[(label, text) for label, text in details if text],
        preconditions=[(name, bool(held)) for name, held in (row.get("preconditions") or {}).items()],
        failed_controls=list(row.get("failed_controls") or []), figure=figure_of(row["claim"], figures))


def _not_measured_row(row: dict, figures: dict[str, Figure]) -> RowView:
    verdict = "skipped" if row.get("outcome") == "skipped" else "error"
    declared = CLAIMS.get(row["claim"])
    details = [("statement", declared.statement if declared else ""), ("note", row.get("note", "")),
               ("outcome", f"pytest {row.get('outcome', '')}: nothing measured")]
    return RowView(anchor=row_anchor(row["test_id"]), test_id=row["test_id"], claim=row["claim"],
                   section=declared.section if declared else "", kind=kind_of(row["claim"]), verdict=verdict,
                   status=row.get("status", verdict), details=[(label, text) for label, text in details if text],
                   figure=figure_of(row["claim"], figures))


def _expected_text(row: dict) -> str:
    expected = row.get("expected_verdict")
    if not expected:
        return "not listed in the model's expectations (expected to replicate)"
    return f"{expected} (the model's expectations file lists it)"


def _claims_by_kind(results: dict, rows: list[RowView]) -> dict[str, list[ClaimView]]:
    """The claim-level verdicts grouped by kind, in ``Kind`` order (paper claims first)."""
    kinds = {row.claim: row.kind for row in rows}
    statements = {row.claim: text for row in rows for label, text in row.details if label == "statement"}
    grouped: dict[str, list[ClaimView]] = {kind.value: [] for kind in Kind}
    for claim, entry in (results.get("claim_verdicts") or {}).items():
        declared = CLAIMS.get(claim)
        roles = {r["test_id"]: r.get("role", "") for r in entry.get("rows", [])}
        view = ClaimView(
            claim=claim, anchor=claim_anchor(claim),
            statement=statements.get(claim) or (declared.statement if declared else ""),
            verdict=entry.get("verdict", ""), how=entry.get("how") or "", rule=entry.get("rule") or "",
            reason=entry.get("reason") or "", note=entry.get("note") or "",
            rows=[{"test": row.test, "anchor": row.anchor, "verdict": row.verdict,
                   "role": roles.get(row.test_id, "not measured")} for row in rows if row.claim == claim])
        grouped.setdefault(kinds.get(claim) or kind_of(claim), []).append(view)
    return {kind: views for kind, views in grouped.items() if views}
