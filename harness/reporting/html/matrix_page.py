"""The matrix's HTML page, ``reports/MATRIX.html``: one self-contained page made from the dict written to
``matrix.json`` and the matrix's figures (embedded).

It shows the files used, each model's paper-claim verdict counts, the heatmap, then one line per claim
with each model's claim-level verdict (a link to that claim on the model's page), which expands to the
claim's test rows (each a link to the row on the model's page: ``<model dir>/report.html#row-...``),
then the summary and the sweep figure. A model's directory is the one holding its ``results.json``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.reporting.html.encoding import (as_json_values, claim_anchor, element_id, embedded_figures, interval_text,
                                             number_text, row_anchor)
from harness.reporting.html.render import write_page
from harness.verdicts.declaration import Kind
from harness.verdicts.declared import kind_of

HEATMAP = "matrix_heatmap"
PAGE = "report.html"  # a model's page, beside its results.json
EMPTY = "—"
CELL_VERDICTS = ("replicates", "does not replicate", "inconclusive", "mixed", "not applicable", "not interpretable",
                 "skipped", "crashed", "failed")  # the order counts are listed in


def write_matrix_page(matrix: dict, figure_dir: Path | None, path: Path) -> Path:
    """Write the page of ``matrix`` (the ``matrix.json`` dict) to ``path``, embedding the PNG files of
    ``figure_dir``; returns ``path``."""
    return write_page(path, "matrix.html.j2", **matrix_page_context(matrix, figure_dir))


def matrix_page_context(matrix: dict, figure_dir: Path | None) -> dict[str, object]:
    matrix = as_json_values(matrix)
    figures = embedded_figures(figure_dir)
    models = [_model_view(entry) for entry in matrix.get("models", [])]
    pages = {m["model"]: m["page"] for m in models}
    sections: dict[str, list[dict]] = {}
    for line in matrix.get("claims", []):
        sections.setdefault(line.get("section", ""), []).append(_claim_view(line, pages))
    paper_counts = {m["model"]: Counter(c["cells"][m["model"]]["verdict"] or "no rows"
                                        for lines in sections.values() for c in lines
                                        if c["kind"] == Kind.PAPER.value and m["model"] in c["cells"])
                    for m in models}
    return {
        "run_id": matrix.get("run_id"),
        "declarations_note": matrix.get("declarations_note", ""),
        "models": models,
        "left_out": matrix.get("left_out", []),
        "paper_counts": {model: {v: counts[v] for v in sorted(counts, key=_verdict_rank)}
                         for model, counts in paper_counts.items()},
        "heatmap": figures.pop(HEATMAP, None),
        "sections": sections,
        "summary": _summary(matrix.get("summary") or {}, matrix.get("others") or {}),
        "figures": list(figures.values()),
    }


def _model_view(entry: dict) -> dict[str, object]:
    """A column: the model, its status and, when it has results, the relative link to its page."""
    results_path = entry.get("path")
    page = f"{Path(results_path).parent.name}/{PAGE}" if results_path and not entry.get("failed") else None
    return {"model": entry["model"], "failed": entry.get("failed"), "page": page,
            "status": ": ".join(filter(None, [entry.get("failed"), entry.get("failure_detail")])) or "ok",
            **{key: entry.get(key) or "" for key in ("run_id", "git_commit", "generated")}}


def _claim_view(line: dict, pages: dict[str, str | None]) -> dict[str, object]:
    claim = line["claim"]
    tests = [{"test": test["test_id"].split("::", 1)[-1], "paper_value": test.get("paper_value", ""),
              "cells": {model: {**cell, "value": _value_text(cell),
                                "href": f"{pages[model]}#{row_anchor(test['test_id'])}" if pages.get(model) else None}
                        for model, cell in test.get("cells", {}).items()}}
             for test in line.get("tests", [])]
    cells = {model: {**cell, "detail": _cell_detail(cell, [test["cells"].get(model) for test in tests]),
                     "href": f"{pages[model]}#{claim_anchor(claim)}" if pages.get(model) and cell.get("tally")
                     else None}
             for model, cell in line.get("cells", {}).items()}
    return {"claim": claim, "anchor": element_id("matrix", claim), "kind": kind_of(claim),
            "statement": line.get("statement", ""), "paper_value": line.get("paper_value", ""), "cells": cells,
            "tests": tests}


def _cell_detail(cell: dict, test_cells: list[dict | None]) -> str:
    """What a claim cell shows under its verdict: one row's value and CI, else the tally of its rows."""
    measured = [c for c in test_cells if c is not None]
    if len(measured) == 1 and measured[0].get("measured") is not None:
        return _value_text(measured[0])
    text, verdict = str(cell.get("text") or ""), str(cell.get("verdict") or "")
    return text.removeprefix(verdict).removeprefix(":").strip() if verdict else text


def _value_text(cell: dict) -> str:
    """A test cell's value and 95% CI ("0.758 [0.313, 0.966]", ±∞ for an unbounded end); "" unmeasured."""
    if cell.get("measured") is None:
        return ""
    return f"{number_text(cell['measured'])} {interval_text(cell.get('ci_low'), cell.get('ci_high'))}".strip()


def _summary(summary: dict, others: dict) -> list[tuple[str, list[str]]]:
    """``matrix.json``'s summary as (title, items): the paper claims by where they replicate, then the others
    by kind with each model's verdict (as MATRIX.md words it)."""
    lines = []
    for group, entries in summary.items():
        title = ("Decided on no model (not applicable, skipped or crashed everywhere)"
                 if group == "decided on no model" else f"Replicates on {group}")
        where = lambda e: [*e["replicates on"], *(f"partly {m}" for m in e["partly on"])]  # noqa: E731
        lines.append((title, [f"{e['claim']} ({', '.join(where(e))})" if group == "some models" else e["claim"]
                              for e in entries]))
    for kind, entries in others.items():
        lines.append((f"Not paper claims, {kind}",
                      [f"{e['claim']} ({', '.join(f'{m}: {v or EMPTY}' for m, v in e['verdicts'].items())})"
                       for e in entries]))
    return lines


def _verdict_rank(verdict: str) -> int:
    return CELL_VERDICTS.index(verdict) if verdict in CELL_VERDICTS else len(CELL_VERDICTS)
