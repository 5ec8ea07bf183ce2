"""The cross-model replication matrix: every model's ``results.json`` merged into one table of claims.

    python -m harness.matrix reports/ [more dirs or results.json files] [--out DIR] [--run-id ID] [--models a,b]

Writes ``MATRIX.md``, ``matrix.json``, ``figures/matrix_heatmap.png`` and ``figures/sweep_relative_depth.png``
under ``--out`` (default: the first reports directory given). A directory is searched for ``*/results.json``
one level down and for ``results.json`` in it.

What goes side by side (every file left out is named in ``MATRIX.md`` with the reason):

- only results decided under the same claim declarations: the current code's ``declarations_sha256()``;
  if no file matches it but all agree with each other, their common digest (said so);
- with ``run_id``, only files of that run; with ``expected_models``, exactly those models: one without a
  results file gets a column marked "failed (no results from this run)"; a model whose every claim test
  crashed, or that ``failed_models`` names, is marked failed too;
- of two files of one model, the newer (``environment.generated_unix_time``); the other is superseded;
- a file that is not valid JSON or lacks a required key is skipped and named; the rest still merge.

A claim has several test rows per model (D1 over layers and method pairs, DAS rows keyed by layers that
differ with depth): its cell is the row's "verdict value [CI]" for one row, else the claim-level verdict
(``claim_verdict``) with the tally.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tabulate import tabulate

from harness.claims_declared import CLAIMS, declarations_sha256

REPLICATES, DOES_NOT = "replicates", "does not replicate"
INCONCLUSIVE, NOT_APPLICABLE = "inconclusive", "not applicable"
MIXED, SKIPPED, CRASHED, FAILED, NO_ROWS = "mixed", "skipped", "crashed", "failed", ""
DECIDED = (REPLICATES, DOES_NOT, INCONCLUSIVE)
TALLY_WORDS = {DOES_NOT: "do not", INCONCLUSIVE: "inconclusive", NOT_APPLICABLE: "n/a", SKIPPED: "skipped",
               CRASHED: "crashed"}
CRASH_OUTCOMES = ("failed", "error")
EMPTY_CELL = "—"
NO_RESULTS = "failed (no results from this run)"
SWEEP_METHODS = ("mean_diff", "kmeans", "probe", "pca", "das", "random")
REQUIRED_KEYS = {"model": str, "claims": list, "not_measured": list, "environment": dict}
ROW_KEYS = {"claims": ("test_id", "claim", "verdict"), "not_measured": ("test_id", "claim")}


# Reading ---------------------------------------------------------------------------------------------

@dataclass
class ModelResults:
    """One ``results.json``: its model's claim rows and what the matrix needs of the rest. A file that
    could not be read has ``problem`` set and nothing else."""

    path: Path
    model: str = ""
    run_id: str = ""
    digest: str | None = None
    claims: list[dict] = field(default_factory=list)
    not_measured: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    problem: str | None = None

    @property
    def generated(self) -> float:
        value = self.environment.get("generated_unix_time")
        return float(value) if isinstance(value, (int, float)) else 0.0

    @property
    def crashed(self) -> bool:
        """Nothing was measured: no claim row, and every test that ran crashed (failed or errored)."""
        return not self.claims and all(row.get("outcome") in CRASH_OUTCOMES for row in self.not_measured)

    def describe(self) -> dict[str, object]:
        """The file as the matrix lists it."""
        generated = self.environment.get("generated_unix_time")
        return {"model": self.model, "path": str(self.path), "run_id": self.run_id,
                "git_commit": self.environment.get("git_commit", ""),
                "generated": _utc(generated) if isinstance(generated, (int, float)) else "",
                "declarations_sha256": self.digest, "n_layers": self.environment.get("n_layers"),
                "architecture": self.environment.get("architecture")}


def find_results(paths: Iterable[Path | str]) -> list[Path]:
    """The ``results.json`` files named, or found in a named directory (in it, and one level down)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [p for p in [path / "results.json", *sorted(path.glob("*/results.json"))] if p.is_file()]
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def load_results(paths: Iterable[Path | str]) -> list[ModelResults]:
    """Each ``results.json`` found under ``paths`` (see ``find_results``); one that cannot be read or lacks
    a required key comes back with ``problem`` saying what is wrong, so the others still merge."""
    return [_load_one(path) for path in find_results(paths)]


