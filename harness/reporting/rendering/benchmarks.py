"""Renderers: the benchmarks' measured ratios (pytest-benchmark ``extra_info``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tabulate import tabulate

from harness.reporting.rendering import render


@dataclass
class BenchmarkResults:
    """What each benchmark measured (its ``extra_info``: ratios and their targets), by test name."""

    measured: dict[str, dict[str, object]] = field(default_factory=dict)


@render.register
def _benchmarks(results: BenchmarkResults, report) -> None:
    if not results.measured:
        return
    report.data["benchmarks"] = results.measured
    rows = [[name, key, f"{value:.3g}" if isinstance(value, float) else value]
            for name, values in results.measured.items() for key, value in values.items()]
    report.add_section("Benchmarks (pytest-benchmark, this run)",
                       tabulate(rows, headers=["benchmark", "quantity", "value"], tablefmt="github"))
