"""``harness.measures.statistics``: estimates and CIs that decide the claims (issue "Verdicts")."""

from __future__ import annotations

import math

import pytest
import torch

from harness.measures.statistics import Estimate, bootstrap, cross_fitted, folds, seeded, selected, wilson


def test_wilson_matches_the_closed_form():
    estimate = wilson(30, 50)
    assert estimate.value == 60.0 and estimate.n == 50
    assert (round(estimate.ci_low, 2), round(estimate.ci_high, 2)) == (46.18, 72.39)
    assert wilson(0, 20).ci_low == 0.0 and wilson(20, 20).ci_high == 100.0


def test_bootstrap_counts_undefined_resamples_and_refuses_all_undefined():
    values = torch.tensor([0.0] * 9 + [1.0])
    ratio = bootstrap(lambda x: x.mean(-1) / x.mean(-1), values)  # undefined when a resample has no 1
    assert 0 < ratio.undefined < ratio.resamples and "undefined" in ratio.describe_ci()
    with pytest.raises(ValueError, match="undefined"):
        bootstrap(lambda x: x.mean(-1) / 0 * 0, values + 1)


def test_bootstrap_is_seeded():
    values = torch.randn(30, generator=torch.Generator().manual_seed(1))
    mean = lambda x: x.mean(-1)
    assert bootstrap(mean, values) == bootstrap(mean, values)
    with seeded(3):
        other = bootstrap(mean, values)
    assert other.ci_low != bootstrap(mean, values).ci_low


def test_folds_are_disjoint_stratified_halves():
    labels = torch.tensor([0] * 7 + [1] * 9)
    first, second = folds(labels)
    assert set(first.tolist()).isdisjoint(second.tolist()) and len(first) + len(second) == 16
    assert abs(int(labels[first].sum()) - int(labels[second].sum())) <= 1


def test_cross_fitting_scores_each_fold_at_the_layer_the_other_fold_chose():
    # Layer 1 is best on every unit: both folds pick it and the value is layer 1's mean.
    values = torch.stack([torch.zeros(20), torch.ones(20), torch.full((20,), 0.5)])
    labels = torch.tensor([0, 1] * 10)
    fit = cross_fitted(lambda layer, index: values[layer][index].mean(-1), [0, 1, 2], labels)
    assert fit.layers == (1, 1) and fit.value == pytest.approx(1.0)
    estimate = fit.estimate()
    assert estimate.ci_low == estimate.ci_high == pytest.approx(1.0) and estimate.n == 20


def test_cross_fitting_removes_the_winners_curse_of_noise():
    # Pure noise at 30 layers: the in-sample maximum is biased up; the cross-fitted value is not.
    noise = torch.randn(30, 40, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1] * 20)
    fit = cross_fitted(lambda layer, index: noise[layer][index].mean(-1), range(30), labels)
    in_sample = float(noise.mean(-1).max())
    assert fit.value < in_sample and fit.estimate().ci_low < 0 < fit.estimate().ci_high


def test_paired_difference_of_two_cross_fits_shares_resamples():
    values = torch.randn(3, 24, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 1] * 12)
    statistic = lambda layer, index: values[layer][index].mean(-1)
    a, b = cross_fitted(statistic, [0, 1, 2], labels), cross_fitted(statistic, [0, 1, 2], labels)
    difference = a.minus(b)
    assert difference.value == 0 and difference.ci_low == difference.ci_high == 0


def test_selected_reports_the_chosen_layer_and_its_spread():
    values = torch.stack([torch.zeros(20), torch.ones(20)])
    estimate = selected(lambda layer, index: values[layer][index].mean(-1), [0, 1], 20, value_of=lambda l: l / 2)
    assert estimate.value == 0.5 and estimate.ci_low == estimate.ci_high == 0.5


def test_estimates_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        Estimate(math.inf, 0, 1, 3, "prompts", "test")
