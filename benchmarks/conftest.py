"""Benchmarks write what they measured (``benchmark.extra_info``: ratios and their targets) into the
replication report too, so the figures sit beside the claims they serve."""

from __future__ import annotations

import pytest
from tabulate import tabulate

from harness.report import ReportBuilder


@pytest.fixture(autouse=True)
def benchmark_in_report(request: pytest.FixtureRequest, benchmark, report: ReportBuilder):
    yield
    info = dict(benchmark.extra_info)
    if not info:
        return
    measured = report.data.setdefault("benchmarks", {})
    measured[request.node.name] = info
    rows = [[name, key, f"{value:.3g}" if isinstance(value, float) else value]
            for name, values in measured.items() for key, value in values.items()]
    report.add_section("Benchmarks (pytest-benchmark, this run)",
                       tabulate(rows, headers=["benchmark", "quantity", "value"], tablefmt="github"))
