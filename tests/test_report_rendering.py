"""The report renders recorded results at write time through the renderer registered for their type."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from harness.rendering import render
from harness.report import ReportBuilder


@dataclass(frozen=True)
class _Measured:
    value: float


@render.register
def _render_measured(result: _Measured, report) -> None:
    report.add_section("Measured", f"value {result.value}")
    report.data["measured"] = result.value


def test_recorded_results_are_rendered_when_written(tmp_path):
    builder = ReportBuilder(model_name="tiny", settings={})
    builder.record(_Measured(1.5))
    assert builder.sections == {}  # nothing is formatted before the report is written
    builder.write(tmp_path)
    assert "## Measured\n\nvalue 1.5" in (tmp_path / "REPORT.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["data"]["measured"] == 1.5


def test_a_result_without_renderer_is_named(tmp_path):
    builder = ReportBuilder(model_name="tiny", settings={})
    builder.record(object())
    with pytest.raises(TypeError, match="no renderer for object"):
        builder.write(tmp_path)


def test_timed_adds_up_a_stage_and_survives_an_exception():
    builder = ReportBuilder(model_name="tiny", settings={})
    with builder.timed("stage"):
        pass
    with pytest.raises(RuntimeError), builder.timed("stage"):
        raise RuntimeError
    assert list(builder.timings) == ["stage"] and builder.timings["stage"] >= 0
