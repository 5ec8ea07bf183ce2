"""A ratio of two effects measured on the same units, ρ = N/D (A3–A5's paired ratios, §6.1), with the
interval that inverts a test of N − ρD = 0 (Fieller 1954), each test studentized by the bootstrap.

A bootstrap of the ratio itself fails where D is small against its own noise: resampled ratios pile up
on one side of the point (Jensen: 1/D* is biased up when D* comes near 0), and on Gemma-3-270M the
studentized interval of A3's ratio excluded its own point (212 against [223, 2748]). The ratio is never
resampled here. For a candidate ρ, S(ρ) = N − ρD is a smooth statistic (a difference of effects, paired
on the same units), whose studentized bootstrap is calibrated (docs/calibration.md: paired differences);
ρ is in the 95% set when that test does not reject S(ρ) = 0 at 2.5% on either side:

    q*₂.₅(ρ) ≤ S(ρ)/ŝe(ρ) ≤ q*₉₇.₅(ρ),   t*_b(ρ) = (S*_b(ρ) − S(ρ))/ŝe*_b(ρ),

with ŝe(ρ)² = v_N − 2ρ c + ρ² v_D from the jackknife variances and covariance of (N, D) on the data,
and ŝe*_b(ρ) the same from each resample's own jackknife (``intervals.resampled``, studentized). One set
of resamples serves every ρ. ρ̂ = N/D itself is in the set whenever the t* straddle 0.

The set says what the data say about ρ: bounded when D is clearly away from 0; a half-line or the whole
line when it is not (as ρ → ±∞ the test becomes that of D = 0). A set of two half-lines (D unresolved, N
clearly ≠ 0) is reported as its hull, the whole line. The bounds are found on a grid over the whole line
(ρ = ρ̂ + s·tan θ) and refined by bisection. A one-sided p-value at a threshold t (``RatioTail``) is the
studentized test of S(t) at 0: with D > 0, ρ ≥ t exactly when N − tD ≥ 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from harness.measures.intervals import Resampled, resampled
from harness.measures.statistics import LEVEL, RESAMPLES, Estimate
from harness.measures.tails import Studentized

GRID = 4001  # angles θ over (−π/2, π/2), before bisection
BISECTIONS = 50


@dataclass(frozen=True)
class RatioTail:
    """The test-inversion family of a ratio N/D: ``numerator``, ``denominator`` on the data, ``variances``
    (v_N, v_D, c) from its jackknife, ``draws`` ``[B, 2]`` (N*, D*) and ``draw_variances`` ``[B, 3]`` (each
    resample's own), over ``n`` units."""

    numerator: float
    denominator: float
    variances: tuple[float, float, float]
    draws: Tensor
    draw_variances: Tensor
    n: int  # units

    def t_values(self, rho: Tensor) -> tuple[Tensor, Tensor]:
        """For each ρ of ``rho`` (``[G]``): S(ρ)/ŝe(ρ) ``[G]`` and t*(ρ) ``[G, B]`` (non-finite where ŝe* is 0)."""
        rho = rho.double()
        v_n, v_d, c = self.variances
        s = self.numerator - rho * self.denominator
        se = (v_n - 2 * rho * c + rho ** 2 * v_d).clamp(min=0).sqrt()
        drawn = self.draws[:, 0][None] - rho[:, None] * self.draws[:, 1][None]
        draw_var = self.draw_variances
        draw_se = (draw_var[:, 0][None] - 2 * rho[:, None] * draw_var[:, 2][None]
                   + rho[:, None] ** 2 * draw_var[:, 1][None]).clamp(min=0).sqrt()
        return s / se, (drawn - s[:, None]) / draw_se

    def at(self, rho: float) -> Studentized:
        """The studentized test of S(ρ) (``tails.Studentized``, its point S(ρ), its se ŝe(ρ))."""
        z, t = self.t_values(torch.tensor([rho], dtype=torch.float64))
        v_n, v_d, c = self.variances
        se = math.sqrt(max(v_n - 2 * rho * c + rho ** 2 * v_d, 0.0))
        finite = t[0][torch.isfinite(t[0])]
        return Studentized(self.numerator - rho * self.denominator, se, finite.sort().values)

    def p_at_least(self, t: float, strict: bool = False) -> float:
        return self.at(t).p_at_least(0.0, strict)

    def p_at_most(self, t: float, strict: bool = False) -> float:
        return self.at(t).p_at_most(0.0, strict)

    def accepted(self, rho: Tensor, level: float = LEVEL) -> Tensor:
        """Whether each ρ lies in the ``level`` set (the two-sided test of S(ρ) = 0 does not reject)."""
        z, t = self.t_values(rho)
        tail = (1 - level) / 2
        t = torch.where(torch.isfinite(t), t, torch.nan)
        bounds = torch.nanquantile(t, torch.tensor([tail, 1 - tail], dtype=torch.float64), dim=1)
        return (bounds[0] <= z) & (z <= bounds[1])

    def rejects(self, rho: float, level: float = LEVEL) -> tuple[bool, bool]:
        """Whether the test at ``rho`` puts the ratio above it, or below it (S(ρ) beyond its t* bounds)."""
        z, t = self.t_values(torch.tensor([rho], dtype=torch.float64))
        t = t[0][torch.isfinite(t[0])]
        tail = (1 - level) / 2
        low, high = torch.quantile(t, torch.tensor([tail, 1 - tail], dtype=torch.float64))
        return bool(z[0] > high), bool(z[0] < low)

    def at_infinity(self, sign: int, level: float = LEVEL) -> bool:
        """Whether the set reaches ρ → sign·∞: the test of D = 0 (S(ρ)/|ρ| → −sign·D) does not reject."""
        v_d = self.variances[1]
        if v_d <= 0:
            return False
        z = -sign * self.denominator / math.sqrt(v_d)
        t = -sign * (self.draws[:, 1] - self.denominator) / self.draw_variances[:, 1].sqrt()
        t = t[torch.isfinite(t)]
        tail = (1 - level) / 2
        low, high = torch.quantile(t, torch.tensor([tail, 1 - tail], dtype=torch.float64))
        return bool(low <= z <= high)

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        """The hull of the ``level`` set (module docstring): ±inf where it reaches infinity."""
        value = self.numerator / self.denominator
        v_n, v_d, _ = self.variances
        scale = math.sqrt(v_n + value ** 2 * v_d) / abs(self.denominator) or 1.0  # the delta method's se
        angle = lambda theta: value + scale * torch.tan(theta)
        theta = torch.linspace(-math.pi / 2, math.pi / 2, GRID + 2, dtype=torch.float64)[1:-1]
        inside = self.accepted(angle(theta), level)
        if not bool(inside.any()):
            raise ValueError("the ratio's test rejects every value (no interval)")
        first, last = int(inside.nonzero()[0]), int(inside.nonzero()[-1])
        low = (-math.inf if first == 0 and self.at_infinity(-1, level)
               else self._edge(theta, first, inside_above=True, angle=angle, level=level))
        high = (math.inf if last == len(theta) - 1 and self.at_infinity(1, level)
                else self._edge(theta, last, inside_above=False, angle=angle, level=level))
        return low, high

    def _edge(self, theta: Tensor, index: int, *, inside_above: bool, angle: Callable, level: float) -> float:
        """The set's edge next to grid point ``index`` (inside), by bisection toward its outside neighbour."""
        inside = float(theta[index])
        outside = (float(theta[index - 1]) if index > 0 else -math.pi / 2) if inside_above else \
            (float(theta[index + 1]) if index < len(theta) - 1 else math.pi / 2)
        for _ in range(BISECTIONS):
            middle = (inside + outside) / 2
            if bool(self.accepted(angle(torch.tensor([middle], dtype=torch.float64)), level)[0]):
                inside = middle
            else:
                outside = middle
        return float(angle(torch.tensor(inside, dtype=torch.float64)))


def ratio_tail(pair: Callable[..., Tensor], *per_unit: Tensor, resamples: int = RESAMPLES) -> RatioTail:
    """The ``RatioTail`` of ``pair(*per_unit) -> [..., 2]`` (N, D): every resample's (N*, D*) and each
    resample's jackknife variances of N, D and N + D (their covariance), through ``intervals.resampled``."""
    return tail_of(resampled(lambda *items: with_sum(pair(*items)), *per_unit, resamples=resamples,
                             method="studentized"))


def tail_of(drawn: Resampled, at: tuple = ()) -> RatioTail:
    """The ``RatioTail`` of a studentized ``Resampled`` of (N, D, N + D) (``with_sum``; trailing index ``at``
    picks one of several data sets, as ``harness.measures.calibration`` runs them)."""
    pick = lambda tensor: tensor[(slice(None), *at)].double()
    jackknife, draws, draw_var = pick(drawn.jackknife), pick(drawn.draws), pick(drawn.draw_se).pow(2)
    n = jackknife.shape[0]
    variance = (n - 1) / n * (jackknife - jackknife.mean(0)).pow(2).sum(0)
    covariance = lambda v: (v[..., 2] - v[..., 0] - v[..., 1]) / 2
    value = drawn.value[at].double()
    return RatioTail(float(value[0]), float(value[1]),
                     (float(variance[0]), float(variance[1]), float(covariance(variance))), draws[:, :2],
                     torch.stack([draw_var[:, 0], draw_var[:, 1], covariance(draw_var)], dim=-1), drawn.n)


def ratio_estimate(pair: Callable[..., Tensor], *per_unit: Tensor, unit: str = "prompts",
                   resamples: int = RESAMPLES) -> Estimate:
    """N/D with its Fieller-type 95% interval (module docstring); ``pair`` maps the resampled units to
    (N, D) ``[..., 2]``. The ratio is undefined on the data where D is 0."""
    tail = ratio_tail(pair, *per_unit, resamples=resamples)
    if tail.denominator == 0:
        raise ValueError(f"the ratio is undefined on the data: its denominator is 0 ({unit})")
    low, high = tail.interval()
    undefined = int((~torch.isfinite(tail.draws).all(-1) | ~torch.isfinite(tail.draw_variances).all(-1)).sum())
    return Estimate(tail.numerator / tail.denominator, low, high, tail.n, unit,
                    f"Fieller (studentized test of N − ρD = 0 inverted), bootstrap over {unit} ({resamples} resamples)",
                    undefined, resamples, tail)


def with_sum(pair: Tensor) -> Tensor:
    """(N, D) → (N, D, N + D): the jackknife variance of N + D gives the covariance of N and D."""
    return torch.cat([pair, pair.sum(-1, keepdim=True)], dim=-1)
