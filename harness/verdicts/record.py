"""What one claim test measured, decided with its declaration (one row of the report's table)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from harness.verdicts.declaration import Claim, Rule, Verdict
from harness.measures.statistics import Estimate


@dataclass
class ClaimRecord:
    claim: str  # the declaration's id, e.g. "D1" or "D1.random"
    section: str  # paper section, e.g. "§6.3"
    statement: str  # the declaration's one-line statement
    description: str  # what this test row measured
    paper_value: str  # what the paper reports, with its model and source tag
    measured: float | None  # None: not measured (a failed precondition: the experiment was not run)
    ci_low: float | None
    ci_high: float | None
    n: int  # independent units the estimate rests on
    n_unit: str  # what a unit is ("pairs", "sentences", ...)
    ci_method: str  # how the CI was made (bootstrap, Wilson, cross-fitted selection, ...)
    threshold: float
    passes_when: str  # above, below or abs_below (the declaration's rule)
    threshold_kind: str  # paper, paper-qualitative, generic or suite control
    tolerance: str  # the pass condition in words, e.g. ">= 0.75"
    threshold_source: str  # the kind, with the paper's model when the kind is "paper"
    verdict: str  # replicates, does not replicate, inconclusive, not applicable
    passed: bool  # verdict == replicates
    undefined_resamples: int = 0
    n_to_decide: int | None = None  # inconclusive rows: the n at which this CI width would decide
    centre: float | None = None  # abs_below rules: the value the distance is measured from
    unit: str = ""
    details: str = ""
    case: str | None = None
    preconditions: dict[str, bool] = field(default_factory=dict)  # all must hold, else "not applicable"
    # one-sided p-values from the CI's own resampling (``Rule.p_values``): <= 0.025 exactly where the verdict
    # is replicates / does not replicate; None where not measured or the estimate carries no tail
    p_replicates: float | None = None
    p_not_replicates: float | None = None
    kind: str = "paper claim"  # the declaration's kind (``Kind``)
    failed_controls: list[str] = field(default_factory=list)  # controls that did not replicate (not interpretable)

    @classmethod
    def decide(cls, claim: Claim, rule: Rule, estimate: Estimate | None, *, case: str | None = None,
               description: str | None = None, details: str = "",
               preconditions: dict[str, bool] | None = None) -> "ClaimRecord":
        """The row of ``estimate`` under ``rule``; ``estimate`` None (nothing measured) only where a
        precondition fails: the row is then "not applicable" without a value."""
        preconditions = {name: bool(held) for name, held in (preconditions or {}).items()}
        if estimate is None and all(preconditions.values()):
            raise ValueError(f"{claim.id}: a claim whose preconditions hold must be measured")
        paper = claim.paper_value(case)
        source = rule.kind.value + (f" ({paper.model})" if rule.kind.value == "paper" and paper.model else "")
        verdict = (rule.decide(estimate.ci_low, estimate.ci_high) if all(preconditions.values())
                   else Verdict.NOT_APPLICABLE)
        n_to_decide = (rule.n_to_decide(estimate.value, estimate.ci_low, estimate.ci_high, estimate.n)
                       if verdict is Verdict.INCONCLUSIVE else None)
        measured = (None, None, None, 0, "", 0) if estimate is None else (
            estimate.value, estimate.ci_low, estimate.ci_high, estimate.n, estimate.unit, estimate.undefined)
        ci_method = ("not measured: " + "; ".join(name for name, held in preconditions.items() if not held)
                     if estimate is None else estimate.describe_ci())
        tail = None if estimate is None or verdict is Verdict.NOT_APPLICABLE else estimate.tail
        p_values = (None, None) if tail is None else rule.p_values(tail, estimate.ci_low, estimate.ci_high)
        return cls(
            claim=claim.id, section=claim.section, statement=claim.statement,
            description=description or claim.statistic, paper_value=str(paper), measured=measured[0],
            ci_low=measured[1], ci_high=measured[2], n=measured[3], n_unit=measured[4],
            ci_method=ci_method, threshold=float(rule.threshold), passes_when=rule.passes_when,
            threshold_kind=rule.kind.value, tolerance=rule.describe(claim.unit.strip() if claim.unit.strip() == "%" else ""),
            threshold_source=source, verdict=verdict.value, passed=verdict is Verdict.REPLICATES,
            undefined_resamples=measured[5], n_to_decide=n_to_decide,
            centre=rule.centre if rule.passes_when == "abs_below" else None, unit=claim.unit.strip(),
            details=details, case=case, preconditions=preconditions, p_replicates=p_values[0],
            p_not_replicates=p_values[1], kind=claim.kind.value,
        )

    def unreadable(self, failed_controls: list[str]) -> "ClaimRecord":
        """This row where controls it rests on do not replicate: measured, shown, but "not interpretable"
        (no verdict, no p-values); a row not applicable stays so."""
        if self.verdict == Verdict.NOT_APPLICABLE or not failed_controls:
            return self
        return replace(self, verdict=Verdict.NOT_INTERPRETABLE.value, passed=False, n_to_decide=None,
                       p_replicates=None, p_not_replicates=None, failed_controls=list(failed_controls))

    def measured_text(self) -> str:
        if self.measured is None:
            return "not measured"
        value = _fmt(self.measured)
        if self.ci_low != self.ci_high or self.ci_low != self.measured:
            value += f" [{_fmt(self.ci_low)}, {_fmt(self.ci_high)}]"
        return value + (f" {self.unit}" if self.unit else "")

    def failed_preconditions(self) -> list[str]:
        return [name for name, held in self.preconditions.items() if not held]

    def to_json(self) -> dict:
        return asdict(self)


def _fmt(value: float) -> str:
    if value is None or not math.isfinite(value):
        return str(value)
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