def _load_one(path: Path) -> ModelResults:
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        return ModelResults(path, problem=f"cannot be read: {error}")
    except json.JSONDecodeError as error:
        return ModelResults(path, problem=f"not valid JSON: {error}")
    problem = _shape_problem(content)
    if problem:
        return ModelResults(path, problem=problem)
    return ModelResults(path, model=content["model"], run_id=str(content.get("run_id") or ""),
                        digest=content.get("declarations_sha256"), claims=content["claims"],
                        not_measured=content["not_measured"], data=content.get("data") or {},
                        environment=content["environment"])


def _shape_problem(content: object) -> str | None:
    if not isinstance(content, dict):
        return f"the top level is a {type(content).__name__}, not an object"
    for key, kind in REQUIRED_KEYS.items():
        if key not in content:
            return f"lacks the required key {key!r}"
        if not isinstance(content[key], kind):
            return f"{key!r} is a {type(content[key]).__name__}, not a {kind.__name__}"
    for key, required in ROW_KEYS.items():
        for index, row in enumerate(content[key]):
            if not isinstance(row, dict):
                return f"{key}[{index}] is a {type(row).__name__}, not an object"
            missing = [k for k in required if k not in row]
            if missing:
                return f"{key}[{index}] lacks {', '.join(map(repr, missing))}"
    return None


# Cells -----------------------------------------------------------------------------------------------

def row_category(row: dict) -> str:
    """A test row's verdict; a test that measured nothing (a ``not_measured`` row) is skipped or crashed."""
    if row.get("verdict") in (*DECIDED, NOT_APPLICABLE):
        return row["verdict"]
    return SKIPPED if row.get("outcome") == SKIPPED else CRASHED


def row_text(row: dict) -> str:
    """One test row: "verdict value [lo, hi]" (3 significant digits), or what happened instead."""
    category = row_category(row)
    value = row.get("measured")
    if category not in (*DECIDED, NOT_APPLICABLE) or not _finite(value):
        return category
    ci = f" [{_g(row.get('ci_low'))}, {_g(row.get('ci_high'))}]" if _finite(row.get("ci_low")) else ""
    return f"{category} {_g(value)}{ci}"


def claim_verdict(tally: Mapping[str, int]) -> str:
    """The claim-level verdict of a model's rows: the one verdict every decided row shares (replicates,
    does not replicate, inconclusive), else mixed; not applicable when no row was decided and some is n/a;
    else crashed or skipped."""
    decided = [verdict for verdict in DECIDED if tally.get(verdict)]
    if len(decided) == 1:
        return decided[0]
    if decided:
        return MIXED
    return next((c for c in (NOT_APPLICABLE, CRASHED, SKIPPED) if tally.get(c)), NO_ROWS)


def tally_text(tally: Mapping[str, int]) -> str:
    """"5/8 replicate, 2 do not, 1 inconclusive" (categories with no row left out; without a decided row,
    only what the rows were: "4 n/a")."""
    total = sum(tally.values())
    parts = [f"{tally.get(REPLICATES, 0)}/{total} replicate"] if any(tally.get(v) for v in DECIDED) else []
    parts += [f"{tally[c]} {word}" for c, word in TALLY_WORDS.items() if tally.get(c)]
    return ", ".join(parts)


@dataclass
class ClaimCell:
    """A claim on one model: its verdict, the tally of its test rows and the cell text."""

    verdict: str
    tally: dict[str, int]
    text: str

    @classmethod
    def of(cls, rows: Sequence[dict]) -> "ClaimCell":
        tally = dict(Counter(row_category(row) for row in rows))
        verdict = claim_verdict(tally)
        if len(rows) == 1:
            return cls(verdict, tally, row_text(rows[0]))
        return cls(verdict, tally, f"{verdict}: {tally_text(tally)}")

    @classmethod
    def failed(cls) -> "ClaimCell":
        return cls(FAILED, {}, EMPTY_CELL)

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict, "tally": self.tally, "text": self.text}


# The matrix ------------------------------------------------------------------------------------------

