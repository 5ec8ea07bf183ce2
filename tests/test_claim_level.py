"""Claim-level verdicts with multiplicity control (``harness.verdicts.claim_level``,
``harness.measures.multiplicity``; issue 25 item 6), on hand-made rows."""

from __future__ import annotations

import json

import pytest

from harness.measures.multiplicity import combine, holm
from harness.measures.statistics import Estimate, bootstrap
from harness.verdicts.claim_level import NOT_MEASURED, claim_verdict_counts, decide_claim, picked
from harness.verdicts.declaration import ALPHA, Claim, Combine, PaperValue, Rule, ThresholdKind, Verdict
from harness.verdicts.declared import CLAIMS
from harness.verdicts.record import ClaimRecord

CLAIM = Claim("X1", "§0", "a test claim", "a statistic", PaperValue("none"), Rule(0.0, "above", ThresholdKind.GENERIC))
R, D, I, N = (Verdict.REPLICATES.value, Verdict.DOES_NOT_REPLICATE.value, Verdict.INCONCLUSIVE.value,
              Verdict.NOT_APPLICABLE.value)


def row(test_id: str, p_replicates: float | None, p_not: float | None, verdict: str | None = None):
    """A hand-made record with the given p-values (and the verdict they imply at 0.025)."""
    record = ClaimRecord.decide(CLAIM, CLAIM.rule, Estimate(0.5, 0.1, 0.9, 20, "prompts", "hand-made"))
    if verdict is None:
        verdict = R if p_replicates is not None and p_replicates <= ALPHA else (
            D if p_not is not None and p_not <= ALPHA else I)
    record.verdict, record.p_replicates, record.p_not_replicates = verdict, p_replicates, p_not
    return test_id, record


def test_holm_adjusted_p_values():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([0.02]) == [0.02]


def test_every_needs_each_row_and_fails_on_one_holm_rejection():
    every = Combine("every")
    passing = [row(f"t[m{i}]", 0.001 * (i + 1), 0.99) for i in range(5)]
    verdict = decide_claim("X1", every, passing)
    assert verdict.verdict == R and verdict.p_replicates == pytest.approx(0.005)
    assert [r.p_replicates_adjusted for r in verdict.rows] == [r.p_replicates for _, r in passing]  # no correction
    one_weak = passing[:4] + [row("t[m4]", 0.2, 0.3)]
    assert decide_claim("X1", every, one_weak).verdict == I
    # one row does not replicate at 0.025 but not after Holm across five (0.02 × 5 > 0.025): inconclusive
    assert decide_claim("X1", every, passing[:4] + [row("t[m4]", 0.98, 0.02)]).verdict == I
    failing = decide_claim("X1", every, passing[:4] + [row("t[m4]", 0.999, 0.004)])
    assert failing.verdict == D and failing.p_not_replicates == pytest.approx(0.02)
    assert failing.rows[4].p_not_replicates_adjusted == pytest.approx(0.02)


def test_any_needs_one_holm_rejection_and_fails_only_if_every_row_fails():
    any_row = Combine("any")
    weak = [row(f"t[m{i}]", 0.3, 0.4) for i in range(4)]
    assert decide_claim("X1", any_row, weak + [row("t[m4]", 0.004, 0.99)]).verdict == R  # 0.004 × 5 <= 0.025
    # a row that replicates alone (0.02 <= 0.025) is not enough across five rows
    assert decide_claim("X1", any_row, weak + [row("t[m4]", 0.02, 0.99)]).verdict == I
    assert decide_claim("X1", any_row, [row(f"t[m{i}]", 0.99, 0.02) for i in range(5)]).verdict == D
    assert decide_claim("X1", any_row, [row(f"t[m{i}]", 0.99, 0.02) for i in range(4)]
                        + [row("t[m4]", 0.5, 0.5)]).verdict == I


def test_named_row_decides_and_the_others_are_descriptive():
    named = Combine("row", "paper_prompt")
    rows = [row("t[paper_prompt]", 0.9, 0.001), row("t[mirror]", 0.001, 0.9)]
    verdict = decide_claim("S1", named, rows)
    assert verdict.verdict == D and [r.role for r in verdict.rows] == ["decides", "descriptive"]
    assert verdict.rows[1].p_replicates_adjusted is None


def test_rows_are_picked_by_a_test_id_parameter():
    assert picked("test_d1_methods_agree[layer0-mean_diff-kmeans]", "layer0")
    assert not picked("test_d1_methods_agree[best-mean_diff-kmeans]", "layer0")
    assert not picked("test_a1[accuracy-all_but_first]", "all") and picked("test_a1[accuracy-all]", "all")
    assert picked("test_k1", "") and not picked("test_k1", "layer0")
    rows = [row("t[layer0-a-b]", 0.001, 0.9), row("t[best-a-b]", 0.9, 0.001)]
    assert decide_claim("D1", Combine("every", "layer0"), rows).verdict == R


def test_not_applicable_and_not_measured():
    every = Combine("every")
    assert decide_claim("X1", every, [row("t[a]", None, None, N), row("t[b]", None, None, N)]).verdict == N
    mixed = decide_claim("X1", every, [row("t[a]", None, None, N), row("t[b]", 0.001, 0.9)])
    assert mixed.verdict == R and "not-applicable" in mixed.note and mixed.rows[0].role == "not applicable"
    assert decide_claim("X1", every, []).verdict == NOT_MEASURED
    assert decide_claim("X1", Combine("row", "paper_prompt"), [row("t[mirror]", 0.001, 0.9)]).verdict == NOT_MEASURED


