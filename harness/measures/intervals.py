"""BCa, cluster and paired-difference bootstrap intervals (issue "Intervals that mean what they say").

The percentile bootstrap (``statistics.bootstrap``) undercovers at the suite's sample sizes for skewed
statistics and ratios of means, and resampling tokens of word-clustered data ignores the clusters
(``harness.measures.calibration``, docs/calibration.md). The procedures here:

- ``bca``: the bias-corrected and accelerated percentile interval (Efron & Tibshirani 1993, §14.3, eqs.
  14.9–14.15): the 2.5%/97.5% levels are moved by a bias correction ẑ0 = Φ⁻¹(share of the resample values
  below the point, ties counted half) and an acceleration â from the jackknife over units (the statistic
  on the ``[n, n − 1]`` leave-one-out index batch). Same interface and seed as ``statistics.bootstrap``,
  hence the very same resamples; undefined resamples dropped and counted.
- ``cluster_bootstrap``: units carry a cluster id (a word type, a sentence); clusters are resampled with
  replacement and keep all their units (Davison & Hinkley 1997, §3.8, strategy 1: resample clusters,
  not units within them); n = the number of clusters. Percentile or BCa (the jackknife leaves one
  cluster out).
- ``paired_difference``: one statistic on two measurements of the same units (or clusters), both sides
  recomputed on the same resampled units.
- ``bca_interval``: the BCa interval of draws and jackknife values made elsewhere.
- ``held_out_share``: a cross-fitted share of 0/1 outcomes (D2's accuracy) with the Wilson interval of
  its held-out count: each unit is scored at a layer chosen without it, so given the choice the count is
  binomial; the percentile bootstrap of a share near 1 at n ≈ 27 is degenerate (all correct: [1, 1]).

``scipy.stats.bootstrap(method="BCa")`` is not used: it draws its own resamples from numpy's generator,
so a seed would not give ``bootstrap``'s resamples (the percentile and BCa intervals of one statistic
could not share them, nor a paired comparison), and it neither drops nor counts undefined resamples.
tests/test_statistics.py checks this implementation against it.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Callable, Sequence

import torch
from torch import Tensor

from harness.measures.statistics import (
    LEVEL, RESAMPLES, CrossFit, Estimate, bootstrap, percentile_interval, resample_indices, wilson,
)

METHODS = ("bca", "percentile")
_NORMAL = NormalDist()


def leave_one_out(n: int) -> Tensor:
    """``[n, n − 1]``: row i holds every index but i (the jackknife's index batch)."""
    if n < 2:
        raise ValueError(f"a jackknife needs at least 2 units, got {n}")
    return torch.arange(n).expand(n, n)[~torch.eye(n, dtype=torch.bool)].view(n, n - 1)


def acceleration(jackknife: Tensor) -> float:
    """â = Σ dᵢ³ / (6 (Σ dᵢ²)^{3/2}), dᵢ = mean − θ̂₍ᵢ₎ over the finite leave-one-out values (Efron &
    Tibshirani 1993, eq. 14.15); 0 where they do not vary (beyond rounding) or fewer than 2 are finite."""
    values = jackknife.flatten().double()
    values = values[torch.isfinite(values)]
    if values.numel() < 2:
        return 0.0
    deviation = values.mean() - values
    spread = float(deviation.pow(2).sum())
    if math.sqrt(spread) <= 1e-12 * (1.0 + float(values.abs().max())) * values.numel():
        return 0.0
    return float(deviation.pow(3).sum()) / (6.0 * spread ** 1.5)


def bca_interval(value: float, draws: Tensor, jackknife: Tensor, level: float = LEVEL) -> tuple[float, float] | None:
    """The BCa interval (Efron & Tibshirani 1993, §14.3) from the point ``value``, bootstrap ``draws``
    and ``jackknife`` (leave-one-unit-out) values; non-finite draws dropped, None if none is finite. The
    share of draws below the point counts ties half and is kept within [1/2B, 1 − 1/2B] (B finite draws),
    so that ẑ0 stays finite."""
    finite = draws.flatten().double()
    finite = finite[torch.isfinite(finite)]
    if finite.numel() == 0:
        return None
    count = finite.numel()
    share = (float((finite < value).sum()) + 0.5 * float((finite == value).sum())) / count
    z0 = _NORMAL.inv_cdf(min(max(share, 0.5 / count), 1 - 0.5 / count))
    a = acceleration(jackknife)
    z = _NORMAL.inv_cdf(0.5 + level / 2)
    levels = []
    for tail in (-z, z):
        shifted = z0 + tail
        levels.append(_NORMAL.cdf(z0 + shifted / max(1.0 - a * shifted, 1e-12)))
    low, high = torch.quantile(finite, torch.tensor(levels, dtype=torch.float64))
    return float(low), float(high)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"interval method must be one of {METHODS}, got {method!r}")


def _estimate(value: float, draws: Tensor, jackknife: Tensor | None, n: int, unit: str, method: str) -> Estimate:
    """An ``Estimate`` from the point, the draws and (for BCa) the jackknife values; undefined draws counted."""
    if not math.isfinite(value):
        raise ValueError(f"the statistic is undefined on the data itself (n = {n} {unit})")
    interval = percentile_interval(draws) if jackknife is None else bca_interval(value, draws, jackknife)
    if interval is None:
        raise ValueError(f"{unit}: the statistic is undefined in every bootstrap resample")
    resamples = draws.numel()
    undefined = resamples - int(torch.isfinite(draws.flatten()).sum())
    return Estimate(value, *interval, n, unit, f"{method} ({resamples} resamples)", undefined, resamples)


