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


# Intervals that mean what they say: contains_point, the tie rule, BCa, the cluster bootstrap, paired
# differences (harness.measures.intervals).

from harness.measures.intervals import (  # noqa: E402
    acceleration, bca, bca_interval, cluster_bootstrap, cluster_members, interval, jackknife_se, leave_one_out,
    paired_difference, studentized, studentized_interval,
)
from harness.measures.statistics import TieRule, choose_layer  # noqa: E402


def test_contains_point():
    assert Estimate(1.0, 0.0, 2.0, 5, "prompts", "test").contains_point()
    assert Estimate(2.0, 2.0, 2.0, 5, "prompts", "test").contains_point()
    assert not Estimate(3.0, 0.0, 2.0, 5, "prompts", "test").contains_point()


def test_tie_rules_choose_among_the_near_best_layers_by_depth():
    scores = torch.tensor([1.0, 3.0, 3.0, 3.0, 2.9, 0.0])[:, None]
    layers = [0, 1, 2, 3, 4, 5]
    pick = lambda tie: int(choose_layer(scores, layers, tie)[0])
    assert pick(None) == 1  # the argmax: the first best layer
    assert pick(TieRule(0.0, "shallowest")) == 1 and pick(TieRule(0.0, "deepest")) == 3
    assert pick(TieRule(0.0, "median")) == 2
    assert pick(TieRule(0.5, "median")) == 2 and pick(TieRule(0.5, "deepest")) == 4  # 1-4: the lower middle
    # depth is the layer number, whatever the order the layers are listed in
    assert [5, 4, 3, 2, 1, 0][int(choose_layer(scores, [5, 4, 3, 2, 1, 0], TieRule(0.0, "deepest"))[0])] == 4
    # per column, and an undefined (-inf) layer is never near the best
    batch = torch.tensor([[2.0, -math.inf], [2.0, 1.0], [0.0, 1.0]])
    assert choose_layer(batch, [0, 1, 2], TieRule(0.0, "deepest")).tolist() == [1, 2]
    with pytest.raises(ValueError):
        TieRule(-1.0)
    with pytest.raises(ValueError):
        TieRule(0.0, "middle")


def test_cross_fitting_and_selection_keep_the_argmax_by_default_and_take_a_declared_tie_rule():
    values = torch.stack([torch.zeros(20)] + [torch.ones(20)] * 5 + [torch.zeros(20)])  # layers 1-5 tied
    labels = torch.tensor([0, 1] * 10)
    statistic = lambda layer, index: values[layer][index].mean(-1)
    assert cross_fitted(statistic, range(7), labels).layers == (1, 1)
    fit = cross_fitted(statistic, range(7), labels, tie=TieRule(0.0, "median"))
    assert fit.layers == (3, 3) and fit.value == 1.0 and "median" in fit.estimate().method
    assert "ties" not in cross_fitted(statistic, range(7), labels).estimate().method
    assert selected(statistic, range(7), 20).value == 1
    chosen = selected(statistic, range(7), 20, tie=TieRule(0.0, "deepest"))
    assert chosen.value == chosen.ci_low == chosen.ci_high == 5 and "deepest" in chosen.method


def test_leave_one_out_rows():
    assert leave_one_out(3).tolist() == [[1, 2], [0, 2], [0, 1]]
    with pytest.raises(ValueError):
        leave_one_out(1)


def test_acceleration_is_zero_for_symmetric_or_constant_jackknives():
    assert acceleration(torch.tensor([1.0, 2.0, 3.0])) == 0.0
    assert acceleration(torch.full((10,), 0.1) * 3) == 0.0
    assert acceleration(torch.tensor([0.0, 0.0, 0.0, 3.0])) < 0 < acceleration(torch.tensor([0.0, 3.0, 3.0, 3.0]))
    assert acceleration(torch.tensor([1.0, math.nan])) == 0.0


def test_bca_of_constant_data_is_the_point():
    estimate = bca(lambda x: x.mean(-1), torch.full((27,), 0.3, dtype=torch.float64))
    assert estimate.ci_low == pytest.approx(0.3) and estimate.ci_high == pytest.approx(0.3)
    assert estimate.n == 27 and "BCa" in estimate.method


