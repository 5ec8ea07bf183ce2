"""Per-model expectations (``harness/expectations.py``) and the ``claim`` fixture's use of them: an
expected non-replication is a ``ClaimNotReplicated``, a value outside its band an ``ExpectationOutdated``
naming the entry, and a malformed entry is refused naming it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures.claims import ClaimCheck, expectation_key
from harness.claims_declared import declared
from harness.expectations import ClaimNotReplicated, ExpectationOutdated, load_expectations

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
    assert (expectation.verdict, expectation.measured, expectation.band) == ("does not replicate", 0.8, (0.7, 0.85))
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


def _check(expectation=None) -> tuple[ClaimCheck, SimpleNamespace]:
    node = SimpleNamespace(stash=pytest.Stash(), user_properties=[])
    if expectation is not None:
        node.stash[expectation_key] = expectation
    return ClaimCheck(node, declared("D2"), "tiny"), node


def test_a_failed_claim_raises_the_suites_own_exception():
    check, node = _check()
    with pytest.raises(ClaimNotReplicated, match="D2 .* does not replicate: measured 0.500"):
        check.check(0.5)
    assert node.user_properties[0][1].measured == 0.5  # recorded before raising: the report keeps it
    assert check.check(0.95).passed


def test_a_listed_claim_outside_its_band_names_the_entry(tmp_path):
    expectation = next(iter(load_expectations(_write(tmp_path, ENTRY), "tiny").values()))
    check, _ = _check(expectation)
    with pytest.raises(ClaimNotReplicated):
        check.check(0.8)  # inside the band: the expected non-replication
    with pytest.raises(ExpectationOutdated, match="update the entry"):
        check.check(0.6)
    with pytest.raises(ExpectationOutdated):
        check.check(float("nan"))
    assert not issubclass(ExpectationOutdated, ClaimNotReplicated)  # an xfail(raises=ClaimNotReplicated) misses it
