"""BCa, studentized, cluster and paired-difference bootstrap intervals (issue "Intervals that mean what they say").

The percentile bootstrap (``statistics.bootstrap``) undercovers at the suite's sample sizes for skewed
statistics and ratios of means, and resampling tokens of word-clustered data ignores the clusters
(``harness.measures.calibration``, docs/calibration.md). The procedures here, each a ``method`` of
``interval``:

- "bca": the bias-corrected and accelerated percentile interval (Efron & Tibshirani 1993,
  §14.3): the 2.5%/97.5% levels are moved by a bias correction ẑ0 = Φ⁻¹(share of the resample values
  below the point, ties counted half) and an acceleration â from the jackknife over units (the statistic
  on the ``[n, n − 1]`` leave-one-out index batch). ``bca``.
- "studentized": the bootstrap-t interval (Efron & Tibshirani 1993, §12.5; Davison & Hinkley 1997,
  §5.2.1): [θ̂ − t*₉₇.₅ ŝe, θ̂ − t*₂.₅ ŝe], t*_b = (θ̂*_b − θ̂)/ŝe*_b, every standard error the jackknife's
  (Efron & Tibshirani 1993, ch. 11); within each resample its n drawn units are left out in turn (a
  ``[resamples, n, n − 1]`` index batch: n times the evaluations of the other methods). ``studentized``.
- "percentile": ``statistics.bootstrap``.

All share ``statistics.bootstrap``'s interface and seed, hence its very same resamples; undefined
resamples are dropped and counted. Each estimate carries its procedure's ``tail`` (``harness.measures.tails``:
``BCa``, ``Studentized``, ``Percentile``), the one-sided p-values its CI implies.

- ``cluster_bootstrap``: units carry a cluster id (a word type, a sentence); clusters are resampled with
  replacement and keep all their units (Davison & Hinkley 1997, §3.8, strategy 1: resample clusters,
  not units within them); n = the number of clusters; every jackknife leaves one cluster out.
- ``paired_difference``: one statistic on two measurements of the same units (or clusters), both sides
  recomputed on the same resampled units.
- ``resampled`` and ``estimate_from``: the two halves of every procedure (the statistic on the data, its
  resamples and jackknives; the interval). A statistic's output has the index's leading axes first; any
  further (trailing) axes carry through ``resampled`` (``harness.measures.calibration`` runs thousands
  of simulated data sets at once that way).

``scipy.stats.bootstrap(method="BCa")`` is not used: it draws its own resamples from numpy's generator,
so a seed would not give ``bootstrap``'s resamples (the percentile and BCa intervals of one statistic
could not share them, nor a paired comparison), and it neither drops nor counts undefined resamples.
tests/test_statistics.py checks the BCa interval against it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import torch
from torch import Tensor

from harness.measures.statistics import LEVEL, RESAMPLES, Estimate, percentile_interval, resample_indices
from harness.measures.tails import FLOOR, BCa, Percentile, Point, Studentized, sorted_finite

METHODS = ("percentile", "bca", "studentized")
NAMES = {"percentile": "percentile", "bca": "BCa", "studentized": "studentized (bootstrap-t)"}
JACKKNIFE_ENTRIES = 4_000_000  # unit indices per chunk of the per-resample jackknives
_NORMAL = NormalDist()


def leave_one_out(n: int) -> Tensor:
    """``[n, n − 1]``: row i holds every index but i (the jackknife's index batch)."""
    if n < 2:
        raise ValueError(f"a jackknife needs at least 2 units, got {n}")
    return torch.arange(n).expand(n, n)[~torch.eye(n, dtype=torch.bool)].view(n, n - 1)


def acceleration(jackknife: Tensor) -> float:
    """â = Σ dᵢ³ / (6 (Σ dᵢ²)^{3/2}), dᵢ = mean − θ̂₍ᵢ₎ over the finite leave-one-out values (Efron &
    Tibshirani 1993, §14.3); 0 where they do not vary (beyond rounding) or fewer than 2 are finite."""
    values = jackknife.flatten().double()
    values = values[torch.isfinite(values)]
    if values.numel() < 2:
        return 0.0
    deviation = values.mean() - values
    spread = float(deviation.pow(2).sum())
    if math.sqrt(spread) <= 1e-12 * (1.0 + float(values.abs().max())) * values.numel():
        return 0.0
    return float(deviation.pow(3).sum()) / (6.0 * spread ** 1.5)


def bca_tail(value: float, draws: Tensor, jackknife: Tensor) -> BCa | None:
    """The BCa family of bounds (``tails.BCa``): the sorted finite ``draws``, the bias correction ẑ0 and
    the acceleration â from the ``jackknife`` values; None if no draw is finite. The share of draws below
    the point counts ties half and is kept within [1/2B, 1 − 1/2B] (B finite draws), so that ẑ0 stays finite."""
    finite = sorted_finite(draws)
    if finite.numel() == 0:
        return None
    count = finite.numel()
    share = (float((finite < value).sum()) + 0.5 * float((finite == value).sum())) / count
    return BCa(finite, _NORMAL.inv_cdf(min(max(share, 0.5 / count), 1 - 0.5 / count)), acceleration(jackknife))


def bca_interval(value: float, draws: Tensor, jackknife: Tensor, level: float = LEVEL) -> tuple[float, float] | None:
    """The BCa interval (Efron & Tibshirani 1993, §14.3) from the point ``value``, bootstrap ``draws``
    and ``jackknife`` (leave-one-unit-out) values (``bca_tail``); non-finite draws dropped, None if none is
    finite."""
    return bca_bounds(bca_tail(value, draws, jackknife), level)


def bca_bounds(family: BCa | None, level: float = LEVEL) -> tuple[float, float] | None:
    """The BCa interval at ``level`` of the family ``bca_tail`` made (None for None)."""
    if family is None:
        return None
    z0, a = family.z0, family.a
    z = _NORMAL.inv_cdf(0.5 + level / 2)
    levels = []
    for tail in (-z, z):
        shifted = z0 + tail
        levels.append(_NORMAL.cdf(z0 + shifted / max(1.0 - a * shifted, FLOOR)))
    low, high = torch.quantile(family.draws, torch.tensor(levels, dtype=torch.float64))
    return float(low), float(high)


def jackknife_se(values: Tensor, dim: int = 0) -> Tensor:
    """The jackknife standard error √((m − 1)/m · Σ (θ̂₍ᵢ₎ − θ̂₍·₎)²) of the m leave-one-out values along
    ``dim`` (Efron & Tibshirani 1993, ch. 11); NaN where one is undefined."""
    m = values.shape[dim]
    values = values.double()
    return ((m - 1) / m * (values - values.mean(dim, keepdim=True)).pow(2).sum(dim)).sqrt()


def studentized_tail(value: float, se: float, draws: Tensor, draw_se: Tensor) -> Studentized | Point | None:
    """The bootstrap-t family of bounds (``tails.Studentized``): t*_b = (θ̂*_b − θ̂)/ŝe*_b over the
    resamples where both are finite and ŝe*_b > 0 (None if none is); the point itself (``tails.Point``)
    where ``se`` is 0 and every finite draw equals it (constant data), None where ``se`` is 0 otherwise (no
    scale to studentize by)."""
    if se == 0 or not math.isfinite(se):
        finite = draws[torch.isfinite(draws)]
        constant = finite.numel() > 0 and bool(torch.isclose(finite.double(), torch.tensor(value, dtype=torch.float64),
                                                             rtol=1e-12, atol=1e-12).all())
        return Point(value) if se == 0 and constant else None
    t = (draws.flatten().double() - value) / draw_se.flatten().double()
    t = t[torch.isfinite(t) & (draw_se.flatten() > 0)]
    return Studentized(value, se, t.sort().values) if t.numel() else None


def studentized_interval(value: float, se: float, draws: Tensor, draw_se: Tensor,
                         level: float = LEVEL) -> tuple[float, float] | None:
    """The bootstrap-t interval (Efron & Tibshirani 1993, §12.5) from the point, its standard error
    ``se``, the draws and each draw's standard error (``studentized_tail``): [θ̂ − t*₉₇.₅ ŝe, θ̂ − t*₂.₅ ŝe]."""
    return studentized_bounds(studentized_tail(value, se, draws, draw_se), level)


def studentized_bounds(family: Studentized | Point | None, level: float = LEVEL) -> tuple[float, float] | None:
    """The bootstrap-t interval at ``level`` of the family ``studentized_tail`` made (None for None)."""
    if family is None or isinstance(family, Point):
        return None if family is None else (family.value, family.value)
    tail = (1 - level) / 2
    low_t, high_t = torch.quantile(family.t, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return family.value - float(high_t) * family.se, family.value - float(low_t) * family.se


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"interval method must be one of {METHODS}, got {method!r}")


@dataclass(frozen=True)
class Resampled:
    """A statistic on the data and resampled (``resampled``); trailing axes ``...`` carried through."""

    value: Tensor  # [...]
    draws: Tensor  # [resamples, ...]
    jackknife: Tensor | None  # [n, ...]: each unit (cluster) left out
    draw_se: Tensor | None  # [resamples, ...]: each resample's jackknife standard error (studentized)
    n: int  # units or clusters

    def estimate(self, method: str, unit: str, what: str, at: tuple = ()) -> Estimate:
        """The ``Estimate`` (``estimate_from``) of the data set at trailing index ``at``."""
        pick = lambda tensor: None if tensor is None else tensor[(slice(None), *at)]
        return estimate_from(method, float(self.value[at]), pick(self.draws), self.n, unit, what,
                             jackknife=pick(self.jackknife), draw_se=pick(self.draw_se))


def estimate_from(method: str, value: float, draws: Tensor, n: int, unit: str, what: str, *,
                  jackknife: Tensor | None = None, draw_se: Tensor | None = None) -> Estimate:
    """An ``Estimate`` by ``method`` from the point, the draws, the jackknife values (BCa, studentized)
    and the draws' standard errors (studentized); ``what`` names the resampling. Undefined draws (for
    the studentized interval: draws whose t is undefined) dropped and counted."""
    _check_method(method)
    if not math.isfinite(value):
        raise ValueError(f"the statistic is undefined on the data itself (n = {n} {unit})")
    usable = torch.isfinite(draws.flatten())
    if method == "percentile":
        interval = percentile_interval(draws)
        tail = None if interval is None else Percentile(sorted_finite(draws))
    elif method == "bca":
        tail = bca_tail(value, draws, jackknife)
        interval = bca_bounds(tail)
    else:
        leave_out = jackknife.flatten()
        se = float(jackknife_se(leave_out[torch.isfinite(leave_out)]))
        tail = studentized_tail(value, se, draws, draw_se)
        interval = studentized_bounds(tail)
        usable &= torch.isfinite(draw_se.flatten()) & (draw_se.flatten() > 0)
    if interval is None:
        raise ValueError(f"{unit}: the statistic (or, studentized, its standard error) is undefined in every "
                         f"bootstrap resample")
    resamples = draws.numel()
    return Estimate(value, *interval, n, unit, f"{NAMES[method]} {what} ({resamples} resamples)",
                    resamples - int(usable.sum()), resamples, tail)


def cluster_members(clusters: Tensor) -> list[Tensor]:
    """The unit indices of each cluster (clusters in sorted id order, units in their order)."""
    _, inverse = clusters.unique(sorted=True, return_inverse=True)
    order = inverse.argsort(stable=True)
    return list(order.split(torch.bincount(inverse).tolist()))


def over_clusters(statistic: Callable[..., Tensor], per_unit: Sequence[Tensor], members: list[Tensor],
                  drawn: Tensor) -> Tensor:
    """``statistic`` of the units of the clusters drawn in each row of ``drawn`` (``[..., c]`` cluster
    indices): one call with ``[..., c × size]`` unit indices where every cluster has the same size,
    otherwise one call per row (``[1, m]`` indices)."""
    if len({len(m) for m in members}) == 1:
        index = torch.stack(members)[drawn].flatten(-2)
        return statistic(*(item[..., index] for item in per_unit))
    rows = [statistic(*(item[..., torch.cat([members[j] for j in row])[None]] for item in per_unit))
            for row in drawn.reshape(-1, drawn.shape[-1]).tolist()]
    out = torch.cat(rows)
    return out.reshape(*drawn.shape[:-1], *out.shape[1:])


def resampled(statistic: Callable[..., Tensor], *per_unit: Tensor, resamples: int = RESAMPLES,
              clusters: Tensor | None = None, method: str = "bca") -> Resampled:
    """The statistic on the data, on ``resamples`` resamples of its units (``statistics.bootstrap``'s
    seeded indices) or, with ``clusters`` (unit i's cluster id), of its clusters with all their units;
    and what ``method`` needs: the jackknife (BCa, studentized) and each resample's jackknife standard
    error (studentized, in chunks of resamples)."""
    _check_method(method)
    if clusters is None:
        n = per_unit[0].shape[-1]
        draw, size = (lambda index: statistic(*(item[..., index] for item in per_unit))), 1
    else:
        if clusters.shape != (per_unit[0].shape[-1],):
            raise ValueError(f"{tuple(clusters.shape)} cluster ids for {per_unit[0].shape[-1]} units")
        members = cluster_members(clusters)
        n, size = len(members), max(len(m) for m in members)
        if n < 2:
            raise ValueError(f"a cluster bootstrap over {n} cluster: resampling needs at least 2")
        draw = lambda index: over_clusters(statistic, per_unit, members, index)
    index = resample_indices(n, resamples)
    jackknife = draw(leave_one_out(n)) if method != "percentile" else None
    draw_se = None
    if method == "studentized":
        rows = max(1, JACKKNIFE_ENTRIES // (n * (n - 1) * size))
        draw_se = torch.cat([jackknife_se(draw(chunk[:, leave_one_out(n)]), dim=1) for chunk in index.split(rows)])
    return Resampled(statistic(*per_unit), draw(index), jackknife, draw_se, n)


def bca(statistic: Callable[..., Tensor], *per_unit: Tensor, unit: str = "prompts",
        resamples: int = RESAMPLES) -> Estimate:
    """``statistic(*per_unit)`` with its BCa CI over units (module docstring): ``statistics.bootstrap``'s
    interface and resamples, plus the jackknife through the same index interface."""
    return resampled(statistic, *per_unit, resamples=resamples, method="bca").estimate(
        "bca", unit, f"bootstrap over {unit}")


def studentized(statistic: Callable[..., Tensor], *per_unit: Tensor, unit: str = "prompts",
                resamples: int = RESAMPLES) -> Estimate:
    """``statistic(*per_unit)`` with its studentized (bootstrap-t) CI over units (module docstring):
    ``statistics.bootstrap``'s interface and resamples, each resample's standard error from its own
    jackknife."""
    return resampled(statistic, *per_unit, resamples=resamples, method="studentized").estimate(
        "studentized", unit, f"bootstrap over {unit}")


def cluster_bootstrap(statistic: Callable[..., Tensor], *per_unit: Tensor, clusters: Tensor,
                      unit: str = "clusters", resamples: int = RESAMPLES, method: str = "studentized") -> Estimate:
    """``statistic(*per_unit)`` with its CI over clusters resampled with replacement, each drawn
    cluster keeping all its units (Davison & Hinkley 1997, §3.8); ``clusters[i]`` is unit i's cluster
    id; n = the number of clusters; ``method`` as ``interval``'s (every jackknife leaves one cluster
    out). Seeded like ``statistics.bootstrap``. Clusters of unequal sizes cost one call of ``statistic``
    per resample (and, studentized, per resample and cluster): with hundreds of them, "bca"."""
    return resampled(statistic, *per_unit, resamples=resamples, clusters=clusters, method=method).estimate(
        method, unit, f"cluster bootstrap over {unit}")


def interval(statistic: Callable[..., Tensor], *per_unit: Tensor, unit: str = "prompts",
             resamples: int = RESAMPLES, method: str = "studentized", clusters: Tensor | None = None) -> Estimate:
    """``statistic(*per_unit)`` with its 95% CI by ``method`` ("percentile", "bca" or "studentized",
    module docstring; the default the one calibrated at the suite's n, docs/calibration.md) over units
    or, with ``clusters``, over clusters (``cluster_bootstrap``)."""
    if clusters is not None:
        return cluster_bootstrap(statistic, *per_unit, clusters=clusters, unit=unit, resamples=resamples,
                                 method=method)
    return resampled(statistic, *per_unit, resamples=resamples, method=method).estimate(
        method, unit, f"bootstrap over {unit}")


def paired_difference(statistic: Callable[..., Tensor], first: Sequence[Tensor], second: Sequence[Tensor], *,
                      unit: str = "pairs", resamples: int = RESAMPLES, method: str = "studentized",
                      clusters: Tensor | None = None) -> Estimate:
    """``statistic(*first) − statistic(*second)``: one statistic on two measurements of the same units
    (e.g. two methods' patched runs with the shared clean and corrupted runs), both recomputed on the
    same resampled units (or clusters) in every resample, so their shared variation cancels."""
    if len(first) != len(second) or any(a.shape[-1] != b.shape[-1] for a, b in zip(first, second)):
        raise ValueError("a paired difference needs the same units on both sides")
    k = len(first)
    estimate = interval(lambda *items: statistic(*items[:k]) - statistic(*items[k:]), *first, *second, unit=unit,
                        resamples=resamples, method=method, clusters=clusters)
    return dataclasses.replace(estimate, method=f"paired difference, {estimate.method}")
