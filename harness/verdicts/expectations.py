"""Per-model expectations: the rows that do not replicate on a model (verdict, value, band, reason).

A file ``claims/expectations/<model>.toml`` maps a claim test id (its node id under ``claims/``) to the
expected verdict, the value measured when it was found, the band that value must stay in, and why:

    ["test_directions.py::test_d1_methods_agree[layer0-mean_diff-kmeans]"]
    verdict = "does not replicate"
    measured = 0.7577
    band = [0.682, 0.834]
    reason = "layer 0 is the token embedding; K-means splits it along another axis"
    note = "free text kept with the entry (context of the measurement)"   # optional

A "not applicable" entry (a precondition failed, nothing measured) has no ``measured`` or ``band``. A
"does not replicate" entry runs its test as ``xfail(strict=True, raises=ClaimNotReplicated)``; an
"inconclusive" one passes with the status ``inconclusive``, or, under ``--strict-verdicts``, runs as
``xfail(strict=True, raises=ClaimInconclusive)``. Where a model has a file, a row it does not list is
expected to replicate. Either way:
- the verdict is the expected one with the value inside the band: passed / xfailed / inconclusive;
- any other exception (a crash, a KeyError, a failed assertion) is an error, never "expected";
- the value leaves the band, or the verdict drifts to any other one (a listed row now replicates, an
  unlisted one is now inconclusive): ``ExpectationOutdated``, a failure naming the entry to update.

``pytest claims/ --update-expectations`` rewrites the file from the run (``rewrite``): an entry per row
that does not replicate, the reason kept where the verdict is unchanged, flagged where it changed.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.verdicts.declaration import Verdict

VERDICTS = (Verdict.DOES_NOT_REPLICATE.value, Verdict.INCONCLUSIVE.value, Verdict.NOT_APPLICABLE.value,
            Verdict.NOT_INTERPRETABLE.value)
CHANGED = "VERDICT CHANGED"  # the mark ``rewrite`` puts on a reason whose verdict changed (to be rewritten)


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
    """A row measured outside the band its entry records, or with another verdict than its entry's (or,
    unlisted, than "replicates")."""


@dataclass(frozen=True)
class Expectation:
    test_id: str
    verdict: str
    measured: float | None  # None: a "not applicable" entry, or an unlisted row (expected to replicate)
    band: tuple[float, float] | None
    reason: str
    path: Path
    note: str = ""
    listed: bool = True  # False: the row is not in the file, which expects it to replicate

    @classmethod
    def unlisted(cls, path: Path, test_id: str) -> "Expectation":
        """What a model's file says of a row it does not list: it replicates."""
        return cls(test_id, Verdict.REPLICATES.value, None, None, "not listed: expected to replicate", path,
                   listed=False)

    def holds(self, measured: float | None) -> bool:
        if self.band is None:
            return True
        return measured is not None and math.isfinite(measured) and self.band[0] <= measured <= self.band[1]

    def describe(self) -> str:
        if self.band is None:
            return "nothing measured"
        return f"measured {self.measured:g} (band [{self.band[0]:g}, {self.band[1]:g}])"

    def outdated(self, measured: float | None) -> ExpectationOutdated:
        value = "nothing (not measured)" if measured is None else f"{measured:g}"
        return ExpectationOutdated(
            f"{self.test_id}: measured {value}, outside the band [{self.band[0]:g}, {self.band[1]:g}] of its "
            f"expectation (recorded {self.measured:g}): update the entry [\"{self.test_id}\"] in {self.path}, or "
            "find what moved the value")


    def verdict_changed(self, verdict: str) -> ExpectationOutdated:
        where = (f"the entry [\"{self.test_id}\"] in {self.path}" if self.listed else
                 f"{self.path}, which does not list it (so expects it to replicate)")
        return ExpectationOutdated(
            f"{self.test_id}: verdict {verdict!r}, expected {self.verdict!r}: update {where} (pytest "
            "--update-expectations rewrites the file from the run), or find what changed the verdict")


def model_file_stem(model_name: str) -> str:
    """A file-system-safe name for a model (hub ids ``owner/name`` become ``owner__name``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.replace("/", "__"))


def load_expectations(directory: Path, model_name: str) -> dict[str, Expectation]:
    """The model's expectations by test id; a malformed entry raises ``ValueError`` naming it."""
    path = expectations_path(directory, model_name)
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    return {test_id: _expectation(path, test_id, entry) for test_id, entry in table.items()}


def expectations_path(directory: Path, model_name: str) -> Path:
    return directory / f"{model_file_stem(model_name)}.toml"


