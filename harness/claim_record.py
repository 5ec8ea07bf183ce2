"""What one claim test measured, against what the paper reports (one row of the report's table)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class ClaimRecord:
    claim: str  # e.g. "D1"
    section: str  # paper section, e.g. "§6.3"
    description: str
    paper_value: str  # what the paper reports, with its model and source
    measured: float
    tolerance: str  # the pass condition, e.g. ">= 0.75"
    threshold_source: str  # "paper (gpt2-small)" or "generic"
    passed: bool
    ci_low: float | None = None
    ci_high: float | None = None
    unit: str = ""
    details: str = ""

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
