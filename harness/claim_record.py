"""What one claim test measured, decided with its declaration (one row of the report's table)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from harness.declaration import Claim, Rule


@dataclass
class ClaimRecord:
    claim: str  # the declaration's id, e.g. "D1" or "D1.random"
    section: str  # paper section, e.g. "§6.3"
    statement: str  # the declaration's one-line statement
    description: str  # what this test row measured
    paper_value: str  # what the paper reports, with its model and source tag
    measured: float
    threshold: float
    passes_when: str  # above, below or abs_below (the declaration's rule)
    threshold_kind: str  # paper, paper-qualitative, generic or suite control
    tolerance: str  # the pass condition in words, e.g. ">= 0.75"
    threshold_source: str  # the kind, with the paper's model when the kind is "paper"
    passed: bool
    ci_low: float | None = None
    ci_high: float | None = None
    unit: str = ""
    details: str = ""
    case: str | None = None
    requires: dict[str, bool] = field(default_factory=dict)  # further conditions the pass needs

    @classmethod
    def decide(cls, claim: Claim, rule: Rule, measured: float, *, case: str | None = None,
               ci: tuple[float, float] | None = None, description: str | None = None, details: str = "",
               requires: dict[str, bool] | None = None) -> "ClaimRecord":
        requires = dict(requires or {})
        paper = claim.paper_value(case)
        source = rule.kind.value + (f" ({paper.model})" if rule.kind.value == "paper" and paper.model else "")
        tolerance = rule.describe(claim.unit.strip() if claim.unit.strip() == "%" else "")
        return cls(
            claim=claim.id, section=claim.section, statement=claim.statement,
            description=description or claim.statistic, paper_value=str(paper), measured=float(measured),
            threshold=float(rule.threshold), passes_when=rule.passes_when, threshold_kind=rule.kind.value,
            tolerance=", ".join([tolerance, *requires]), threshold_source=source,
            passed=rule.passes(float(measured)) and all(requires.values()),
            ci_low=None if ci is None else float(ci[0]), ci_high=None if ci is None else float(ci[1]),
            unit=claim.unit.strip(), details=details, case=case, requires=requires,
        )

    def measured_text(self) -> str:
        value = _fmt(self.measured)
        if self.ci_low is not None and self.ci_high is not None and math.isfinite(self.ci_low):
            value += f" [{_fmt(self.ci_low)}, {_fmt(self.ci_high)}]"
        return value + (f" {self.unit}" if self.unit else "")

    def to_json(self) -> dict:
        return asdict(self)


def _fmt(value: float) -> str:
    if value is None or not math.isfinite(value):
        return str(value)
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