@dataclass
class Column:
    """A model's column: its results (None when it has none) and, when failed, why."""

    model: str
    results: ModelResults | None
    failure: str | None = None  # "failed (...)", short: the column's header carries it
    detail: str = ""  # more on the failure (the first crash's note)

    @property
    def header(self) -> str:
        return f"{self.model}: {self.failure}" if self.failure else self.model

    def rows(self) -> list[dict]:
        """Every test row of the model: measured claim rows and the tests that measured nothing."""
        return [*self.results.claims, *self.results.not_measured] if self.results else []


@dataclass
class TestLine:
    """One claim test across models (its paper value, and each model's row text; "" where it has none)."""

    test_id: str
    paper_value: str
    cells: dict[str, dict[str, object]]


@dataclass
class ClaimLine:
    """One claim across models."""

    claim: str
    section: str
    statement: str
    paper_value: str
    cells: dict[str, ClaimCell]
    tests: list[TestLine]


@dataclass
class LeftOut:
    path: str
    reason: str


@dataclass
class Matrix:
    """What ``write_matrix`` writes: the columns, the files used and left out, the claims, the sweep."""

    columns: list[Column]
    claims: list[ClaimLine]
    left_out: list[LeftOut]
    digest: str
    digest_note: str
    run_id: str | None

    @property
    def used(self) -> list[ModelResults]:
        return [c.results for c in self.columns if c.results is not None]

    def sections(self) -> dict[str, list[ClaimLine]]:
        grouped: dict[str, list[ClaimLine]] = {}
        for line in self.claims:
            grouped.setdefault(line.section, []).append(line)
        return grouped

    def summary(self) -> dict[str, list[dict[str, object]]]:
        """Claims that replicate on every model, on some (partly: a mixed cell with a replicating row),
        on none, and those decided on no model; failed columns do not count."""
        models = [c.model for c in self.columns if not c.failure]
        groups: dict[str, list[dict[str, object]]] = {"every model": [], "some models": [], "no model": [],
                                                      "decided on no model": []}
        for line in self.claims:
            cells = {m: line.cells[m] for m in models}
            decided = {m: c for m, c in cells.items() if c.verdict in (*DECIDED, MIXED)}
            full = [m for m, c in decided.items() if c.verdict == REPLICATES]
            partly = [m for m, c in decided.items() if c.verdict == MIXED and c.tally.get(REPLICATES)]
            entry = {"claim": line.claim, "replicates on": full, "partly on": partly,
                     "decided on": list(decided)}
            if not decided:
                groups["decided on no model"].append(entry)
            elif len(full) == len(decided):
                groups["every model"].append(entry)
            elif full or partly:
                groups["some models"].append(entry)
            else:
                groups["no model"].append(entry)
        return groups


def build_matrix(results: Sequence[ModelResults], *, run_id: str | None = None,
                 expected_models: Sequence[str] | None = None,
                 failed_models: Mapping[str, str] | None = None) -> Matrix:
    """Select the files that go side by side (see the module docstring) and compute every cell."""
    left_out = [LeftOut(str(r.path), f"unreadable: {r.problem}") for r in results if r.problem]
    usable = [r for r in results if not r.problem]
    if run_id is not None:
        left_out += [LeftOut(str(r.path), f"{r.model}: from another run (run_id {r.run_id or 'none'!r})")
                     for r in usable if r.run_id != run_id]
        usable = [r for r in usable if r.run_id == run_id]
    if expected_models is not None:
        left_out += [LeftOut(str(r.path), f"{r.model}: not among the models of this matrix")
                     for r in usable if r.model not in expected_models]
        usable = [r for r in usable if r.model in expected_models]
    digest, digest_note = _reference_digest(usable)
    left_out += [LeftOut(str(r.path), f"{r.model}: decided under other declarations "
                                      f"({(r.digest or 'no digest')[:12]})") for r in usable if r.digest != digest]
    usable = [r for r in usable if r.digest == digest]
    newest: dict[str, ModelResults] = {}
    for r in usable:
        if r.model not in newest or r.generated >= newest[r.model].generated:
            newest[r.model] = r
    left_out += [LeftOut(str(r.path), f"{r.model}: superseded by the newer {newest[r.model].path}")
                 for r in usable if newest[r.model] is not r]
    columns = _columns(newest, expected_models, failed_models or {})
    return Matrix(columns, _claim_lines(columns), left_out, digest, digest_note, run_id)


