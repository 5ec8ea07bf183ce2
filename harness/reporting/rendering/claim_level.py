"""The report's claim-level table: one verdict per claim from its rows (``harness.verdicts.claim_level``),
near the top of ``REPORT.md``, before the row-by-row table."""

from __future__ import annotations

from typing import Mapping, Sequence

from tabulate import tabulate

from harness.verdicts.claim_level import ClaimVerdict
from harness.verdicts.declaration import Verdict

INTRO = ("Each claim gets one verdict from its rows (its parametrized tests), as its declaration's combine rule "
         "says (`harness/verdicts/declared.py`): *every* row must hold (each at its own level; a claim does not "
         "replicate if Holm across the rows rejects \"holds\" for one), *any* row holding suffices (Holm across "
         "the rows rejects \"fails\" for one; it does not replicate only if every row does not), or the paper's "
         "own row decides. Each row's one-sided p-values come from the same resampling as its 95% CI and agree "
         "with it at 0.025. Rows the rule does not pick are shown in the row table, not combined; *not measured*: "
         "no row has a record (skipped on this model).")


def combine_text(verdict: ClaimVerdict) -> str:
    """The combine rule in a few words: "every row", "every 'layer0' row", "any row (Holm)", "row 'paper_prompt'"."""
    among = f" '{verdict.picks}'" if verdict.picks else ""
    return {"every": f"every{among} row", "any": f"any{among} row (Holm)", "row": f"row{among}"}[verdict.how]


def row_counts_text(verdict: ClaimVerdict) -> str:
    """The rows' own verdicts, and how many of them decide the claim."""
    counts = ", ".join(f"{count} {name}" for name, count in verdict.row_counts().items() if count)
    deciding = sum(row.role == "decides" for row in verdict.rows)
    return f"{counts} ({deciding} of {len(verdict.rows)} decide)" if verdict.rows else "—"


def verdict_text(verdict: ClaimVerdict) -> str:
    side = {Verdict.REPLICATES.value: verdict.p_replicates, Verdict.DOES_NOT_REPLICATE.value: verdict.p_not_replicates}
    p = side.get(verdict.verdict)
    exact = all(row.p_replicates is not None for row in verdict.rows if row.role == "decides")
    if p is None or not exact:
        return verdict.verdict
    return verdict.verdict + (f" (p = {p:.2g})" if p >= 0.001 else " (p < 0.001)")


def claim_level_table(verdicts: Sequence[ClaimVerdict], statements: Mapping[str, str]) -> str:
    """One row per claim: claim, statement, combine rule, the rows' verdict counts, the claim-level verdict."""
    rows = [[v.claim, statements.get(v.claim, ""), combine_text(v), row_counts_text(v), verdict_text(v)]
            for v in verdicts]
    return tabulate(rows, headers=["claim", "statement", "combines", "rows", "claim-level verdict"], tablefmt="github")
