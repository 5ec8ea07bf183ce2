"""A matrix cell: a model's test rows of one claim, categorised and tallied into a claim-level verdict
(``claim_verdict``) and the cell's text (``ClaimCell``).

A row's category is its ``Verdict`` (read from ``results.json``), else skipped or crashed; a cell adds
mixed (decided rows disagree), failed (the model's column failed) and no rows.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from harness.verdicts.declaration import Verdict

MIXED, SKIPPED, CRASHED, FAILED, NO_ROWS = "mixed", "skipped", "crashed", "failed", ""
DECIDED = (Verdict.REPLICATES, Verdict.DOES_NOT_REPLICATE, Verdict.INCONCLUSIVE)
TALLY_WORDS = {Verdict.DOES_NOT_REPLICATE: "do not", Verdict.INCONCLUSIVE: Verdict.INCONCLUSIVE.value,
               Verdict.NOT_APPLICABLE: "n/a", Verdict.NOT_INTERPRETABLE: "not interpretable", SKIPPED: "skipped",
               CRASHED: "crashed"}
EMPTY_CELL = "—"


def row_category(row: dict) -> str:
    """A test row's verdict; a test that measured nothing (a ``not_measured`` row) is skipped or crashed."""
    verdict = _verdict(row.get("verdict"))
    if verdict is not None:
        return verdict
    return SKIPPED if row.get("outcome") == SKIPPED else CRASHED


def row_text(row: dict) -> str:
    """One test row: "verdict value [lo, hi]" (3 significant digits), or what happened instead."""
    category = row_category(row)
    value = row.get("measured")
    if not isinstance(category, Verdict) or not _finite(value):
        return category
    ci = f" [{_g(row.get('ci_low'))}, {_g(row.get('ci_high'))}]" if _finite(row.get("ci_low")) else ""
    return f"{category} {_g(value)}{ci}"


def claim_verdict(tally: Mapping[str, int]) -> str:
    """The claim-level verdict of a model's rows: the one verdict every decided row shares (replicates,
    does not replicate, inconclusive), else mixed; not applicable when no row was decided and some is n/a;
    else crashed or skipped."""
    decided = [verdict for verdict in DECIDED if tally.get(verdict)]
    if len(decided) == 1:
        return decided[0]
    if decided:
        return MIXED
    return next((c for c in (Verdict.NOT_INTERPRETABLE, Verdict.NOT_APPLICABLE, CRASHED, SKIPPED) if tally.get(c)),
                NO_ROWS)


def tally_text(tally: Mapping[str, int]) -> str:
    """"5/8 replicate, 2 do not, 1 inconclusive" (categories with no row left out; without a decided row,
    only what the rows were: "4 n/a")."""
    total = sum(tally.values())
    parts = [f"{tally.get(Verdict.REPLICATES, 0)}/{total} replicate"] if any(tally.get(v) for v in DECIDED) else []
    parts += [f"{tally[c]} {word}" for c, word in TALLY_WORDS.items() if tally.get(c)]
    return ", ".join(parts)


@dataclass
class ClaimCell:
    """A claim on one model: its verdict, the tally of its test rows and the cell text."""

    verdict: str
    tally: dict[str, int]
    text: str

    @classmethod
    def of(cls, rows: Sequence[dict], claim_level: str | None = None) -> "ClaimCell":
        """The cell of a model's ``rows``: its verdict the model's own claim-level verdict (``results.json``'s
        ``claim_verdicts``, combined by the claim's declared rule) where it has one, else ``claim_verdict``."""
        tally = dict(Counter(row_category(row) for row in rows))
        verdict = _verdict(claim_level) or claim_verdict(tally)
        if len(rows) == 1:
            return cls(verdict, tally, row_text(rows[0]))
        return cls(verdict, tally, f"{verdict}: {tally_text(tally)}")

    @classmethod
    def failed(cls) -> "ClaimCell":
        return cls(FAILED, {}, EMPTY_CELL)

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict, "tally": self.tally, "text": self.text}


def _verdict(value: object) -> Verdict | None:
    """``value`` (a row's ``verdict`` as read from JSON) as a ``Verdict``; None when it is none."""
    try:
        return Verdict(value)
    except ValueError:
        return None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _g(value: object) -> str:
    return f"{value:.3g}" if _finite(value) else "?"