def _reference_digest(usable: Sequence[ModelResults]) -> tuple[str, str]:
    current = declarations_sha256()
    digests = {r.digest for r in usable}
    if usable and current not in digests and len(digests) == 1 and None not in digests:
        common = digests.pop()
        return common, (f"no file was decided under the current declarations ({current[:12]}); every file "
                        f"agrees on {common[:12]}, used instead")
    return current, f"the current code's declarations ({current[:12]})"


def _columns(newest: Mapping[str, ModelResults], expected: Sequence[str] | None,
             failed: Mapping[str, str]) -> list[Column]:
    names = list(expected) if expected is not None else list(newest)
    columns = []
    for name in names:
        results = newest.get(name)
        failure = failed.get(name)
        if results is None:
            failure = f"failed ({failure})" if failure else NO_RESULTS
        elif failure:
            failure = f"failed ({failure})"
        elif results.crashed:
            failure = "failed (every claim test crashed)"
        notes = [row.get("note", "") for row in results.not_measured if row.get("note")] if failure and results else []
        columns.append(Column(name, results, failure, notes[0][:200] if notes else ""))
    return columns


def _claim_lines(columns: Sequence[Column]) -> list[ClaimLine]:
    by_claim: dict[str, dict[str, list[dict]]] = {}  # claim -> model -> rows
    for column in columns:
        for row in column.rows():
            by_claim.setdefault(row["claim"], {}).setdefault(column.model, []).append(row)
    lines = []
    for claim in _claim_order(by_claim):
        rows_by_model = by_claim[claim]
        every_row = [row for rows in rows_by_model.values() for row in rows]
        declared = CLAIMS.get(claim)
        section = declared.section if declared else next((r["section"] for r in every_row if r.get("section")), "?")
        statement = declared.statement if declared else next((r["statement"] for r in every_row
                                                              if r.get("statement")), "")
        cells = {c.model: (ClaimCell.of(rows_by_model[c.model]) if c.model in rows_by_model
                           else ClaimCell(FAILED if c.results is None else NO_ROWS, {},
                                          EMPTY_CELL if c.results is None else ""))
                 for c in columns}
        paper = _one_paper_value(every_row) or (str(declared.paper) if declared else "")
        lines.append(ClaimLine(claim, section, statement, paper, cells, _test_lines(rows_by_model)))
    return lines


def _claim_order(claims: Iterable[str]) -> list[str]:
    """Declared claims grouped by section, sections in order of their first claim in ``CLAIMS``; claims
    the current declarations do not know come last."""
    sections: dict[str, list[str]] = {}
    for claim in CLAIMS.values():
        sections.setdefault(claim.section, []).append(claim.id)
    declared = [claim for ids in sections.values() for claim in ids]
    present = set(claims)
    return [c for c in declared if c in present] + sorted(present - set(declared))


def _test_lines(rows_by_model: Mapping[str, list[dict]]) -> list[TestLine]:
    tests: dict[str, TestLine] = {}
    for model, rows in rows_by_model.items():
        for row in rows:
            line = tests.setdefault(row["test_id"], TestLine(row["test_id"], "", {}))
            line.paper_value = line.paper_value or row.get("paper_value", "")
            line.cells[model] = {"verdict": row_category(row), "measured": row.get("measured"),
                                 "ci_low": row.get("ci_low"), "ci_high": row.get("ci_high"), "text": row_text(row)}
    return list(tests.values())


def _one_paper_value(rows: Iterable[dict]) -> str:
    values = {row["paper_value"] for row in rows if row.get("paper_value")}
    return values.pop() if len(values) == 1 else ""


# Writing ---------------------------------------------------------------------------------------------

def write_matrix(matrix: Matrix, out_dir: Path | str) -> Path:
    """Write ``MATRIX.md``, ``matrix.json`` and the two figures under ``out_dir``; returns MATRIX.md's path."""
    out_dir = Path(out_dir)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    sweep = sweep_by_relative_depth(matrix)
    drawn = [path for path in (_draw(figures / "matrix_heatmap.png", lambda f: draw_heatmap(f, matrix)),
                               _draw(figures / "sweep_relative_depth.png", lambda f: draw_sweep(f, sweep)))
             if path]
    (out_dir / "matrix.json").write_text(json.dumps(matrix_json(matrix, sweep), indent=2, default=str) + "\n")
    path = out_dir / "MATRIX.md"
    path.write_text(matrix_markdown(matrix, sweep, [p.relative_to(out_dir) for p in drawn]))
    return path