def test_bca_matches_scipy():
    from scipy.stats import bootstrap as scipy_bootstrap
    values = torch.empty(30, dtype=torch.float64).exponential_(generator=torch.Generator().manual_seed(4))
    ours = bca(lambda x: x.mean(-1), values, resamples=40000)
    theirs = scipy_bootstrap((values.numpy(),), lambda x, axis: x.mean(axis), n_resamples=40000, method="BCa",
                             random_state=0).confidence_interval
    width = theirs.high - theirs.low
    assert ours.ci_low == pytest.approx(theirs.low, abs=0.03 * width)
    assert ours.ci_high == pytest.approx(theirs.high, abs=0.03 * width)


def test_bca_shares_the_percentile_bootstraps_resamples_and_counts_undefined_ones():
    values = torch.tensor([0.0] * 9 + [1.0])
    ratio = lambda x: x.mean(-1) / x.mean(-1)
    ours, percentile = bca(ratio, values), bootstrap(ratio, values)
    assert 0 < ours.undefined == percentile.undefined < ours.resamples and "undefined" in ours.describe_ci()
    with pytest.raises(ValueError, match="undefined"):
        bca(lambda x: x.mean(-1) / 0 * 0, values + 1)
    with pytest.raises(ValueError, match="undefined on the data"):
        bca(lambda x: x.mean(-1) / 0 * 0, values)


def test_bca_interval_stays_finite_when_every_draw_is_on_one_side():
    low, high = bca_interval(0.0, torch.linspace(1, 2, 100), torch.tensor([0.1, 0.2, 0.3]))
    assert 1 <= low <= high <= 2
    assert bca_interval(0.0, torch.tensor([math.nan]), torch.zeros(3)) is None


def test_cluster_bootstrap_of_equal_clusters_is_the_bootstrap_of_their_means():
    generator = torch.Generator().manual_seed(5)
    means = torch.randn(12, dtype=torch.float64, generator=generator)
    tokens = means.repeat_interleave(4) + 0.1 * torch.randn(48, dtype=torch.float64, generator=generator)
    clusters = torch.arange(12).repeat_interleave(4)
    cluster_means = tokens.view(12, 4).mean(-1)
    mean = lambda x: x.mean(-1)
    for method, plain in (("percentile", bootstrap), ("bca", bca)):
        ours = cluster_bootstrap(mean, tokens, clusters=clusters, unit="words", method=method)
        reference = plain(mean, cluster_means, unit="words")
        assert (ours.ci_low, ours.ci_high) == pytest.approx((reference.ci_low, reference.ci_high))
        assert ours.n == 12 and ours.unit == "words" and "cluster" in ours.method


def test_cluster_bootstrap_of_unequal_clusters_keeps_whole_clusters():
    # ids in any order and of any value; a cluster's units need not be contiguous
    tokens = torch.tensor([1.0, 5.0, 1.0, 5.0, 5.0, 9.0], dtype=torch.float64)
    clusters = torch.tensor([7, 3, 7, 3, 3, 11])
    assert [m.tolist() for m in cluster_members(clusters)] == [[1, 3, 4], [0, 2], [5]]
    seen = []
    def statistic(x):
        seen.extend(row.tolist() for row in x.reshape(-1, x.shape[-1]))
        return x.mean(-1)
    estimate = cluster_bootstrap(statistic, tokens, clusters=clusters, unit="words", resamples=50, method="percentile")
    assert estimate.n == 3 and 1 <= estimate.ci_low <= estimate.ci_high <= 9
    # every resample is a union of whole clusters: each value appears as often as its cluster's size
    assert all(row.count(5.0) % 3 == 0 and row.count(1.0) % 2 == 0 for row in seen)
    assert cluster_bootstrap(lambda x: x.mean(-1), tokens, clusters=clusters, resamples=50).resamples == 50


def test_cluster_bootstrap_needs_two_clusters():
    with pytest.raises(ValueError, match="at least 2"):
        cluster_bootstrap(lambda x: x.mean(-1), torch.randn(10), clusters=torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match="cluster ids"):
        cluster_bootstrap(lambda x: x.mean(-1), torch.randn(10), clusters=torch.zeros(9, dtype=torch.long))


