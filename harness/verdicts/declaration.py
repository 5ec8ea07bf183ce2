"""What a claim declaration is: the statistic, the paper's value, the threshold and its kind.

Each claim of the paper is declared once (``harness/verdicts/declared.py``); the claim test, the report
and the expectations read that declaration. A test measures; ``Claim.decide`` turns the measurement
into a verdict with the rule that applies to the model under test. ``Rule.p_values`` gives the row's
one-sided p-values (agreeing with its CI's verdict), and ``Combine`` says how a claim's rows make one
claim-level verdict (``harness.verdicts.claim_level``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from typing import Mapping

from harness.measures.statistics import LEVEL


class ThresholdKind(str, Enum):
    """Where a threshold comes from."""

    PAPER = "paper"  # a number the paper reports, on the model it names
    PAPER_QUALITATIVE = "paper-qualitative"  # the paper states it without a number; the cut-off is the suite's
    GENERIC = "generic"  # the suite's threshold for a model the paper did not measure
    SUITE_CONTROL = "suite control"  # a control the suite adds (random directions, matched sentences)


PASSES_WHEN = ("above", "below", "abs_below")
ALPHA = (1 - LEVEL) / 2  # a one-sided p-value decides at this level, as a 95% two-sided CI's edge does


class Verdict(StrEnum):
    """A claim's verdict, decided by its 95% CI against the declared threshold: the one definition of the
    verdict strings (records, expectations, the report and the matrix read and write these values)."""

    REPLICATES = "replicates"  # the whole CI on the passing side
    DOES_NOT_REPLICATE = "does not replicate"  # the whole CI on the failing side
    INCONCLUSIVE = "inconclusive"  # the CI straddles the threshold
    NOT_APPLICABLE = "not applicable"  # the model fails the claim's precondition (the task, a prior effect)
    NOT_INTERPRETABLE = "not interpretable"  # a control the row rests on does not replicate: it cannot be read


class Kind(StrEnum):
    """What a declaration is to the replication: the report tallies paper claims apart from the rest."""

    PAPER = "paper claim"  # a claim the paper makes
    PRECONDITION = "precondition"  # what the model must do for paper claims to be tested on it (P0, M1)
    CONTROL = "control"  # a check that the measurement means what it says (random directions, unsteered text)
    ROBUST = "robust reading"  # a paper claim read in a way outlier dimensions cannot dominate (issue 26, item 5)
    BEYOND = "beyond the paper"  # the suite's own extension (transfer to other data sets)


@dataclass(frozen=True)
class Rule:
    """Pass condition: ``above``: measured >= threshold (> if ``strict``); ``below``: measured <=
    threshold (< if ``strict``); ``abs_below``: |measured − centre| <= threshold (< if ``strict``).
    ``threshold=None`` (or ``centre=None``) means the test computes it from the data as ``origin`` says
    and passes it to ``claim.check``."""

    threshold: float | None
    passes_when: str
    kind: ThresholdKind
    origin: str = ""
    strict: bool = False
    centre: float | None = 0.0

    def __post_init__(self) -> None:
        if self.passes_when not in PASSES_WHEN:
            raise ValueError(f"passes_when {self.passes_when!r}; accepted: {', '.join(PASSES_WHEN)}")

    @property
    def data_dependent(self) -> bool:
        return self.threshold is None or self.centre is None

    def resolved(self, threshold: float | None = None, centre: float | None = None) -> "Rule":
        """This rule with the values its test computed (only where the declaration leaves them open)."""
        if (threshold is not None and self.threshold is not None) or (centre is not None and self.centre is not None):
            raise ValueError(f"the rule ({self.origin}) declares its own threshold; a test may not replace it")
        rule = replace(self, threshold=self.threshold if threshold is None else threshold,
                       centre=self.centre if centre is None else centre)
        if rule.data_dependent:
            raise ValueError(f"the rule ({self.origin}) is computed from the data: pass threshold= (and centre=)")
        return rule

    def passes(self, measured: float) -> bool:
        if not math.isfinite(measured):
            return False
        if self.passes_when == "above":
            return measured > self.threshold if self.strict else measured >= self.threshold
        if self.passes_when == "below":
            return measured < self.threshold if self.strict else measured <= self.threshold
        distance = abs(measured - self.centre)
        return distance < self.threshold if self.strict else distance <= self.threshold

    def decide(self, ci_low: float, ci_high: float) -> Verdict:
        """Replicates when the whole CI passes, does not replicate when the whole CI fails, else inconclusive."""
        if self.passes(ci_low) and self.passes(ci_high):
            return Verdict.REPLICATES
        if self.passes_when == "abs_below":
            low, high = self.centre - self.threshold, self.centre + self.threshold
            outside = ci_high < low or ci_low > high if not self.strict else ci_high <= low or ci_low >= high
            return Verdict.DOES_NOT_REPLICATE if outside else Verdict.INCONCLUSIVE
        if not self.passes(ci_low) and not self.passes(ci_high):
            return Verdict.DOES_NOT_REPLICATE
        return Verdict.INCONCLUSIVE

    def p_values(self, tail, ci_low: float, ci_high: float) -> tuple[float, float]:
        """``(p_replicates, p_not_replicates)``: one-sided p-values from the estimate's ``tail``
        (``harness.measures.tails``) against "the claim fails" and "the claim holds"; each is <= ``ALPHA``
        exactly where ``decide`` says replicates / does not replicate. ``abs_below``: replicating needs both
        edges (intersection-union: the larger p), not replicating either side (the smaller). Where float
        rounding at the CI's own edge makes the inversion disagree with the CI, the CI decides (the p-value
        is set to ``ALPHA`` or just above it)."""
        p_pass, p_fail = self.inverted(tail)
        verdict = self.decide(ci_low, ci_high)
        return (_agreeing(p_pass, verdict is Verdict.REPLICATES),
                _agreeing(p_fail, verdict is Verdict.DOES_NOT_REPLICATE))

    def inverted(self, tail) -> tuple[float, float]:
        """``p_values`` as the inversion of ``tail`` gives them, before the CI settles its own edge."""
        s = self.strict
        if self.passes_when == "above":
            p_pass, p_fail = tail.p_at_least(self.threshold, s), tail.p_at_most(self.threshold, not s)
        elif self.passes_when == "below":
            p_pass, p_fail = tail.p_at_most(self.threshold, s), tail.p_at_least(self.threshold, not s)
        else:
            low, high = self.centre - self.threshold, self.centre + self.threshold
            p_pass = max(tail.p_at_least(low, s), tail.p_at_most(high, s))
            p_fail = min(tail.p_at_most(low, not s), tail.p_at_least(high, not s))
        return p_pass, p_fail

    def n_to_decide(self, measured: float, ci_low: float, ci_high: float, n: int) -> int | None:
        """The n at which a CI of this width (shrinking as 1/sqrt(n)) around ``measured`` would clear the
        nearest boundary; None when ``measured`` sits on a boundary."""
        boundaries = ([self.centre - self.threshold, self.centre + self.threshold]
                      if self.passes_when == "abs_below" else [self.threshold])
        boundary = min(boundaries, key=lambda b: abs(measured - b))
        distance = abs(measured - boundary)
        half_width = (measured - ci_low) if boundary < measured else (ci_high - measured)
        if distance == 0 or half_width <= 0 or math.isinf(half_width):  # an unbounded CI: no n is in sight
            return None
        return max(n, math.ceil(n * (half_width / distance) ** 2))

    def describe(self, unit: str = "") -> str:
        value = f"{_number(self.threshold)}{unit}"
        if self.passes_when == "abs_below":
            subject = "|value|" if self.centre == 0 else f"|value − {_number(self.centre)}|"
            return f"{subject} {'<' if self.strict else '<='} {value}"
        sign = {"above": (">=", ">"), "below": ("<=", "<")}[self.passes_when][self.strict]
        return f"{sign} {value}"


@dataclass(frozen=True)
class PaperValue:
    """What the paper reports, on which model, and the source tag of docs/PAPER.md ([3P], [NB:…], [REVIEW], …)."""

    text: str
    model: str = ""
    source: str = ""

    def __str__(self) -> str:
        where = " ".join(part for part in (self.model, f"[{self.source}]" if self.source else "") if part)
        return f"{self.text} ({where})" if where else self.text


@dataclass(frozen=True)
class Case:
    """A parametrized case of a claim whose paper value or rule differs from the claim's."""

    paper: PaperValue | None = None
    rule: Rule | None = None
    paper_rule: Rule | None = None


