"""The Fieller-type interval of a paired ratio N/D (``harness.measures.ratio_interval``; A3–A5).

- with the denominator resolved, the set is one bounded interval holding its point, close to the delta
  method's at large n;
- with the denominator unresolved, it is unbounded (and says so), where the bootstrap of the ratio
  itself would report a finite interval;
- its one-sided p-values agree with its bounds (a CI wholly above t exactly when p_at_least(t) <= 2.5%);
- a ratio whose denominator is 0 on the data is refused; ``Estimate`` takes unbounded CIs, never NaN.
Coverage and false "replicates" at A3's n: docs/calibration.md (``calibration.ratios``).
"""

from __future__ import annotations

import math

import pytest
import torch

from harness.measures.ratio_interval import ratio_estimate
from harness.measures.statistics import Estimate


def _paired(n: int, mean_x: float, mean_y: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(n, generator=generator, dtype=torch.float64)
    return mean_x + 0.6 * shared + 0.8 * torch.randn(n, generator=generator, dtype=torch.float64), mean_y + shared


def _ratio(x: torch.Tensor, y: torch.Tensor) -> Estimate:
    return ratio_estimate(lambda a, b: torch.stack([a.mean(-1), b.mean(-1)], dim=-1), x, y, unit="prompts")


def test_a_resolved_denominator_gives_a_bounded_interval_near_the_delta_methods():
    x, y = _paired(400, 1.0, 4.0)
    estimate = _ratio(x, y)
    assert estimate.value == pytest.approx(float(x.mean() / y.mean()))
    assert math.isfinite(estimate.ci_low) and math.isfinite(estimate.ci_high)
    assert estimate.ci_low < estimate.value < estimate.ci_high and estimate.n == 400
    r = estimate.value
    se = float(((x - r * y).std() / math.sqrt(400)) / y.mean())  # the delta method
    assert (estimate.ci_high - estimate.ci_low) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_an_unresolved_denominator_gives_an_unbounded_interval():
    x, y = _paired(40, 1.0, 0.0)
    y = y - y.mean() + 0.05  # the denominator's mean is about a third of its standard error
    estimate = _ratio(x, y)
    assert math.isinf(estimate.ci_low) or math.isinf(estimate.ci_high)
    assert estimate.ci_low <= estimate.value <= estimate.ci_high


def test_the_p_values_agree_with_the_bounds():
    x, y = _paired(60, 1.0, 3.0, seed=2)
    estimate = _ratio(x, y)
    tail, low, high = estimate.tail, estimate.ci_low, estimate.ci_high
    width = high - low
    assert tail.p_at_least(low - 0.01 * width) <= 0.025 < tail.p_at_least(low + 0.01 * width)
    assert tail.p_at_most(high + 0.01 * width) <= 0.025 < tail.p_at_most(high - 0.01 * width)


def test_a_zero_denominator_is_refused_and_nan_bounds_are_not_estimates():
    x, y = _paired(20, 1.0, 1.0)
    with pytest.raises(ValueError, match="denominator is 0"):
        _ratio(x, torch.zeros_like(y))
    Estimate(1.0, -math.inf, math.inf, 20, "prompts", "test")  # unbounded: accepted
    with pytest.raises(ValueError, match="ci_low is nan"):
        Estimate(1.0, math.nan, 2.0, 20, "prompts", "test")
    with pytest.raises(ValueError, match="value is inf"):
        Estimate(math.inf, 0.0, 2.0, 20, "prompts", "test")
