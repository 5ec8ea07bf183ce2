"""A quantile of a random-direction null, with the null's own sampling variation in its CI (issue 25, item 4).

A control such as P2.random or P5.random (§6.2) measures one statistic for each of K seeded random
directions on the same units (pairs). Its value is a quantile of those K values. Two things vary: the
units (another set of pairs) and the directions (another K draws from the same Gaussian). ``null_quantile``
resamples both, independently, in every bootstrap resample (a two-way bootstrap of a crossed design,
Davison & Hinkley 1997, §3.8, resampling both factors): the units with ``statistics.resample_indices`` (the
session's seed, so the same resampled units as every other bootstrap over them) and the directions with
their own seeded indices. Every direction's statistic is recomputed on the resampled units (paired), then
the quantile is taken over the resampled directions. The CI is the percentile interval of those draws.

Which quantile: with K = 50 an upper quantile has no honest upper bound (the sample maximum lies below
the true 97.5% quantile with probability 0.975^50 ≈ 28%); the two-way interval of the median covers its
truth (``harness.measures.calibration.null_quantiles``, docs/calibration.md).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from harness.measures.statistics import RESAMPLES, Estimate, current_seed, draws_estimate, resample_indices

DIRECTION_SEED_OFFSET = 1_000_003  # the directions' resample indices: the session's seed + this


def direction_indices(n_directions: int, resamples: int) -> Tensor:
    """``[resamples, n_directions]``: the directions drawn with replacement in each resample (seeded)."""
    return resample_indices(n_directions, resamples, seed=current_seed() + DIRECTION_SEED_OFFSET)


def quantile_draws(per_direction: Callable[[Tensor], Tensor], n_units: int, quantile: float | Tensor,
                   resamples: int = RESAMPLES) -> tuple[Tensor, Tensor]:
    """Every direction's statistic on all units (``[K, ...]``) and ``[resamples, ...]`` draws of the
    ``quantile`` over directions (units and directions resampled). ``per_direction(index)`` maps
    ``[resamples, m]`` unit indices to ``[resamples, K, ...]``: every direction's statistic on each row's
    units; trailing axes (simulated data sets: ``harness.measures.calibration``) are carried through, and
    a tensor of quantiles adds a leading axis to the draws (one sort for all)."""
    point = per_direction(torch.arange(n_units)[None])[0].double()
    values = per_direction(resample_indices(n_units, resamples)).double()
    index = direction_indices(values.shape[1], resamples)
    index = index.view(*index.shape, *([1] * (values.dim() - 2))).expand_as(values)
    return point, torch.quantile(values.gather(1, index), quantile, dim=1)


def quantile_estimate(each: Tensor, draws: Tensor, quantile: float, n_units: int, unit: str) -> Estimate:
    """The ``Estimate`` of one data set from ``quantile_draws``: the quantile of ``each`` (``[K]``), the
    percentile interval of ``draws``."""
    return draws_estimate(float(torch.quantile(each, quantile)), draws, n_units, unit,
                          f"{quantile:.1%} quantile over {len(each)} random directions, two-way percentile bootstrap "
                          f"({unit} and directions resampled)")


def null_quantile(per_direction: Callable[[Tensor], Tensor], n_units: int, quantile: float, *, unit: str,
                  resamples: int = RESAMPLES) -> Estimate:
    """The ``quantile`` over K random directions of their statistic, with its two-way percentile CI
    (module docstring)."""
    each, draws = quantile_draws(per_direction, n_units, quantile, resamples)
    return quantile_estimate(each, draws, quantile, n_units, unit)