def bca(statistic: Callable[..., Tensor], *per_unit: Tensor, unit: str = "prompts",
        resamples: int = RESAMPLES) -> Estimate:
    """``statistic(*per_unit)`` with its BCa CI over units (module docstring): ``statistics.bootstrap``'s
    interface and resamples, plus the jackknife through the same index interface."""
    n = per_unit[0].shape[-1]
    value = float(statistic(*per_unit))
    draws = statistic(*(item[..., resample_indices(n, resamples)] for item in per_unit))
    jackknife = statistic(*(item[..., leave_one_out(n)] for item in per_unit)) if math.isfinite(value) else None
    return _estimate(value, draws, jackknife, n, unit, f"BCa bootstrap over {unit}")


def cluster_members(clusters: Tensor) -> list[Tensor]:
    """The unit indices of each cluster (clusters in sorted id order, units in their order)."""
    _, inverse = clusters.unique(sorted=True, return_inverse=True)
    order = inverse.argsort(stable=True)
    return list(order.split(torch.bincount(inverse).tolist()))


def over_clusters(statistic: Callable[..., Tensor], per_unit: Sequence[Tensor], members: list[Tensor],
                  drawn: Tensor) -> Tensor:
    """``statistic`` of the units of the clusters in each row of ``drawn`` (``[rows, c]`` cluster
    indices): one call with ``[rows, c × size]`` unit indices where every cluster has the same size,
    otherwise one call per row (``[1, m]`` indices)."""
    if len({len(m) for m in members}) == 1:
        index = torch.stack(members)[drawn].flatten(-2)
        return statistic(*(item[..., index] for item in per_unit))
    rows = []
    for row in drawn.tolist():
        index = torch.cat([members[j] for j in row])[None]
        rows.append(statistic(*(item[..., index] for item in per_unit)).reshape(-1))
    return torch.cat(rows)


def cluster_bootstrap(statistic: Callable[..., Tensor], *per_unit: Tensor, clusters: Tensor,
                      unit: str = "clusters", resamples: int = RESAMPLES, method: str = "bca") -> Estimate:
    """``statistic(*per_unit)`` with its CI over clusters resampled with replacement, each drawn
    cluster keeping all its units (Davison & Hinkley 1997, §3.8); ``clusters[i]`` is unit i's cluster
    id; n = the number of clusters. ``method``: "bca" (the jackknife leaves one cluster out) or
    "percentile". Seeded like ``statistics.bootstrap``."""
    _check_method(method)
    n_units = per_unit[0].shape[-1]
    if clusters.shape != (n_units,):
        raise ValueError(f"cluster_bootstrap: {tuple(clusters.shape)} cluster ids for {n_units} units")
    members = cluster_members(clusters)
    k = len(members)
    if k < 2:
        raise ValueError(f"cluster_bootstrap: {k} cluster of {unit}; resampling needs at least 2")
    value = float(statistic(*per_unit))
    draws = over_clusters(statistic, per_unit, members, resample_indices(k, resamples))
    jackknife = None
    if method == "bca" and math.isfinite(value):
        jackknife = over_clusters(statistic, per_unit, members, leave_one_out(k))
    name = "BCa" if method == "bca" else "percentile"
    return _estimate(value, draws, jackknife, k, unit, f"{name} cluster bootstrap over {unit}")


def interval(statistic: Callable[..., Tensor], *per_unit: Tensor, unit: str = "prompts",
             resamples: int = RESAMPLES, method: str = "bca", clusters: Tensor | None = None) -> Estimate:
    """One entry to the bootstrap CIs: over units (``bca`` or ``statistics.bootstrap``) or, with
    ``clusters``, over clusters (``cluster_bootstrap``)."""
    _check_method(method)
    if clusters is not None:
        return cluster_bootstrap(statistic, *per_unit, clusters=clusters, unit=unit, resamples=resamples,
                                 method=method)
    return (bca if method == "bca" else bootstrap)(statistic, *per_unit, unit=unit, resamples=resamples)


def paired_difference(statistic: Callable[..., Tensor], first: Sequence[Tensor], second: Sequence[Tensor], *,
                      unit: str = "pairs", resamples: int = RESAMPLES, method: str = "bca",
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


def held_out_share(fit: CrossFit, scale: float = 1.0) -> Estimate:
    """A cross-fit of a share of 0/1 outcomes (each fold's mean of 0/1 values at its chosen layer) with
    the Wilson interval of the held-out count ``fit.value × fit.n`` (module docstring); × ``scale``."""
    count = fit.value * fit.n
    if abs(count - round(count)) > 1e-6 * fit.n or not 0 <= round(count) <= fit.n:
        raise ValueError(f"held_out_share: {fit.value} × {fit.n} is not a count of 0/1 outcomes")
    rule = "" if fit.tie is None else f", {fit.tie.describe()}"
    return dataclasses.replace(wilson(round(count), fit.n, unit=fit.unit, scale=scale),
                               method=f"Wilson score interval of the 2-fold cross-fitted held-out count{rule}")
