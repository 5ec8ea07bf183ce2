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
from harness.verdicts.expectations import (
    CHANGED, ClaimInconclusive, ClaimNotReplicated, Expectation, ExpectationOutdated, IntervalExcludesPoint,
    load_expectations, rewrite,
)
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
    (("band = [0.7, 0.85]\n", ""), "needs measured and band"),
    (("reason = \"why\"\n", ""), "needs verdict and reason"),
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


def test_an_unlisted_row_of_a_model_with_a_file_must_replicate(tmp_path):
    """A verdict drift of a row the file does not list (replicates -> inconclusive) fails naming the file."""
    check, _ = _check(Expectation.unlisted(tmp_path / "tiny.toml", "test_x.py::test_x"))
    assert check.check(_estimate(0.95, 0.91, 0.99)).verdict == Verdict.REPLICATES
    with pytest.raises(ExpectationOutdated, match="verdict 'inconclusive', expected 'replicates'.*does not list it"):
        _fresh(check).check(_estimate(0.95, 0.85, 0.99))
    with pytest.raises(ExpectationOutdated, match="verdict 'not applicable'"):
        _fresh(check).applies({"task solved": False})


def test_a_not_applicable_entry_needs_no_value(tmp_path):
    text = ENTRY.replace('verdict = "does not replicate"\nmeasured = 0.8\nband = [0.7, 0.85]\n',
                         'verdict = "not applicable"\n')
    expectation = next(iter(load_expectations(_write(tmp_path, text), "tiny").values()))
    assert (expectation.verdict, expectation.measured, expectation.band) == ("not applicable", None, None)
    check, _ = _check(expectation)
    assert not check.applies({"task solved": False})  # the expected verdict: nothing raised
    with pytest.raises(ExpectationOutdated, match="verdict 'replicates', expected 'not applicable'"):
        _fresh(check).check(_estimate(0.95, 0.91, 0.99))


def _row(verdict: str, measured: float | None, unit: str = "") -> dict:
    return {"verdict": verdict, "measured": measured, "ci_low": measured, "ci_high": measured, "n": 40,
            "n_unit": "prompts", "tolerance": ">= 0.9", "unit": unit}


OTHERS = """
["test_a.py::test_gone_replicates"]
verdict = "inconclusive"
measured = 1.0
band = [0.9, 1.1]
reason = "straddles"

["test_a.py::test_not_run"]
verdict = "inconclusive"
measured = 5.0
band = [4.0, 6.0]
reason = "kept as it is"
"""


def test_rewrite_keeps_reasons_flags_changed_verdicts_and_keeps_rows_not_run(tmp_path):
    path = _write(tmp_path, "# header\n\n" + ENTRY + OTHERS) / "tiny.toml"
    d2 = "test_directions.py::test_d2_direction_separates_test_adjectives[pca]"
    changes = rewrite(path, "tiny", {
        d2: _row("does not replicate", 0.81),  # same verdict, inside the band: the reason stays
        "test_a.py::test_gone_replicates": _row("replicates", 1.0),
        "test_a.py::test_new": _row("inconclusive", 42.0, "%"),
        "test_a.py::test_gated": _row("not applicable", None),
    })
    after = load_expectations(tmp_path, "tiny")
    assert path.read_text().startswith("# header")
    assert set(after) == {d2, "test_a.py::test_new", "test_a.py::test_gated", "test_a.py::test_not_run"}
    assert after[d2].reason == "why" and after[d2].band == (0.729, 0.891)
    assert after["test_a.py::test_new"].band == (37.8, 46.2) and after["test_a.py::test_new"].reason.startswith(
        f"{CHANGED} (was replicates)")
    assert after["test_a.py::test_gated"].band is None and after["test_a.py::test_not_run"].reason == "kept as it is"
    assert sorted(changes) == ["test_a.py::test_gated: replicates -> not applicable",
                               "test_a.py::test_gone_replicates: inconclusive -> replicates (entry removed)",
                               "test_a.py::test_new: replicates -> inconclusive"]


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "claims" / "expectations").glob("*.toml")),
                         ids=lambda path: path.stem)
