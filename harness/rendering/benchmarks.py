"""Renderers: the benchmarks' measured ratios (pytest-benchmark ``extra_info``)."""

from __future__ import annotations

from tabulate import tabulate

from harness.rendering import render
from harness.report import BenchmarkResults


@render.register
def _benchmarks(results: BenchmarkResults, report) -> None:
    if not results.measured:
        return
    report.data["benchmarks"] = results.measured
    rows = [[name, key, f"{value:.3g}" if isinstance(value, float) else value]
            for name, values in results.measured.items() for key, value in values.items()]
    report.add_section("Benchmarks (pytest-benchmark, this run)",
                       tabulate(rows, headers=["benchmark", "quantity", "value"], tablefmt="github"))