def test_a_row_that_errored_blocks_every_from_replicating_and_any_from_failing():
    passing = [row(f"t[m{i}]", 0.001, 0.99) for i in range(3)]
    every = decide_claim("X1", Combine("every"), passing + [("t[m3]", None)])
    assert every.verdict == I and every.rows[3].verdict == "error" and "error" in every.note
    failing = [row(f"t[m{i}]", 0.99, 0.001) for i in range(3)]
    assert decide_claim("X1", Combine("any"), failing + [("t[m3]", None)]).verdict == I
    assert decide_claim("X1", Combine("any"), passing + [("t[m3]", None)]).verdict == R  # 0.001 × 4 <= 0.025


def test_rows_without_p_values_count_conservatively():
    # three replicating rows without p-values: each counts 0.025, so "every" still replicates ...
    assert decide_claim("X1", Combine("every"), [row(f"t[{i}]", None, None, R) for i in range(3)]).verdict == R
    # ... but "any" cannot: Holm needs 0.025 / 3 from the best row
    verdict = decide_claim("X1", Combine("any"), [row(f"t[{i}]", None, None, R) for i in range(3)])
    assert verdict.verdict == I and "conservatively" in verdict.note


def test_a_single_row_claim_is_its_rows_verdict_whatever_the_rule():
    for how in ("every", "any"):
        for p_rep, p_not, expected in ((0.01, 0.99, R), (0.99, 0.01, D), (0.3, 0.6, I)):
            assert decide_claim("X1", Combine(how), [row("t", p_rep, p_not)]).verdict == expected


def test_real_records_carry_p_values_agreeing_with_their_verdicts():
    import torch
    values = torch.randn(30, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) + 1.0
    record = ClaimRecord.decide(CLAIM, CLAIM.rule, bootstrap(lambda x: x.mean(-1), values))
    assert record.verdict == R and record.p_replicates <= ALPHA < record.p_not_replicates
    assert json.loads(json.dumps(record.to_json()))["p_replicates"] == record.p_replicates  # plain JSON
    na = ClaimRecord.decide(CLAIM, CLAIM.rule, None, preconditions={"task": False})
    assert na.p_replicates is None and na.verdict == N


def test_combine_declarations():
    with pytest.raises(ValueError):
        Combine("most")
    with pytest.raises(ValueError):
        Combine("row")  # a named row needs its name
    with pytest.raises(ValueError):
        Combine("every", correction="bonferroni")
    with pytest.raises(ValueError):
        combine("every", [0.1], [0.1, 0.2], ALPHA)


def test_every_declared_claim_states_how_its_rows_combine():
    undeclared = [claim.id for claim in CLAIMS.values() if claim.combine is None]
    assert not undeclared, f"declare Claim.combine for {undeclared} (harness/verdicts/declared.py)"
    assert all(claim.combine.reason for claim in CLAIMS.values())
    assert CLAIMS["D1"].combine.rows == "layer0" and CLAIMS["N1"].combine.how == "any"
    assert {CLAIMS[c].combine.how for c in ("S1", "S1.strongest", "S1.unsteered")} == {"row"}


def test_claim_verdict_counts():
    verdicts = [decide_claim("A", Combine("every"), [row("t", 0.01, 0.99)]), decide_claim("B", None, [])]
    counts = claim_verdict_counts(verdicts)
    assert counts[R] == 1 and counts[NOT_MEASURED] == 1 and sum(counts.values()) == 2
    assert "every row" in verdicts[1].rule and verdicts[1].reason


def test_results_json_and_report_carry_claim_level_verdicts(tmp_path):
    from harness.reporting.report import ClaimOutcome, ReportBuilder

    declaration = CLAIMS["D2"]
    builder = ReportBuilder(model_name="tiny", settings={})
    import torch
    for i, shift in enumerate((1.0, 1.2, 0.0)):
        values = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) * 0.05 + shift
        record = ClaimRecord.decide(declaration, declaration.rule_for("tiny"), bootstrap(lambda x: x.mean(-1), values))
        builder.outcomes.append(ClaimOutcome(f"test_directions.py::test_d2[m{i}]", "D2", "passed", 0.1, record))
    builder.outcomes.append(ClaimOutcome("test_directions.py::test_d3[layer4]", "D3", "skipped", 0.0, None, "gpt2 only"))
    builder.outcomes.append(ClaimOutcome("test_directions.py::test_d1[layer0-a-b]", "D1", "failed", 0.0, None, "boom"))
    builder.write(tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    d2 = results["claim_verdicts"]["D2"]
    assert d2["verdict"] == D and d2["how"] == "every" and len(d2["rows"]) == 3
    assert d2["rows"][2]["p_not_replicates_adjusted"] == pytest.approx(min(1.0, 3 * d2["rows"][2]["p_not_replicates"]))
    assert results["claim_verdicts"]["D3"]["verdict"] == NOT_MEASURED  # skipped rows do not count
    assert results["claim_verdicts"]["D1"]["verdict"] == I  # an errored row does
    assert results["claim_verdict_counts"][D] == 1 and results["verdict_counts"][R] == 2
    report = (tmp_path / "REPORT.md").read_text()
    assert report.index("## Claim-level verdicts") < report.index("### Paper claims") < report.index("## Rows")
    assert results["claim_verdict_counts_by_kind"]["paper claim"][D] == 1  # D2; D1.random is a control
    assert "| D2 " in report and "2 replicates, 1 does not replicate (3 of 3 decide)" in report
