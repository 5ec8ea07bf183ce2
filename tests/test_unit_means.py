"""harness.measures.unit_means: the means of many per-unit series over ``intervals``' index batches, through
unit counts, equal the gathered means for every index shape the intervals pass ([n], [resamples, n],
[n, n − 1], [resamples, n, n − 1]); a series missing (NaN) on some units is averaged over the others; a
studentized CI through them equals ``intervals.interval`` on the gathered series."""

from __future__ import annotations

import pytest
import torch

from harness.measures.intervals import interval, leave_one_out
from harness.measures.statistics import resample_indices
from harness.measures.unit_means import column_means, unit_ids


def _columns(c: int = 5, n: int = 9) -> torch.Tensor:
    return torch.randn(c, n, generator=torch.Generator().manual_seed(1)).double()


@pytest.mark.parametrize("shape", ["data", "resamples", "jackknife", "resample jackknives"])
def test_column_means_equal_gathered_means_for_every_index_shape(shape):
    columns, n = _columns(), 9
    draws = resample_indices(n, 7)
    index = {"data": unit_ids(n), "resamples": draws, "jackknife": leave_one_out(n),
             "resample jackknives": draws[:, leave_one_out(n)]}[shape]
    means = column_means(columns, index)
    assert means.shape == (5, *index.shape[:-1]) and means.dtype == torch.float64
    torch.testing.assert_close(means, columns[:, index].mean(-1))


def test_a_series_missing_on_some_units_is_averaged_over_the_others():
    columns = _columns(2, 6)
    columns[1, :2] = torch.nan  # measured on units 2-5 only
    index = torch.tensor([[0, 0, 3, 4, 4, 5], [0, 1, 1, 0, 1, 0]])
    means = column_means(columns, index)
    torch.testing.assert_close(means[0], columns[0, index].mean(-1))
    assert means[1, 0] == pytest.approx(float(columns[1, [3, 4, 4, 5]].mean()))
    assert torch.isnan(means[1, 1])  # none of its units drawn: undefined


def test_a_statistic_through_column_means_has_the_gathered_statistics_ci():
    columns = _columns(4, 12).abs() + 0.5

    def ratio_of_means(a, b):
        return a.mean(-1) / b.mean(-1)

    through_counts = interval(lambda index: (lambda m: m[0] / m[1])(column_means(columns[:2], index)), unit_ids(12))
    gathered = interval(ratio_of_means, columns[0], columns[1])
    assert through_counts.value == pytest.approx(gathered.value)
    assert (through_counts.ci_low, through_counts.ci_high) == pytest.approx((gathered.ci_low, gathered.ci_high))
    assert through_counts.undefined == gathered.undefined == 0
