"""Benchmarks write what they measured (``benchmark.extra_info``: ratios and their targets) into the
replication report too, so the figures sit beside the claims they serve."""

from __future__ import annotations

import pytest

from harness.reporting.rendering.benchmarks import BenchmarkResults
from harness.reporting.report import ReportBuilder


@pytest.fixture(scope="session")
def benchmark_results(report: ReportBuilder) -> BenchmarkResults:
    results = BenchmarkResults()
    report.record(results)
    return results


@pytest.fixture(autouse=True)
def benchmark_in_report(request: pytest.FixtureRequest, benchmark, benchmark_results: BenchmarkResults):
    yield
    if benchmark.extra_info:
        benchmark_results.measured[request.node.name] = dict(benchmark.extra_info)
