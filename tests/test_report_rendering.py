"""The report renders recorded results at write time through the renderer registered for their type."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from harness.reporting.rendering import render
from harness.reporting.report import ReportBuilder
from harness.verdicts.declaration import Verdict


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


@dataclass(frozen=True)
class _PerSeed:
    value: float


@render.register
def _render_per_seed(result: _PerSeed, report) -> None:
    report.add_section("Shared", f"value {result.value}, rendered under seed {report.rendering_seed}")
    report.add_section(f"Own, seed {report.rendering_seed}", f"value {result.value}")
    report.data.setdefault("nested", {})["value"] = result.value


def test_under_seeds_a_section_several_seeds_write_is_the_first_seeds(tmp_path):
    """The rows are seed 0's; so are the sections beside them, whichever seed's result is recorded last."""
    builder = ReportBuilder(model_name="tiny", settings={})
    for seed in (0, 1, 2):
        builder.seed = seed
        builder.record(_PerSeed(10.0 + seed))
    builder.write(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Shared\n\nvalue 10.0, rendered under seed 0" in text
    assert all(f"## Own, seed {seed}\n\nvalue {10.0 + seed}" in text for seed in (0, 1, 2))
    assert text.index("## Shared") < text.index("## Own, seed 0") < text.index("## Own, seed 1")
    assert json.loads((tmp_path / "results.json").read_text())["data"]["nested"] == {"value": 10.0}


def test_a_previous_runs_figure_that_this_run_does_not_draw_is_removed(tmp_path):
    """E.g. a claim family whose gate now fails (its experiment not run): its old figure must not stay."""
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "stale.png").write_bytes(b"old")
    (tmp_path / "figures" / "notes.txt").write_text("not a figure of the report")
    builder = ReportBuilder(model_name="tiny", settings={})
    builder.add_figure("fresh.png", lambda figure: figure.subplots().plot([0, 1]))
    builder.write(tmp_path)
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["fresh.png", "notes.txt"]
    assert "figures/fresh.png" in (tmp_path / "REPORT.md").read_text()


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


def _outcome(test_id: str, verdict_ci: tuple[float, float, float], seed: int = 0, outcome: str = "passed",
             expected: str | None = None):
    from harness.verdicts.record import ClaimRecord
    from harness.verdicts.declared import declared
    from harness.reporting.report import ClaimOutcome
    from harness.measures.statistics import Estimate

    claim = declared("D2")
    record = ClaimRecord.decide(claim, claim.rule_for("tiny"), Estimate(*verdict_ci, 40, "prompts", "test"))
    return ClaimOutcome(test_id, "D2", outcome, 0.1, record, "", seed, expected)


def test_results_json_rows_carry_the_verdict_fields_and_the_seeds_table(tmp_path):
    builder = ReportBuilder(model_name="tiny", settings={})
    builder.outcomes += [
        _outcome("test_directions.py::test_d2[pca]", (0.95, 0.91, 0.99), seed=0),
        _outcome("test_directions.py::test_d2[pca]", (0.95, 0.85, 0.99), seed=1),
        _outcome("test_directions.py::test_d2[probe]", (0.5, 0.4, 0.6), seed=0, outcome="xfailed",
                 expected=Verdict.DOES_NOT_REPLICATE),
        _outcome("test_directions.py::test_d2[probe]", (0.5, 0.4, 0.6), seed=1, outcome="xfailed",
                 expected=Verdict.DOES_NOT_REPLICATE),
    ]
    builder.write(tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["claims"]
    assert [row["verdict"] for row in rows] == [Verdict.REPLICATES, Verdict.DOES_NOT_REPLICATE]  # seed 0's rows
    assert rows[1]["status"] == "does not replicate (expected)"
    for row in rows:
        assert row["passes_when"] == "above" and row["threshold"] == 0.9 and row["n"] == 40
    assert results["seeds"]["by_test"]["test_directions.py::test_d2[pca]"]["1"]["verdict"] == Verdict.INCONCLUSIVE
    assert [row["stable_over_seeds"] for row in rows] == [False, True]  # the main table's rows say it too
    report = (tmp_path / "REPORT.md").read_text()
    assert "UNSTABLE" in report and "| stable" in report
    assert "replicates (UNSTABLE over seeds)" in report and "(expected) (UNSTABLE" not in report


def _item(nodeid: str, **params):
    from types import SimpleNamespace

    return SimpleNamespace(nodeid=nodeid, callspec=SimpleNamespace(params=params) if params else None)


def test_claim_test_ids_drop_the_model_and_the_seed():
    from fixtures.report_plugin import claim_test_id
    from harness.models.loading import ModelSource

    tiny, hub = ModelSource("tiny-1", "local_dir", "/x/tiny-1"), ModelSource("owner/m-2", "hub", "owner/m-2")
    cases = {
        ("claims/test_a.py::test_x[tiny-1]", tiny, None): "test_a.py::test_x",
        ("claims/test_a.py::test_x[tiny-1-seed1]", tiny, 1): "test_a.py::test_x",
        ("claims/test_a.py::test_x[tiny-1-seed0-pca]", tiny, 0): "test_a.py::test_x[pca]",
        ("claims/test_a.py::test_x[owner__m-2-tiny-1]", hub, None): "test_a.py::test_x[tiny-1]",
        ("claims/test_a.py::test_x[layer0-pca-seed2]", None, 2): "test_a.py::test_x[layer0-pca]",
        ("claims/test_a.py::test_x[pca]", None, None): "test_a.py::test_x[pca]",
    }
    for (nodeid, source, seed), expected in cases.items():
        params = ({"model_source": source} if source else {}) | ({"suite_seed": seed} if seed is not None else {})
        assert claim_test_id(_item(nodeid, **params)) == expected, nodeid



def test_the_report_opens_with_paper_claims_apart_and_the_verdict_figure(tmp_path):
    from harness.verdicts.record import ClaimRecord
    from harness.verdicts.declared import declared
    from harness.reporting.report import ClaimOutcome
    from harness.measures.statistics import Estimate

    builder = ReportBuilder(model_name="tiny", settings={})
    builder.outcomes.append(_outcome("test_directions.py::test_d2[pca]", (0.95, 0.91, 0.99)))
    control = declared("D1.random")
    record = ClaimRecord.decide(control, control.rule_for("tiny"), Estimate(0.05, 0.03, 0.07, 52, "prompts", "t"))
    builder.outcomes.append(ClaimOutcome("test_directions.py::test_d1_random", "D1.random", "passed", 0.1, record))
    builder.write(tmp_path)
    report = (tmp_path / "REPORT.md").read_text()
    assert "**Paper claims** (one claim-level verdict each): 1 replicates." in report
    assert "Apart from them: controls: 1 replicates." in report
    assert report.index("figures/verdicts_forest.png") < report.index("### Paper claims") < report.index("### Controls")
    assert (tmp_path / "figures" / "verdicts_forest.png").stat().st_size > 0
    counts = json.loads((tmp_path / "results.json").read_text())["claim_verdict_counts_by_kind"]
    assert counts["paper claim"]["replicates"] == 1 and counts["control"]["replicates"] == 1


@pytest.mark.parametrize("passes_when, threshold, centre", [("above", 0.9, None), ("below", 0.9, None),
                                                            ("abs_below", 0.1, 0.5)])
def test_the_forest_scale_puts_a_row_right_of_zero_exactly_when_it_replicates(passes_when, threshold, centre):
    from hypothesis import example, given, settings, strategies as st

    from harness.reporting.forest import scaled
    from harness.verdicts.declaration import Rule, ThresholdKind
    from harness.verdicts.record import ClaimRecord
    from harness.verdicts.declared import declared
    from harness.measures.statistics import Estimate

    rule = Rule(threshold, passes_when, ThresholdKind.GENERIC, centre=centre)

    @settings(max_examples=500, deadline=None, derandomize=True)
    @given(st.floats(0.0, 1.0), st.floats(0.001, 0.5), st.floats(0.001, 0.5))
    @example(0.5, 0.5, 0.4)  # the upper bound exactly on the threshold of "below 0.9"
    def check(value, below, above):
        record = ClaimRecord.decide(declared("D2"), rule, Estimate(value, value - below, value + above, 40, "p", "t"))
        low, point, high = scaled(record)
        assert low <= point <= high
        on_the_line_passes = not rule.strict  # a CI bound exactly on a non-strict threshold replicates, drawn at 0
        assert (low >= 0 if on_the_line_passes else low > 0) == (record.verdict == Verdict.REPLICATES)
        assert (high < 0) == (record.verdict == Verdict.DOES_NOT_REPLICATE)

    check()
