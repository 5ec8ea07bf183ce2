"""One claim-level verdict per claim, from its rows, with multiplicity control (issue 25 item 6).

A claim's rows (its parametrized tests: methods, pairs, cases) each have a verdict from their 95% CI and
the one-sided p-values that CI implies (``ClaimRecord.p_replicates``, ``p_not_replicates``). The claim's
declaration says how they combine (``Combine``: "every" row, "any" row, or the paper's named row, with
Holm's correction; ``harness.measures.multiplicity``), and ``decide_claim`` gives the claim one verdict:

- replicates / does not replicate / inconclusive, from the deciding rows' p-values at 0.025 (one side of
  the 95% CI);
- not applicable where every deciding row is (a failed precondition), not interpretable where every
  deciding row is that or rests on a control that does not replicate;
- not measured where no deciding row has a record (skipped on this model, or deselected).

Rows the declaration does not pick, and rows that are not applicable or not interpretable, are listed but
not combined. A row
without p-values (an estimate built by hand, without its resampling) counts p = 0.025 on the side its CI
decided and 1 elsewhere: conservative, since Holm then can use it only as the last row standing. A row that
ran without a measurement (its test errored: record None) counts p = 1 on both sides, so an "every" claim
cannot replicate past it nor an "any" claim fail past it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from harness.measures.multiplicity import combine
from harness.verdicts.declaration import ALPHA, Combine, Verdict
from harness.verdicts.record import ClaimRecord

NOT_MEASURED = "not measured"
ERROR = "error"  # a row whose test ran without a measurement
VERDICTS = (*(verdict.value for verdict in Verdict), NOT_MEASURED)
UNDECLARED = Combine("every", reason="no combine rule declared: every row")
UNDECIDED = (Verdict.NOT_APPLICABLE.value, Verdict.NOT_INTERPRETABLE.value)  # rows shown, not combined


@dataclass(frozen=True)
class RowDecision:
    """One row as the claim-level decision used it."""

    test_id: str
    verdict: str  # the row's own verdict (its CI)
    role: str  # "decides", "descriptive" (not picked by the declaration), "not applicable" or "not interpretable"
    p_replicates: float | None = None
    p_not_replicates: float | None = None
    p_replicates_adjusted: float | None = None  # as compared with 0.025 (Holm-adjusted on the corrected side)
    p_not_replicates_adjusted: float | None = None


@dataclass(frozen=True)
class ClaimVerdict:
    claim: str
    verdict: str  # one of ``VERDICTS``
    rule: str  # the combine rule in words
    how: str  # "every", "any" or "row"
    rows: tuple[RowDecision, ...]
    picks: str = ""  # the test-id parameter picking the deciding rows ("": every row)
    p_replicates: float | None = None  # the claim's combined p-values (<= 0.025 exactly where decided)
    p_not_replicates: float | None = None
    reason: str = ""  # the declaration's reason for its rule
    note: str = ""

    def row_counts(self) -> dict[str, int]:
        """How many rows have each verdict (every row, deciding or not)."""
        return {verdict: sum(row.verdict == verdict for row in self.rows)
                for verdict in (*(verdict.value for verdict in Verdict), ERROR)}

    def to_json(self) -> dict:
        return asdict(self) | {"rows": [asdict(row) for row in self.rows]}


def parameters_of(test_id: str) -> frozenset[str]:
    """A test id's parameter ids (``test_d1_methods_agree[layer0-pca-das]``: layer0, pca, das)."""
    return frozenset(test_id.partition("[")[2].removesuffix("]").split("-"))


def picked(test_id: str, token: str) -> bool:
    """Whether the row ``test_id`` is among the declaration's rows ``token``: one of its test-id parameters
    (``layer0`` in ``test_d1_methods_agree[layer0-pca-das]``); every row for ""."""
    return not token or token in parameters_of(test_id)


