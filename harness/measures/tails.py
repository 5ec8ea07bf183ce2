"""One-sided p-values that agree with the 95% CIs they come from (issue 25 item 6, claim-level verdicts).

Each interval procedure is a family of bounds L(α) ≤ U(α), one per one-sided level α (the 95% CI is
[L(0.025), U(0.025)]), L non-decreasing and U non-increasing in α. Inverting the family at a threshold t
gives two p-values:

- ``p_at_least(t)`` = inf {α : L(α) ≥ t} (``strict``: L(α) > t), against θ below t;
- ``p_at_most(t)`` = inf {α : U(α) ≤ t} (``strict``: U(α) < t), against θ above t;

so that a CI lies wholly at or above t exactly when ``p_at_least(t) <= 0.025`` (up to float rounding at the
CI's own edge; ``Rule.p_values`` in ``harness.verdicts.declaration`` settles that edge by the CI). The
kinds, one per procedure (``statistics`` and ``intervals`` attach them to every ``Estimate``):

- ``Percentile`` (``bootstrap``, ``draws_estimate``, ``CrossFit``, ``selected``): L(α) is the α-quantile of
  the finite draws as ``torch.quantile`` interpolates it (position α(B − 1) among the B sorted draws), so
  the p-value is the interpolated share of draws on the failing side of t. Ties: draws equal to t count
  on the passing side of a non-strict rule (x ≥ t) and on the failing side of a strict one (x > t).
- ``BCa``: the same draws at the levels g(α) = Φ(ẑ0 + (ẑ0 + z_α)/(1 − â(ẑ0 + z_α))) (Efron & Tibshirani
  1993, §14.3): p = g⁻¹(t's interpolated position), g inverted in closed form.
- ``Studentized``: L(α) = θ̂ − ŝe·T(1 − α), T the t* quantiles: p = the interpolated share of t* beyond
  (θ̂ − t)/ŝe (Efron & Tibshirani 1993, §12.5).
- ``Score`` (``wilson``): the one-sided score test, 1 − Φ((p̂ − π)/√(π(1 − π)/n)), whose inversion the
  Wilson interval is (Wilson 1927).
- ``Point`` (``fixed``; a degenerate CI): 0 or 1 from the point.
- ``Scaled``: another tail times a factor (``Estimate.scaled``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import torch
from torch import Tensor

_NORMAL = NormalDist()
FLOOR = 1e-12  # BCa's clamp of its level map's denominator (``intervals.bca_interval``)


def sorted_finite(draws: Tensor) -> Tensor:
    """The finite values of ``draws``, flattened, in float64, sorted."""
    values = draws.flatten().double()
    return values[torch.isfinite(values)].sort().values


def reaching(ordered: Tensor, t: float) -> float:
    """inf {q ∈ [0, 1] : Q(q) ≥ t}, Q the linearly interpolated quantile function of the sorted ``ordered``
    (1 where Q never reaches t)."""
    count = len(ordered)
    if float(ordered[0]) >= t:
        return 0.0
    if float(ordered[-1]) < t:
        return 1.0
    j = int(torch.searchsorted(ordered, torch.tensor([t], dtype=torch.float64), right=False)[0])
    below, above = float(ordered[j - 1]), float(ordered[j])
    return (j - 1 + (t - below) / (above - below)) / (count - 1)


def staying(ordered: Tensor, t: float) -> float:
    """sup {q ∈ [0, 1] : Q(q) ≤ t} (0 where Q(0) > t)."""
    count = len(ordered)
    if float(ordered[-1]) <= t:
        return 1.0
    if float(ordered[0]) > t:
        return 0.0
    j = int(torch.searchsorted(ordered, torch.tensor([t], dtype=torch.float64), right=True)[0]) - 1
    below, above = float(ordered[j]), float(ordered[j + 1])
    return (j + (t - below) / (above - below)) / (count - 1)


@dataclass(frozen=True)
class Percentile:
    """The percentile interval of the sorted finite ``draws``: L(α) = Q(α), U(α) = Q(1 − α)."""

    draws: Tensor

    def p_at_least(self, t: float, strict: bool = False) -> float:
        return staying(self.draws, t) if strict else reaching(self.draws, t)

    def p_at_most(self, t: float, strict: bool = False) -> float:
        return 1.0 - (reaching(self.draws, t) if strict else staying(self.draws, t))


@dataclass(frozen=True)
class BCa:
    """The BCa interval: the sorted finite ``draws`` at the levels g(α) (module docstring), bias correction
    ``z0`` and acceleration ``a`` as ``intervals.bca_interval`` computes them."""

    draws: Tensor
    z0: float
    a: float

    def level(self, u: float) -> float:
        """g(u), 0 < u < 1: the quantile level BCa reads for the one-sided level u (``intervals.bca_interval``)."""
        shifted = self.z0 + _NORMAL.inv_cdf(u)
        return _NORMAL.cdf(self.z0 + shifted / max(1.0 - self.a * shifted, FLOOR))

    def alpha_for(self, q: float) -> float:
        """inf {u ∈ [0, 1] : g(u) ≥ q} = sup {u : g(u) ≤ q} (g is continuous and strictly increasing)."""
        if q <= 0.0:
            return 0.0
        if q >= 1.0:
            return 1.0
        y, a = _NORMAL.inv_cdf(q) - self.z0, self.a  # solve w / max(1 − a w, FLOOR) = y for w
        if a > 0 and y <= -1.0 / a:
            return 0.0
        if a < 0 and y >= -1.0 / a:
            return 1.0
        switch = (1.0 - FLOOR) / a if a else math.inf  # where the clamp starts
        clamped = a != 0 and (y >= switch / FLOOR if a > 0 else y <= switch / FLOOR)
        w = y * FLOOR if clamped else y / (1.0 + a * y)
        return _NORMAL.cdf(w - self.z0)

    def p_at_least(self, t: float, strict: bool = False) -> float:
        return self.alpha_for(staying(self.draws, t) if strict else reaching(self.draws, t))

    def p_at_most(self, t: float, strict: bool = False) -> float:
        return 1.0 - self.alpha_for(reaching(self.draws, t) if strict else staying(self.draws, t))


@dataclass(frozen=True)
class Studentized:
    """The bootstrap-t interval: L(α) = value − se·T(1 − α), U(α) = value − se·T(α), T the interpolated
    quantiles of the sorted finite ``t`` (se > 0)."""

    value: float
    se: float
    t: Tensor

    def p_at_least(self, t: float, strict: bool = False) -> float:
        z = (self.value - t) / self.se
        return 1.0 - (reaching(self.t, z) if strict else staying(self.t, z))

    def p_at_most(self, t: float, strict: bool = False) -> float:
        z = (self.value - t) / self.se
        return staying(self.t, z) if strict else reaching(self.t, z)


@dataclass(frozen=True)
class Score:
    """The Wilson score interval of ``successes`` of ``n`` (times ``scale``): the one-sided score tests."""

    successes: int
    n: int
    scale: float = 100.0

    def _statistic(self, share: float) -> float:
        observed = self.successes / self.n
        return (observed - share) / math.sqrt(share * (1 - share) / self.n)

    def p_at_least(self, t: float, strict: bool = False) -> float:
        share, observed = t / self.scale, self.successes / self.n
        if share < 0 or (share == 0 and (not strict or observed > 0)):
            return 0.0
        if share >= 1 or share == 0:
            return 1.0
        return 1.0 - _NORMAL.cdf(self._statistic(share))

    def p_at_most(self, t: float, strict: bool = False) -> float:
        share, observed = t / self.scale, self.successes / self.n
        if share > 1 or (share == 1 and (not strict or observed < 1)):
            return 0.0
        if share <= 0 or share == 1:
            return 1.0
        return _NORMAL.cdf(self._statistic(share))


@dataclass(frozen=True)
class Point:
    """No CI (``fixed``) or a CI that is its point: every bound is ``value``."""

    value: float

    def p_at_least(self, t: float, strict: bool = False) -> float:
        return 0.0 if (self.value > t if strict else self.value >= t) else 1.0

    def p_at_most(self, t: float, strict: bool = False) -> float:
        return 0.0 if (self.value < t if strict else self.value <= t) else 1.0


@dataclass(frozen=True)
class Scaled:
    """``inner``'s bounds times ``factor`` (a negative factor swaps the lower and upper bounds)."""

    inner: object
    factor: float

    def p_at_least(self, t: float, strict: bool = False) -> float:
        if self.factor == 0:
            return Point(0.0).p_at_least(t, strict)
        side = self.inner.p_at_least if self.factor > 0 else self.inner.p_at_most
        return side(t / self.factor, strict)

    def p_at_most(self, t: float, strict: bool = False) -> float:
        if self.factor == 0:
            return Point(0.0).p_at_most(t, strict)
        side = self.inner.p_at_most if self.factor > 0 else self.inner.p_at_least
        return side(t / self.factor, strict)


Tail = Percentile | BCa | Studentized | Score | Point | Scaled