def matrix_json(matrix: Matrix, sweep: Sweep) -> dict[str, object]:
    return {
        "run_id": matrix.run_id,
        "declarations_sha256": matrix.digest,
        "declarations_note": matrix.digest_note,
        "models": [{"model": c.model, "failed": c.failure, "failure_detail": c.detail,
                    **(c.results.describe() if c.results else {})}
                   for c in matrix.columns],
        "left_out": [{"path": item.path, "reason": item.reason} for item in matrix.left_out],
        "claims": [{"claim": line.claim, "section": line.section, "statement": line.statement,
                    "paper_value": line.paper_value, "cells": {m: c.to_json() for m, c in line.cells.items()},
                    "tests": [{"test_id": t.test_id, "paper_value": t.paper_value, "cells": t.cells}
                              for t in line.tests]}
                   for line in matrix.claims],
        "summary": matrix.summary(),
        "sweep_relative_depth": {"ld_recovered": sweep.curves, "without_sweep": sweep.missing},
    }


def matrix_markdown(matrix: Matrix, sweep: Sweep, figures: Sequence[Path]) -> str:
    headers = [c.header for c in matrix.columns]
    lines = [
        "# Cross-model replication matrix",
        "",
        "Tigges, Hollinsworth, Geiger, Nanda (2023), *Linear Representations of Sentiment in Large Language "
        "Models*, claim by claim on every model. Generated by `python -m harness.matrix`; do not edit by hand.",
        "",
        f"Run: `{matrix.run_id}`." if matrix.run_id else "Run: every run given (no `--run-id`).",
        f"Declarations: {matrix.digest_note}.",
        "",
        "## Results used",
        "",
        _table([[c.model, ": ".join(filter(None, [c.failure, c.detail])) or "ok", *_file_cells(c)]
                for c in matrix.columns], ["model", "status", "run_id", "git commit", "generated (UTC)", "file"]),
        "",
    ]
    if matrix.left_out:
        lines += ["### Left out", ""] + [f"- `{item.path}`: {item.reason}" for item in matrix.left_out] + [""]
    lines += [
        "## Claims by model",
        "",
        "One row per claim. A claim with one test row shows its verdict, value and 95% CI; with several "
        "(layers, methods, cases), the claim-level verdict (the verdict every decided row shares, else *mixed*; "
        "not-applicable, skipped and crashed rows decide nothing) and the tally of its rows. The rows are in "
        "[Claim tests in detail](#claim-tests-in-detail).",
        "",
    ]
    for section, claim_lines in matrix.sections().items():
        rows = [[line.claim, line.statement, line.paper_value, *(line.cells[c.model].text for c in matrix.columns)]
                for line in claim_lines]
        lines += [f"### {section}", "", _table(rows, ["claim", "statement", "paper value (model)", *headers]), ""]
    lines += ["## Summary", ""] + _summary_lines(matrix) + [""]
    lines += ["## Figures", ""] + [f"![{p.stem}]({p.as_posix()})" for p in figures] + [""]
    lines += ["`sweep_relative_depth.png`: % logit difference recovered by patching each method's direction on "
              "ToyMovieReview against relative depth (layer / n_layers), as the paper compared models of different "
              "depth." + (f" No sweep data (not drawn): {', '.join(sweep.missing)}." if sweep.missing else ""), ""]
    lines += ["## Claim tests in detail", ""]
    for section, claim_lines in matrix.sections().items():
        rows = [[line.claim, test.test_id.split("::", 1)[-1], test.paper_value,
                 *(test.cells.get(c.model, {}).get("text", EMPTY_CELL if c.results is None else "")
                   for c in matrix.columns)]
                for line in claim_lines for test in line.tests]
        lines += [f"### {section}", "", _table(rows, ["claim", "test", "paper value", *headers]), ""]
    return "\n".join(lines)


def _file_cells(column: Column) -> list[str]:
    if column.results is None:
        return ["", "", "", ""]
    described = column.results.describe()
    return [described["run_id"] or "(none)", described["git_commit"], described["generated"], described["path"]]


