"""Claims are declared once (``harness/claims_declared.py``): every claim test names a declaration, every
declaration is tested, and the decision rule does what its declaration says."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from harness.claim_record import ClaimRecord
from harness.claims_declared import CLAIMS, declared
from harness.declaration import Case, Claim, PaperValue, Rule, ThresholdKind
from harness.statistics import Estimate

CLAIMS_DIR = Path(__file__).parents[1] / "claims"


def _marked_claim_ids() -> dict[str, str]:
    """``{claim id: test}`` of every ``@pytest.mark.claim(ID)`` in claims/*.py."""
    found = {}
    for path in CLAIMS_DIR.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                            and decorator.func.attr == "claim"):
                        found[decorator.args[0].value] = f"{path.name}::{node.name}"
    return found


def test_every_claim_test_names_a_declared_claim():
    marked = _marked_claim_ids()
    assert marked, "no claim test found"
    undeclared = {claim: test for claim, test in marked.items() if claim not in CLAIMS}
    assert not undeclared


def test_every_declared_claim_has_a_test():
    assert set(CLAIMS) - set(_marked_claim_ids()) == set()


def test_declarations_are_complete():
    for claim in CLAIMS.values():
        assert claim.section.startswith("§") and claim.statement and claim.statistic and claim.paper.text
        assert claim.family == claim.id.split(".")[0]
        for case in claim.cases.values():
            assert case.paper or case.rule or case.paper_rule


def test_unknown_claim_names_the_declared_ones():
    with pytest.raises(KeyError, match="declared: D1"):
        declared("Z9")


@pytest.mark.parametrize("rule, measured, passes", [
    (Rule(0.75, "above", ThresholdKind.GENERIC), 0.75, True),
    (Rule(0.75, "above", ThresholdKind.GENERIC), 0.7499, False),
    (Rule(0.0, "above", ThresholdKind.GENERIC, strict=True), 0.0, False),
    (Rule(0.15, "below", ThresholdKind.GENERIC), 0.15, True),
    (Rule(50.0, "above", ThresholdKind.GENERIC, strict=True), 50.0, False),
    (Rule(5.0, "abs_below", ThresholdKind.GENERIC), -5.0, True),
    (Rule(5.0, "abs_below", ThresholdKind.GENERIC), 5.1, False),
    (Rule(0.1, "abs_below", ThresholdKind.GENERIC, centre=0.5), 0.61, False),
    (Rule(0.1, "abs_below", ThresholdKind.GENERIC, centre=0.5), 0.41, True),
    (Rule(0.75, "above", ThresholdKind.GENERIC), math.nan, False),
])
def test_rule_decides_as_declared(rule, measured, passes):
    assert rule.passes(measured) is passes


def test_unknown_side_is_refused():
    with pytest.raises(ValueError, match="accepted: above, below, abs_below"):
        Rule(1.0, "greater", ThresholdKind.GENERIC)


def test_data_dependent_threshold_must_come_from_the_test_and_only_there():
    open_rule = Rule(None, "above", ThresholdKind.GENERIC, "max(20, 5 x random)")
    assert open_rule.data_dependent
    with pytest.raises(ValueError, match="pass threshold"):
        open_rule.resolved()
    assert open_rule.resolved(threshold=31.0).passes(31.0)
    with pytest.raises(ValueError, match="declares its own threshold"):
        Rule(0.5, "above", ThresholdKind.GENERIC).resolved(threshold=0.1)


def test_paper_rule_applies_on_the_paper_model_only_and_cases_override():
    generic, paper_rule, case_rule = (Rule(1.0, "above", ThresholdKind.GENERIC), Rule(2.0, "above", ThresholdKind.PAPER),
                                      Rule(3.0, "above", ThresholdKind.GENERIC))
    claim = Claim("X1", "§1", "s", "t", PaperValue("v", "gpt2-small", "3P"), generic, paper_rule=paper_rule,
                  cases={"c": Case(paper=PaperValue("w", "gpt2-small"), rule=case_rule)})
    assert claim.rule_for("smollm2-135m") is generic
    assert claim.rule_for("gpt2-small") is paper_rule
    assert claim.rule_for("smollm2-135m", "c") is case_rule
    assert claim.rule_for("gpt2-small", "c") is paper_rule
    assert claim.paper_value("c").text == "w" and claim.paper_value().text == "v"


def _estimate(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high, 30, "prompts", "test")


def test_record_is_decided_by_the_ci_and_the_preconditions():
    claim = declared("M2.ratio")
    rule = claim.rule_for("smollm2-135m")
    decide = lambda estimate, **kw: ClaimRecord.decide(claim, rule, estimate, **kw).verdict
    assert decide(_estimate(0.8, 0.6, 0.9)) == "replicates"
    assert decide(_estimate(0.8, 0.4, 0.9)) == "inconclusive"
    assert decide(_estimate(0.3, 0.2, 0.45)) == "does not replicate"
    assert decide(_estimate(0.8, 0.6, 0.9), preconditions={"pre-comma effect < 0": False}) == "not applicable"
    record = ClaimRecord.decide(claim, rule, _estimate(0.8, 0.6, 0.9))
    assert (record.threshold, record.passes_when, record.threshold_kind, record.n) == (0.5, "above", "generic", 30)
    assert record.claim == "M2.ratio" and record.section == "§5.7" and record.passed


@pytest.mark.parametrize("passes_when, strict, ci, verdict", [
    ("above", False, (1.0, 2.0), "replicates"), ("above", True, (1.0, 2.0), "inconclusive"),
    ("above", False, (0.0, 0.99), "does not replicate"), ("below", False, (0.0, 1.0), "replicates"),
    ("below", False, (0.5, 1.5), "inconclusive"), ("below", False, (1.01, 2.0), "does not replicate"),
    ("abs_below", False, (-0.5, 0.5), "replicates"), ("abs_below", False, (0.5, 1.5), "inconclusive"),
    ("abs_below", False, (1.5, 2.0), "does not replicate"), ("abs_below", False, (-3.0, -1.5), "does not replicate"),
])
def test_rule_decides_from_the_whole_ci(passes_when, strict, ci, verdict):
    rule = Rule(1.0, passes_when, ThresholdKind.GENERIC, strict=strict)
    assert rule.decide(*ci).value == verdict


def test_n_to_decide_scales_with_the_squared_ratio_of_half_width_to_distance():
    rule = Rule(0.5, "above", ThresholdKind.GENERIC)
    assert rule.n_to_decide(0.6, 0.4, 0.8, 100) == 400  # half-width 0.2, distance 0.1: 4 times n
    assert rule.n_to_decide(0.5, 0.4, 0.6, 100) is None


def test_record_names_the_paper_model_when_the_paper_threshold_applies():
    claim = declared("P1")
    record = ClaimRecord.decide(claim, claim.rule_for("pythia-1.4b", "logit_flip"), _estimate(95.0, 92.0, 98.0),
                                case="logit_flip")
    assert record.threshold_source == "paper (pythia-1.4b)" and record.paper_value == "100% (pythia-1.4b [3P])"
    assert record.tolerance == ">= 90%" and record.passed
