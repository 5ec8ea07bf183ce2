"""Means of many per-unit series over the index batches of ``harness.measures.intervals`` (issue 25: nulls of
≥ 50 random directions, recomputed in every bootstrap resample).

A statistic of a random-direction null (A1–A4, G2) depends on tens of per-unit series (an ablation's logit
differences under each random direction) only through their means over the drawn units. Given the unit
ids ``torch.arange(n)`` (``unit_ids``) as its one per-unit tensor, ``intervals.interval`` hands the
statistic index tensors with any leading axes, the unit axis last: ``[n]`` (the data), ``[resamples, n]``
(the resamples), ``[n, n − 1]`` (the jackknife) and ``[resamples, n, n − 1]`` (each resample's jackknife,
studentized). ``column_means`` turns such an index into the means of every series at once, through the
count of each unit in each row (one matrix product), instead of gathering every series at every index
entry (the studentized batch over 50 series of 300 items would gather 4.5 × 10⁹ values).

A series measured on some units only (a null run on a declared subset of the items) is NaN elsewhere: its
mean is over the drawn units where it was measured, NaN (an undefined resample, counted by ``intervals``)
where none was drawn.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def column_means(columns: Float[Tensor, "c n"], index: Int[Tensor, "*lead m"]) -> Float[Tensor, "c *lead"]:
    """Each of the ``c`` series' mean over the units of each row of ``index`` (repeats counted; NaN units
    of a series left out of its mean), in float64."""
    n, lead, m = columns.shape[-1], index.shape[:-1], index.shape[-1]
    rows = index.reshape(-1, m)
    counts = torch.zeros(len(rows), n, dtype=torch.float64).scatter_add_(
        1, rows, torch.ones(rows.shape, dtype=torch.float64))
    present = torch.isfinite(columns)
    sums = torch.where(present, columns.double(), 0.0) @ counts.T
    return (sums / (present.double() @ counts.T)).reshape(len(columns), *lead)


def unit_ids(n: int) -> Int[Tensor, "n"]:
    """The per-unit tensor to resample when the statistic reads ``column_means`` of its own series."""
    return torch.arange(n)