def _summary_lines(matrix: Matrix) -> list[str]:
    lines = []
    for group, entries in matrix.summary().items():
        described = []
        for entry in entries:
            where = list(entry["replicates on"]) + [f"partly {m}" for m in entry["partly on"]]
            described.append(f"{entry['claim']} ({', '.join(where)})" if group == "some models" else entry["claim"])
        lines.append(f"- Replicates on {group} ({len(entries)}): {', '.join(described) or 'none'}"
                     if group != "decided on no model" else
                     f"- Decided on no model (not applicable, skipped or crashed everywhere) ({len(entries)}): "
                     f"{', '.join(described) or 'none'}")
    return lines


def _table(rows: list[list[str]], headers: list[str]) -> str:
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731  (statements quote |cos|)
    return tabulate([[escape(c) for c in row] for row in rows], headers=[escape(h) for h in headers],
                    tablefmt="github")


# Figures ---------------------------------------------------------------------------------------------

COLOURS = {REPLICATES: "#4caf50", DOES_NOT: "#e53935", INCONCLUSIVE: "#fdd835", MIXED: "#fb8c00",
           NOT_APPLICABLE: "#d9d9d9", SKIPPED: "#ffffff", CRASHED: "#757575", NO_ROWS: "#ffffff", FAILED: "#000000"}
LEGEND = (REPLICATES, DOES_NOT, INCONCLUSIVE, MIXED, NOT_APPLICABLE, SKIPPED, CRASHED, FAILED)


@dataclass
class Sweep:
    """Each model's ToyMovieReview sweep against relative depth: ``curves[method][model]`` is a list of
    ``[layer / n_layers, % LD recovered, ci_low, ci_high]``; ``missing`` names models without one."""

    curves: dict[str, dict[str, list[list[float | None]]]]
    missing: list[str]


def sweep_by_relative_depth(matrix: Matrix) -> Sweep:
    curves: dict[str, dict[str, list[list[float | None]]]] = {}
    missing = []
    for column in matrix.columns:
        results = column.results
        sweep = ((results.data.get("toy_sweep") or {}).get("ld_recovered") if results else None) or {}
        intervals = ((results.data.get("toy_sweep_ci") or {}).get("ld_recovered") if results else None) or {}
        n_layers = results.environment.get("n_layers") if results else None
        if not sweep or not isinstance(n_layers, int) or n_layers < 1:
            why = "no results" if results is None else "no toy_sweep data" if not sweep else "n_layers unknown"
            missing.append(f"{column.model} ({why})")
            continue
        for method, by_layer in sweep.items():
            points = []
            for layer, value in sorted(by_layer.items(), key=lambda item: int(item[0])):
                low, high = (intervals.get(method, {}).get(layer) or [None, None])[:2]
                points.append([int(layer) / n_layers, value, low, high])
            curves.setdefault(method, {})[column.model] = points
    order = [m for m in SWEEP_METHODS if m in curves] + sorted(set(curves) - set(SWEEP_METHODS))
    return Sweep({method: curves[method] for method in order}, missing)