def _p_values(record: ClaimRecord | None) -> tuple[float, float]:
    """The row's p-values; without them (no tail), 0.025 on the side its CI decided and 1 elsewhere; 1 and 1
    for a row without a measurement."""
    if record is None:
        return 1.0, 1.0
    if record.p_replicates is not None and record.p_not_replicates is not None:
        return record.p_replicates, record.p_not_replicates
    return (ALPHA if record.verdict == Verdict.REPLICATES else 1.0,
            ALPHA if record.verdict == Verdict.DOES_NOT_REPLICATE else 1.0)


def decide_claim(claim_id: str, combine_rule: Combine | None,
                 rows: Sequence[tuple[str, ClaimRecord | None]]) -> ClaimVerdict:
    """The claim-level verdict of ``claim_id`` from its ``rows`` (test id, record; None: the test ran
    without a measurement) under ``combine_rule`` (the declaration's ``Claim.combine``; None: every row).
    Module docstring."""
    rule = combine_rule or UNDECLARED
    how = "every" if rule.how == "row" else rule.how
    text = rule.describe() + f" (one-sided p <= {ALPHA:g}{', Holm' if len(rows) > 1 else ''})"
    chosen = [i for i, (test_id, _) in enumerate(rows) if picked(test_id, rule.rows)]
    verdicts = [ERROR if record is None else record.verdict for _, record in rows]
    p_values = [(None, None) if record is None else (record.p_replicates, record.p_not_replicates) for _, record in rows]
    deciding = [i for i in chosen if verdicts[i] not in UNDECIDED]
    decided: dict[int, RowDecision] = {
        i: RowDecision(rows[i][0], verdicts[i], verdicts[i] if verdicts[i] in UNDECIDED else "descriptive",
                       *p_values[i])
        for i in range(len(rows))}
    common = dict(rule=text, how=rule.how, picks=rule.rows, reason=rule.reason)
    if not deciding:
        unreadable = [rows[i][1] for i in chosen if verdicts[i] == Verdict.NOT_INTERPRETABLE]
        if unreadable:
            controls = sorted({control for record in unreadable for control in record.failed_controls})
            verdict, note = Verdict.NOT_INTERPRETABLE.value, f"control(s) {', '.join(controls)} do not replicate"
        elif chosen:
            verdict, note = Verdict.NOT_APPLICABLE.value, "every deciding row is not applicable"
        else:
            verdict, note = NOT_MEASURED, f"no row matches '{rule.rows}'" if rows else "no row has a record"
        return ClaimVerdict(claim_id, verdict, rows=tuple(decided.values()), note=note, **common)
    p_pass, p_fail = zip(*(_p_values(rows[i][1]) for i in deciding))
    decision = combine(how, p_pass, p_fail, ALPHA)
    verdict = (Verdict.REPLICATES if decision.passes else Verdict.DOES_NOT_REPLICATE if decision.fails
               else Verdict.INCONCLUSIVE)
    for i, adjusted_pass, adjusted_fail in zip(deciding, decision.adjusted_pass, decision.adjusted_fail):
        decided[i] = RowDecision(rows[i][0], verdicts[i], "decides", *p_values[i], adjusted_pass, adjusted_fail)
    without = sum(p_values[i][0] is None and verdicts[i] != ERROR for i in deciding)
    errors = sum(verdicts[i] == ERROR for i in deciding)
    notes = [f"{without} row(s) without p-values counted conservatively" if without else "",
             f"{errors} row(s) without a measurement (error) count p = 1" if errors else "",
             f"{len(chosen) - len(deciding)} not-applicable or not-interpretable row(s) left out"
             if len(deciding) < len(chosen) else ""]
    return ClaimVerdict(claim_id, verdict.value, rows=tuple(decided.values()), p_replicates=decision.p_pass,
                        p_not_replicates=decision.p_fail, note="; ".join(filter(None, notes)), **common)


def claim_verdict_counts(verdicts: Sequence[ClaimVerdict]) -> dict[str, int]:
    """How many claims have each claim-level verdict."""
    return {verdict: sum(v.verdict == verdict for v in verdicts) for verdict in VERDICTS}