def test_paired_difference_cancels_what_both_sides_share():
    generator = torch.Generator().manual_seed(6)
    shared = 3 * torch.randn(24, dtype=torch.float64, generator=generator)
    a = shared + 0.1 * torch.randn(24, dtype=torch.float64, generator=generator)
    b = shared + 0.1 * torch.randn(24, dtype=torch.float64, generator=generator)
    mean = lambda x: x.mean(-1)
    difference = paired_difference(mean, (a,), (b,))
    assert difference.value == pytest.approx(float((a - b).mean()))
    assert difference.ci_high - difference.ci_low < 0.2
    assert difference.method.startswith("paired difference, studentized")
    same = paired_difference(mean, (a,), (a,), method="percentile")
    assert same.value == same.ci_low == same.ci_high == 0
    clustered = paired_difference(mean, (a,), (b,), clusters=torch.arange(24) // 2)
    assert clustered.n == 12
    with pytest.raises(ValueError):
        paired_difference(mean, (a,), (b[:10],))
    with pytest.raises(ValueError):
        interval(mean, a, method="expanded")


def test_interval_percentile_is_the_percentile_bootstrap():
    values = torch.randn(30, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    mean = lambda x: x.mean(-1)
    assert interval(mean, values, method="percentile") == bootstrap(mean, values)


def test_jackknife_se_of_a_mean_is_the_standard_error():
    values = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    leave_out = values[leave_one_out(40)].mean(-1)
    assert float(jackknife_se(leave_out)) == pytest.approx(float(values.std() / math.sqrt(40)))


def test_studentized_interval_of_a_mean_is_near_the_t_interval():
    values = torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    estimate = studentized(lambda x: x.mean(-1), values, resamples=4000)
    half = 2.01 * float(values.std()) / math.sqrt(50)  # t_{49, 0.975} = 2.01
    assert estimate.ci_low == pytest.approx(float(values.mean()) - half, abs=0.15 * half)
    assert estimate.ci_high == pytest.approx(float(values.mean()) + half, abs=0.15 * half)
    assert estimate.undefined == 0 and "studentized" in estimate.method and estimate.n == 50


def test_studentized_edge_cases():
    constant = studentized(lambda x: x.mean(-1), torch.full((20,), 2.0, dtype=torch.float64))
    assert constant.ci_low == constant.ci_high == constant.value == 2.0
    # resamples whose own standard error is 0 (every drawn unit alike) have no t: dropped, counted
    values = torch.tensor([0.0] * 3 + [1.0] * 3, dtype=torch.float64)
    estimate = studentized(lambda x: x.mean(-1), values)
    assert 0 < estimate.undefined < estimate.resamples and estimate.ci_low < 0.5 < estimate.ci_high
    assert studentized_interval(1.0, 0.5, torch.tensor([1.0]), torch.tensor([0.0])) is None
    with pytest.raises(ValueError, match="undefined"):
        studentized(lambda x: x.mean(-1) / 0 * 0, values + 1)


def test_studentized_cluster_bootstrap_of_equal_clusters_is_that_of_their_means():
    generator = torch.Generator().manual_seed(10)
    tokens = torch.randn(10, 1, dtype=torch.float64, generator=generator) + torch.randn(10, 3, generator=generator,
                                                                                       dtype=torch.float64)
    mean = lambda x: x.mean(-1)
    ours = cluster_bootstrap(mean, tokens.flatten(), clusters=torch.arange(10).repeat_interleave(3),
                             method="studentized")
    reference = studentized(mean, tokens.mean(-1))
    assert (ours.ci_low, ours.ci_high) == pytest.approx((reference.ci_low, reference.ci_high))
    # unequal clusters: one call per resample row, the same machinery
    unequal = cluster_bootstrap(mean, tokens.flatten()[:-1], clusters=torch.arange(10).repeat_interleave(3)[:-1],
                                method="studentized", resamples=100)
    assert unequal.n == 10 and unequal.ci_low < unequal.value < unequal.ci_high