def draw_heatmap(figure, matrix: Matrix) -> None:
    """Claims (rows) by models (columns), coloured by the claim-level verdict, annotated with the tally."""
    from matplotlib.patches import Patch, Rectangle

    claims, columns = matrix.claims, matrix.columns
    figure.set_size_inches(max(6.0, 1.6 * len(columns) + 3.5), max(3.0, 0.32 * len(claims) + 1.8))
    ax = figure.add_subplot()
    for y, line in enumerate(claims):
        for x, column in enumerate(columns):
            cell = line.cells[column.model]
            verdict = FAILED if column.failure else cell.verdict
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=COLOURS[verdict], edgecolor="white",
                                   hatch="//" if verdict == FAILED else None))
            ax.text(x + 0.5, y + 0.5, _annotation(cell, verdict), ha="center", va="center", fontsize=7,
                    color="white" if verdict in (FAILED, CRASHED, DOES_NOT) else "black")
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(claims), 0)
    ax.set_xticks([x + 0.5 for x in range(len(columns))],
                  [c.model + ("\n(failed)" if c.failure else "") for c in columns], rotation=20, ha="right")
    ax.set_yticks([y + 0.5 for y in range(len(claims))], [f"{l.claim} {l.section}" for l in claims], fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.legend(handles=[Patch(facecolor=COLOURS[v], edgecolor="grey", hatch="//" if v == FAILED else None, label=v)
                       for v in LEGEND], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    ax.set_title("Claim-level verdict per model (cell: replicating rows / rows)", fontsize=9)


def _annotation(cell: ClaimCell, verdict: str) -> str:
    """Several decided rows: "replicating / rows"; else the verdict, abbreviated."""
    total = sum(cell.tally.values())
    if verdict in (*DECIDED, MIXED) and total > 1:
        return f"{cell.tally.get(REPLICATES, 0)}/{total}"
    return {REPLICATES: "rep", DOES_NOT: "not", INCONCLUSIVE: "inc", NOT_APPLICABLE: "n/a"}.get(verdict, verdict)


def draw_sweep(figure, sweep: Sweep) -> None:
    """One panel per method, one line per model: % LD recovered against layer / n_layers (95% CI shaded)."""
    methods = list(sweep.curves)
    if not methods:
        ax = figure.add_subplot()
        ax.text(0.5, 0.5, "no model has ToyMovieReview sweep data", ha="center", va="center")
        ax.set_axis_off()
        return
    n_cols = min(3, len(methods))
    n_rows = math.ceil(len(methods) / n_cols)
    figure.set_size_inches(4.2 * n_cols, 3.2 * n_rows)
    axes = figure.subplots(n_rows, n_cols, squeeze=False, sharex=True)
    for ax, method in zip(axes.flat, methods):
        for model, points in sweep.curves[method].items():
            depth, value = [p[0] for p in points], [p[1] for p in points]
            (line,) = ax.plot(depth, value, marker=".", label=model)
            if all(p[2] is not None for p in points):
                ax.fill_between(depth, [p[2] for p in points], [p[3] for p in points], color=line.get_color(),
                                alpha=0.15, linewidth=0)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.axhline(100, color="grey", linewidth=0.6, linestyle="--")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("relative depth (layer / n_layers)", fontsize=8)
        ax.set_ylabel("% logit difference recovered", fontsize=8)
    for ax in list(axes.flat)[len(methods):]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)


def _draw(path: Path, draw) -> Path | None:
    """Render one figure; a figure that fails is named and skipped (the tables are still written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(dpi=110, layout="constrained")
    try:
        draw(figure)
        figure.savefig(path)
    except Exception as error:  # noqa: BLE001  a broken figure must not lose the matrix
        print(f"figure {path.name} could not be drawn: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    finally:
        plt.close(figure)
    return path


# Helpers and the command line ----------------------------------------------------------------------

def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _g(value: object) -> str:
    return f"{value:.3g}" if _finite(value) else "?"


def _utc(unix_time: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_time))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.matrix", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path,
                        help="reports directories (searched for */results.json) or results.json files")
    parser.add_argument("--out", type=Path, default=None,
                        help="where MATRIX.md, matrix.json and figures/ go (default: the first directory given)")
    parser.add_argument("--run-id", default=None, help="only files of this run (results.json's run_id)")
    parser.add_argument("--models", default=None,
                        help="comma-separated model names: exactly these columns (one without results is "
                             "marked failed)")
    args = parser.parse_args(argv)
    results = load_results(args.paths)
    expected = [m for m in args.models.split(",") if m] if args.models else None
    matrix = build_matrix(results, run_id=args.run_id, expected_models=expected)
    if not matrix.used:
        reasons = [f"  {item.path}: {item.reason}" for item in matrix.left_out] or \
                  [f"  no results.json found under {', '.join(map(str, args.paths))}"]
        print("harness.matrix: no usable results.json:\n" + "\n".join(reasons), file=sys.stderr)
        return 2
    first = args.paths[0]
    out = args.out or (first if first.is_dir() else first.parent.parent)
    path = write_matrix(matrix, out)
    for item in matrix.left_out:
        print(f"left out {item.path}: {item.reason}", file=sys.stderr)
    print(f"replication matrix: {path} ({len(matrix.used)} of {len(results)} files, "
          f"{len(matrix.columns)} models, {len(matrix.claims)} claims)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