COMBINE_HOW = ("every", "any", "row")
CORRECTIONS = ("holm",)


@dataclass(frozen=True)
class Combine:
    """How a claim's rows (its parametrized tests) make one claim-level verdict
    (``harness.verdicts.claim_level``), and why (``reason``: the paper's reading).

    - "every": the claim holds where every deciding row holds (intersection-union: each row at its own
      level, no correction); it does not replicate where ``correction`` across the rows rejects "holds" for
      at least one row.
    - "any": it holds where ``correction`` across the rows rejects "fails" for at least one row; it does
      not replicate only where every deciding row does not.
    - "row": the paper's own row decides (``rows`` names it); the others are descriptive.

    ``rows``: a test-id parameter (``layer0`` of ``test_d1_methods_agree[layer0-pca-das]``) picking the
    deciding rows; "" (every row). Rows not picked are shown, not combined."""

    how: str
    rows: str = ""
    reason: str = ""
    correction: str = "holm"

    def __post_init__(self) -> None:
        if self.how not in COMBINE_HOW or self.correction not in CORRECTIONS or (self.how == "row" and not self.rows):
            raise ValueError(f"Combine: how one of {COMBINE_HOW} (\"row\" with the row it names), correction one "
                             f"of {CORRECTIONS}; got {self}")

    def describe(self) -> str:
        among = f" among the rows '{self.rows}'" if self.rows and self.how != "row" else ""
        return {"every": f"every row holds{among} (each at its own level); does not replicate if {self.correction} "
                         f"across them rejects 'holds' for one",
                "any": f"some row holds{among} ({self.correction} across them rejects 'fails' for one); does not "
                       f"replicate if every row does not",
                "row": f"the paper's row '{self.rows}' decides; the others are descriptive"}[self.how]


