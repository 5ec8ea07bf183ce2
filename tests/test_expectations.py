"""Per-model expectations (``harness/verdicts/expectations.py``) and the ``claim`` fixture's use of them: an
expected non-replication is a ``ClaimNotReplicated``, a value outside its band an ``ExpectationOutdated``
naming the entry, and a malformed entry is refused naming it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures.claims import ClaimCheck, expectation_key
from harness.verdicts.declaration import Verdict
from harness.verdicts.record import ClaimRecord
from harness.verdicts.declared import declared
from harness.verdicts.expectations import ClaimInconclusive, ClaimNotReplicated, ExpectationOutdated, load_expectations, IntervalExcludesPoint
from harness.measures.statistics import Estimate

ENTRY = '''["test_directions.py::test_d2_direction_separates_test_adjectives[pca]"]
verdict = "does not replicate"
measured = 0.8
band = [0.7, 0.85]
reason = "why"
'''


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tiny.toml").write_text(text)
    return tmp_path


def test_a_valid_entry_is_loaded(tmp_path):
    expectation = load_expectations(_write(tmp_path, ENTRY), "tiny")[
        "test_directions.py::test_d2_direction_separates_test_adjectives[pca]"]
    assert expectation.verdict == Verdict.DOES_NOT_REPLICATE
    assert (expectation.measured, expectation.band) == (0.8, (0.7, 0.85))
    assert expectation.holds(0.7) and expectation.holds(0.85) and not expectation.holds(0.86)
    assert not expectation.holds(float("nan"))
    message = str(expectation.outdated(0.9))
    assert "outside the band [0.7, 0.85]" in message and "tiny.toml" in message and "d2_direction" in message


def test_no_file_means_no_expectations(tmp_path):
    assert load_expectations(tmp_path, "other") == {}


@pytest.mark.parametrize("change, message", [
    (("band = [0.7, 0.85]\n", ""), "needs verdict, measured, band, reason"),
    (('verdict = "does not replicate"', 'verdict = "fails"'), "accepted: does not replicate"),
    (("measured = 0.8", 'measured = "0.8"'), "measured must be a number inside band"),
    (("band = [0.7, 0.85]", "band = [0.81, 0.85]"), "measured must be a number inside band"),
    (("band = [0.7, 0.85]", "band = [0.7]"), "measured must be a number inside band"),
    (("reason", "reason ="), "not valid TOML"),
])
def test_a_malformed_entry_is_refused_naming_it(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load_expectations(_write(tmp_path, ENTRY.replace(*change)), "tiny")


def _check(expectation=None, strict_verdicts=False) -> tuple[ClaimCheck, SimpleNamespace]:
    node = SimpleNamespace(stash=pytest.Stash(), user_properties=[], nodeid="claims/test_x.py::test_x")
    if expectation is not None:
        node.stash[expectation_key] = expectation
    return ClaimCheck(node, declared("D2"), "tiny", strict_verdicts), node


def _estimate(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high, 40, "prompts", "test")


def _fresh(check: ClaimCheck) -> ClaimCheck:
    check.node.user_properties.clear()
    return check


def test_the_verdict_comes_from_the_ci_and_pytest_mirrors_it():
    check, node = _check()
    with pytest.raises(ClaimNotReplicated, match="D2 .* measured 0.500 \\[0.400, 0.600\\] \\(n = 40 prompts\\)"):
        check.check(_estimate(0.5, 0.4, 0.6))  # D2 needs >= 0.9: the whole CI fails
    recorded = node.user_properties[0][1]["verdict"]  # recorded (as plain data) before raising
    assert recorded == Verdict.DOES_NOT_REPLICATE
    assert _fresh(check).check(_estimate(0.95, 0.91, 0.99)).verdict == Verdict.REPLICATES
    inconclusive = _fresh(check).check(_estimate(0.95, 0.85, 0.99))  # passes the test, reports its own status
    assert inconclusive.verdict == Verdict.INCONCLUSIVE and inconclusive.n_to_decide > 40
    not_applicable = _fresh(check).check(_estimate(0.5, 0.4, 0.6), preconditions={"task solved": False})
    assert not_applicable.verdict == Verdict.NOT_APPLICABLE and not_applicable.failed_preconditions() == ["task solved"]
    strict, _ = _check(strict_verdicts=True)
    with pytest.raises(ClaimInconclusive):
        strict.check(_estimate(0.95, 0.85, 0.99))


def test_a_failed_precondition_records_the_claim_not_applicable_without_measuring():
    check, node = _check()
    assert check.applies({"task solved": True}) and not node.user_properties  # the test goes on to measure
    assert not _fresh(check).applies({"task solved": False, "effect present": True}, description="D2 on a task")
    record = ClaimRecord(**node.user_properties[0][1])
    assert record.verdict == Verdict.NOT_APPLICABLE and not record.passed
    assert record.failed_preconditions() == ["task solved"]
    assert record.measured is record.ci_low is record.ci_high is None and record.n == 0
    assert record.measured_text() == "not measured" and record.ci_method == "not measured: task solved"
    assert record.to_json()["measured"] is None
    with pytest.raises(RuntimeError, match="one claim row per test"):
        check.check(_estimate(0.95, 0.91, 0.99))
    with pytest.raises(ValueError, match="must be measured"):
        ClaimRecord.decide(declared("D2"), declared("D2").rule_for("tiny"), None, preconditions={"task solved": True})


def test_one_check_per_test_and_estimates_only():
    check, _ = _check()
    check.check(_estimate(0.95, 0.91, 0.99))
    with pytest.raises(RuntimeError, match="one claim row per test"):
        check.check(_estimate(0.95, 0.91, 0.99))
    with pytest.raises(TypeError, match="Estimate"):
        _fresh(check).check(0.95)


def test_a_listed_claim_outside_its_band_or_with_another_verdict_names_the_entry(tmp_path):
    expectation = next(iter(load_expectations(_write(tmp_path, ENTRY), "tiny").values()))
    check, _ = _check(expectation)
    with pytest.raises(ClaimNotReplicated):
        check.check(_estimate(0.8, 0.75, 0.85))  # inside the band: the expected non-replication
    with pytest.raises(ExpectationOutdated, match="update the entry"):
        _fresh(check).check(_estimate(0.6, 0.5, 0.7))
    with pytest.raises(ExpectationOutdated, match="verdict 'inconclusive'"):
        _fresh(check).check(_estimate(0.8, 0.7, 0.95))
    assert not issubclass(ExpectationOutdated, ClaimNotReplicated)  # an xfail(raises=ClaimNotReplicated) misses it
    with pytest.raises(ExpectationOutdated, match="measured nothing \\(not measured\\)"):
        _fresh(check).applies({"task solved": False})  # a listed claim that is no longer measured


def test_the_estimate_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        _estimate(float("nan"), 0.0, 1.0)


def test_a_ci_that_excludes_its_own_point_gets_no_verdict():
    """The review's D1 case: 0.755 with CI [0.637, 0.735] would have read "does not replicate"."""
    check, node = _check()
    with pytest.raises(IntervalExcludesPoint, match=r"test_x.*\[0\.637, 0\.735\] excludes its own point estimate 0\.755"):
        check.check(_estimate(0.755, 0.637, 0.735))
    assert node.user_properties == []  # nothing recorded: no verdict