def test_committed_expectations_give_every_entry_a_reason(path):
    """A rewritten file's flagged or placeholder reasons are written before it is committed."""
    for test_id, expectation in load_expectations(path.parent, path.stem).items():
        assert CHANGED not in expectation.reason and not expectation.reason.startswith("TODO"), test_id


def test_a_row_resting_on_a_failed_control_is_not_interpretable():
    """P2 rests on P2.random: once a P2.random row does not replicate (same model and seed), P2's row keeps
    its value and CI but reads "not interpretable"; under another seed it is decided as usual."""
    verdicts: dict = {}
    node = lambda: SimpleNamespace(stash=pytest.Stash(), user_properties=[], nodeid="claims/test_x.py::test_x")
    control = ClaimCheck(node(), declared("P2.random"), "tiny", verdicts=verdicts, seed=0)
    with pytest.raises(ClaimNotReplicated):
        control.check(Estimate(40.0, 30.0, 50.0, 80, "pairs", "test"))  # a random direction recovers 40%
    assert verdicts == {("tiny", 0, "P2.random"): [(frozenset({""}), Verdict.DOES_NOT_REPLICATE)]}
    flipped = Estimate(95.0, 91.0, 99.0, 27, "pairs", "test")
    row = ClaimCheck(node(), declared("P2"), "tiny", verdicts=verdicts, seed=0).check(flipped, case="mean_diff")
    assert (row.verdict, row.failed_controls, row.measured) == (Verdict.NOT_INTERPRETABLE, ["P2.random"], 95.0)
    assert row.p_replicates is None and row.kind == "paper claim"
    other_seed = ClaimCheck(node(), declared("P2"), "tiny", verdicts=verdicts, seed=1).check(flipped, case="mean_diff")
    assert other_seed.verdict == Verdict.REPLICATES and not other_seed.failed_controls
    assert declared("P2.random").kind == "control" and declared("P0").kind == "precondition"


def test_controls_run_before_the_rows_resting_on_them():
    from fixtures.claims import controls_first

    def item(name: str, claim_id: str, seed: int = 0):
        return SimpleNamespace(name=name, callspec=SimpleNamespace(params={"suite_seed": seed}),
                               get_closest_marker=lambda _: SimpleNamespace(args=(claim_id,)))
    items = [item("p1", "P1"), item("p2", "P2"), item("k1", "K1"), item("random0", "P2.random"),
             item("p1-seed1", "P1", 1), item("random1", "P2.random", 1)]
    controls_first(items)
    assert [i.name for i in items] == ["random0", "p1", "p2", "k1", "random1", "p1-seed1"]


def test_every_declared_control_is_a_control_claim():
    from harness.verdicts.declared import CLAIMS

    for claim in CLAIMS.values():
        assert all(CLAIMS[control].kind == "control" for control in claim.controls), claim.id


def test_a_row_rests_on_the_control_rows_of_its_own_parameters():
    """S1[mirror] rests on S1.unsteered[mirror] only: where the mirror control fails, the paper prompt's
    row is still read."""
    verdicts: dict = {}
    node = lambda case: SimpleNamespace(stash=pytest.Stash(), user_properties=[],
                                        nodeid=f"claims/test_steering.py::test_s[tiny-{case}]")
    for case, share in (("paper_prompt", 5.0), ("mirror", 60.0)):  # S1.unsteered: <= 20% of samples
        control = ClaimCheck(node(case), declared("S1.unsteered"), "tiny", verdicts=verdicts)
        try:
            control.check(Estimate(share, share - 3, share + 3, 250, "samples", "test"), case=case)
        except ClaimNotReplicated:
            pass
    rising = Estimate(0.8, 0.6, 0.9, 5, "coefficients", "test")
    paper = ClaimCheck(node("paper_prompt"), declared("S1"), "tiny", verdicts=verdicts).check(rising, case="paper_prompt")
    mirror = ClaimCheck(node("mirror"), declared("S1"), "tiny", verdicts=verdicts).check(rising, case="mirror")
    assert (paper.verdict, mirror.verdict) == (Verdict.REPLICATES, Verdict.NOT_INTERPRETABLE)
    assert mirror.failed_controls == ["S1.unsteered"]