@dataclass(frozen=True)
class Claim:
    """One claim: id (``D1``, or ``D1.random`` for a second statistic of D1), section, statement."""

    id: str
    section: str
    statement: str
    statistic: str
    paper: PaperValue
    rule: Rule
    unit: str = ""
    paper_rule: Rule | None = None  # replaces ``rule`` when the model under test is ``paper.model``
    cases: Mapping[str, Case] = field(default_factory=dict)
    protocol: Mapping[str, object] = field(default_factory=dict)  # settings fixed before measuring (grids, scales)
    preconditions: str = ""  # what must hold for the claim to apply (else "not applicable")
    combine: Combine | None = None  # how its rows make one claim-level verdict (None: "every" row)
    kind: Kind = Kind.PAPER
    controls: tuple[str, ...] = ()  # the control claims its rows rest on: one that does not replicate binds

    def __post_init__(self) -> None:
        if self.kind is Kind.CONTROL and self.controls:
            raise ValueError(f"{self.id}: a control rests on no other control")

    @property
    def family(self) -> str:
        """The paper claim this declaration belongs to (``D1`` for ``D1.random``)."""
        return self.id.split(".")[0]

    def paper_value(self, case: str | None = None) -> PaperValue:
        override = self.cases.get(case) if case else None
        return (override.paper if override and override.paper else None) or self.paper

    def rule_for(self, model_name: str, case: str | None = None) -> Rule:
        override = self.cases.get(case) if case else None
        on_paper_model = bool(self.paper.model) and model_name == self.paper.model
        if on_paper_model:
            paper_rule = (override.paper_rule if override else None) or self.paper_rule
            if paper_rule:
                return paper_rule
        return (override.rule if override and override.rule else None) or self.rule


def _agreeing(p: float, decided: bool) -> float:
    """``p`` made to agree with the CI's decision at ``ALPHA`` (it differs only by rounding at the edge)."""
    p = min(max(float(p), 0.0), 1.0)
    if decided:
        return min(p, ALPHA)
    return p if p > ALPHA else math.nextafter(ALPHA, 1.0)


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e4 else f"{value:.3g}"
