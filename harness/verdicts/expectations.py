"""Per-model expectations: claims measured not to replicate (or to be inconclusive) on a model.

A file ``claims/expectations/<model>.toml`` maps a claim test id (its node id under ``claims/``) to the
expected verdict, the value measured when it was found, the band that value must stay in, and why:

    ["test_directions.py::test_d1_methods_agree[layer0-mean_diff-kmeans]"]
    verdict = "does not replicate"
    measured = 0.7577
    band = [0.682, 0.834]
    reason = "layer 0 is the token embedding; K-means splits it along another axis"
    note = "free text kept with the entry (context of the measurement)"   # optional

A "does not replicate" entry runs its test as ``xfail(strict=True, raises=ClaimNotReplicated)``; an
"inconclusive" entry passes with the status ``inconclusive``, or, under ``--strict-verdicts``, runs as
``xfail(strict=True, raises=ClaimInconclusive)``. Either way:
- the verdict is the expected one with the value inside the band: xfailed / inconclusive (expected);
- any other exception (a crash, a KeyError, a failed assertion) is an error, never "expected";
- the value leaves the band, or the verdict is another one (the claim replicates now, say):
  ``ExpectationOutdated``, a failure naming the entry to update.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.verdicts.declaration import Verdict

VERDICTS = (Verdict.DOES_NOT_REPLICATE.value, Verdict.INCONCLUSIVE.value)


class ClaimNotReplicated(AssertionError):
    """A claim's measurement does not satisfy its declared rule: a finding, reported as such."""


class ClaimInconclusive(AssertionError):
    """A claim's CI straddles its threshold, under ``--strict-verdicts`` (otherwise the test passes with
    the status ``inconclusive``)."""


class IntervalExcludesPoint(RuntimeError):
    """A claim's CI does not contain its own point estimate: the interval is not valid for its statistic
    (e.g. a resampling that biases it), so no verdict is made from it (issue "Intervals that mean what they
    say")."""


class ExpectationOutdated(AssertionError):
    """A claim listed in the expectations measured outside the band its entry records."""


@dataclass(frozen=True)
class Expectation:
    test_id: str
    verdict: str
    measured: float
    band: tuple[float, float]
    reason: str
    path: Path
    note: str = ""

    def holds(self, measured: float | None) -> bool:
        return measured is not None and math.isfinite(measured) and self.band[0] <= measured <= self.band[1]

    def describe(self) -> str:
        return f"measured {self.measured:g} (band [{self.band[0]:g}, {self.band[1]:g}])"

    def outdated(self, measured: float | None) -> ExpectationOutdated:
        value = "nothing (not measured)" if measured is None else f"{measured:g}"
        return ExpectationOutdated(
            f"{self.test_id}: measured {value}, outside the band [{self.band[0]:g}, {self.band[1]:g}] of its "
            f"expectation (recorded {self.measured:g}): update the entry [\"{self.test_id}\"] in {self.path}, or "
            "find what moved the value")


    def verdict_changed(self, verdict: str) -> ExpectationOutdated:
        return ExpectationOutdated(
            f"{self.test_id}: verdict {verdict!r}, its expectation records {self.verdict!r}: update the entry "
            f"[\"{self.test_id}\"] in {self.path}, or find what changed the verdict")


def model_file_stem(model_name: str) -> str:
    """A file-system-safe name for a model (hub ids ``owner/name`` become ``owner__name``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.replace("/", "__"))


def load_expectations(directory: Path, model_name: str) -> dict[str, Expectation]:
    """The model's expectations by test id; a malformed entry raises ``ValueError`` naming it."""
    path = directory / f"{model_file_stem(model_name)}.toml"
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    return {test_id: _expectation(path, test_id, entry) for test_id, entry in table.items()}


def _expectation(path: Path, test_id: str, entry) -> Expectation:
    required = ("verdict", "measured", "band", "reason")
    if not isinstance(entry, dict) or not set(required) <= set(entry):
        raise ValueError(f"{path}: entry {test_id!r} needs {', '.join(required)} (optional: note)")
    verdict, measured, band = entry["verdict"], entry["measured"], entry["band"]
    if verdict not in VERDICTS:
        raise ValueError(f"{path}: entry {test_id!r}: verdict {verdict!r}; accepted: {', '.join(VERDICTS)}")
    numbers = isinstance(measured, (int, float)) and isinstance(band, list) and len(band) == 2 and all(
        isinstance(value, (int, float)) for value in band)
    if not numbers or not band[0] <= measured <= band[1]:
        raise ValueError(f"{path}: entry {test_id!r}: measured must be a number inside band = [low, high]; "
                         f"got measured = {measured!r}, band = {band!r}")
    return Expectation(test_id, verdict, float(measured), (float(band[0]), float(band[1])), str(entry["reason"]),
                       path, str(entry.get("note", "")))
