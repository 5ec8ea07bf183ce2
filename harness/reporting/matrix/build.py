"""Building the matrix: which ``results.json`` files go side by side, one column per model, one line per
claim (its cells and its test rows across models).

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

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from harness.reporting.matrix.cells import (DECIDED, EMPTY_CELL, FAILED, MIXED, NO_ROWS, ClaimCell, row_category,
                                            row_text)
from harness.reporting.matrix.read import ModelResults
from harness.verdicts.declaration import Kind, Verdict
from harness.verdicts.declared import CLAIMS, declarations_sha256, kind_of

NO_RESULTS = "failed (no results from this run)"


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
        """Paper claims (``Kind.PAPER``) that replicate on every model, on some (partly: a mixed cell with a
        replicating row), on none, and those decided on no model; failed columns do not count. Controls,
        preconditions and the suite's own claims are listed apart (``others``)."""
        models = [c.model for c in self.columns if not c.failure]
        groups: dict[str, list[dict[str, object]]] = {"every model": [], "some models": [], "no model": [],
                                                      "decided on no model": []}
        for line in self.claims:
            if kind_of(line.claim) != Kind.PAPER:
                continue
            cells = {m: line.cells[m] for m in models}
            decided = {m: c for m, c in cells.items() if c.verdict in (*DECIDED, MIXED)}
            full = [m for m, c in decided.items() if c.verdict == Verdict.REPLICATES]
            partly = [m for m, c in decided.items() if c.verdict == MIXED and c.tally.get(Verdict.REPLICATES)]
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

    def others(self) -> dict[str, list[dict[str, object]]]:
        """The claims that are not the paper's (preconditions, controls, beyond the paper) by kind, each with
        its claim-level verdict per model (failed columns left out)."""
        models = [c.model for c in self.columns if not c.failure]
        grouped: dict[str, list[dict[str, object]]] = {}
        for line in self.claims:
            if kind_of(line.claim) != Kind.PAPER:
                grouped.setdefault(kind_of(line.claim), []).append(
                    {"claim": line.claim, "verdicts": {m: str(line.cells[m].verdict) for m in models}})
        return grouped


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
        cells = {c.model: (ClaimCell.of(rows_by_model[c.model], _claim_level(c, claim)) if c.model in rows_by_model
                           else ClaimCell(FAILED if c.results is None else NO_ROWS, {},
                                          EMPTY_CELL if c.results is None else ""))
                 for c in columns}
        paper = _one_paper_value(every_row) or (str(declared.paper) if declared else "")
        lines.append(ClaimLine(claim, section, statement, paper, cells, _test_lines(rows_by_model)))
    return lines


def _claim_level(column: Column, claim: str) -> str | None:
    """The model's own claim-level verdict of ``claim`` (files written before it existed have none)."""
    verdict = (column.results.claim_verdicts.get(claim) or {}) if column.results else {}
    return verdict.get("verdict")


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