def _expectation(path: Path, test_id: str, entry) -> Expectation:
    if not isinstance(entry, dict) or not {"verdict", "reason"} <= set(entry):
        raise ValueError(f"{path}: entry {test_id!r} needs verdict and reason, and measured and band unless it "
                         "is not applicable (optional: note)")
    verdict = entry["verdict"]
    if verdict not in VERDICTS:
        raise ValueError(f"{path}: entry {test_id!r}: verdict {verdict!r}; accepted: {', '.join(VERDICTS)}")
    if verdict == Verdict.NOT_APPLICABLE.value and "measured" not in entry and "band" not in entry:
        return Expectation(test_id, verdict, None, None, str(entry["reason"]), path, str(entry.get("note", "")))
    if not {"measured", "band"} <= set(entry):
        raise ValueError(f"{path}: entry {test_id!r} ({verdict}) needs measured and band")
    measured, band = entry["measured"], entry["band"]
    numbers = isinstance(measured, (int, float)) and isinstance(band, list) and len(band) == 2 and all(
        isinstance(value, (int, float)) for value in band)
    if not numbers or not band[0] <= measured <= band[1]:
        raise ValueError(f"{path}: entry {test_id!r}: measured must be a number inside band = [low, high]; "
                         f"got measured = {measured!r}, band = {band!r}")
    return Expectation(test_id, verdict, float(measured), (float(band[0]), float(band[1])), str(entry["reason"]),
                       path, str(entry.get("note", "")))


HEADER = """# Rows of the claims that do not replicate on {model}: does not replicate, inconclusive or not applicable,
# each with the value measured when it was written, the band it must stay in and why. A row not listed is
# expected to replicate. `band` is measured +- max(10%, 1 point for % values, 0.01 otherwise). Rewrite
# from a run with `pytest claims/ --model {model} --update-expectations`; format and rules:
# harness/verdicts/expectations.py."""


def band_around(measured: float, unit: str) -> tuple[float, float]:
    """The band a written entry allows: measured ± max(10%, 1 point for % values, 0.01 otherwise)."""
    half = max(0.1 * abs(measured), 1.0 if unit in ("%", "points") else 0.01)
    return round(measured - half, 6), round(measured + half, 6)


def rewrite(path: Path, model_name: str, rows: dict[str, dict]) -> list[str]:
    """Rewrite the expectations file ``path`` from a run's rows (test id -> ``ClaimRecord.to_json()``):
    an entry per row that does not replicate; its reason kept where the verdict is unchanged, else marked
    ``CHANGED`` with the old verdict (a reason to write); entries of rows the run did not measure kept
    as they are. Returns the changes, one line each."""
    old = load_expectations(path.parent, model_name) if path.is_file() else {}
    text = path.read_text() if path.is_file() else ""
    header = text[: text.index("\n[")].rstrip() if "\n[" in text else HEADER.format(model=model_name)
    entries, changes = [], []
    for test_id in sorted(set(old) | set(rows)):
        row, before = rows.get(test_id), old.get(test_id)
        if row is None:
            entries.append(_entry(test_id, before.verdict, before.measured, before.band, before.note, before.reason))
            continue
        was = before.verdict if before else Verdict.REPLICATES.value
        if row["verdict"] == Verdict.REPLICATES.value:
            if before:
                changes.append(f"{test_id}: {was} -> replicates (entry removed)")
            continue
        reason = before.reason if before else _default_reason(row)
        if row["verdict"] != was:
            reason = f"{CHANGED} (was {was}): {reason}"
            changes.append(f"{test_id}: {was} -> {row['verdict']}")
        elif before and not before.holds(row["measured"]):
            changes.append(f"{test_id}: {before.measured:.4g} -> {row['measured']:.4g} (same verdict)")
        measured = row["measured"]
        band = None if measured is None else band_around(measured, row["unit"])
        note = "" if measured is None else (f"{measured:.4g} [{row['ci_low']:.4g}, {row['ci_high']:.4g}], n = {row['n']} "
                                            f"{row['n_unit']}, needs {row['tolerance']}")
        entries.append(_entry(test_id, row["verdict"], measured, band, note, reason))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n\n\n" + "\n".join(entries))
    return changes


def _default_reason(row: dict) -> str:
    """A new entry's reason: the failed preconditions of a row not applicable, else a placeholder."""
    failed = [name for name, holds in (row.get("preconditions") or {}).items() if not holds]
    if row["verdict"] == Verdict.NOT_APPLICABLE.value and failed:
        return "precondition not met: " + "; ".join(failed)
    return "TODO: why it does not replicate"


def _entry(test_id: str, verdict: str, measured: float | None, band: tuple[float, float] | None, note: str,
           reason: str) -> str:
    lines = [f'["{test_id}"]', f'verdict = "{verdict}"']
    if measured is not None:
        lines += [f"measured = {measured!r}", f"band = [{band[0]}, {band[1]}]"]
    if note:
        lines.append(f"note = {json.dumps(note, ensure_ascii=False)}")
    lines.append(f"reason = {json.dumps(reason, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"
