"""harness.experiments.direction_agreement: D1's refits on bootstrap resamples of the train prompts (synthetic data).

- On the full index the statistic is the fitted directions' |cos|; on resamples every method varies: the
  cheap ones refitted (a clone each), a method refitted elsewhere (DAS) read from its provided refits,
  made once when first needed, on the first shared draws only (asking for more, or other draws, raises);
  only the declared controls are held; a resample with one class is undefined (NaN).
- Refits are memoised by (layer, indices) and a prefix of the shared draws reads the memo of all of them,
  so a second statistic on the same draws refits nothing; refits read back from the disk cache (keyed by
  ``refits_key``) give the same draws.
- ``estimate`` draws a statistic on the draws every method it uses was refitted on.
- ``recentred_estimate``: the percentile interval shifted by the draws' median bias, within [0, 1]; it
  holds its point, has the percentile interval's width, and counts undefined draws.
- Calibration by simulation (the reason for that interval): with a known truth, two-class Gaussian data
  at D1's n = 52, the |cos| of a mean-difference direction with a fixed vector (a held side) or with a
  second mean difference of an independent noisy view of the same units (both sides refitted, their
  noise independent, as DAS's and the mean difference's are): the percentile interval's draws sit below
  the point and it covers the expected fitted |cos| (the estimand) in under half the data sets; the
  re-centred interval covers it in at least 93%.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from harness.experiments.direction_agreement import AgreementBootstrap, recentred_estimate
from harness.directions.finders import MeanDifference, LogisticProbe, RandomDirection, cosine
from harness.measures.statistics import percentile_interval, resample_indices

pytestmark = pytest.mark.unit


def synthetic(n: int = 24, d: int = 8, resamples: int = 20):
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 0] * (n // 2))
    X = torch.randn(n, d, generator=generator) + 1.5 * (labels[:, None] * 2.0 - 1) * torch.eye(d)[0]
    estimators = {"mean_diff": {0: MeanDifference().fit(X, labels)}, "probe": {0: LogisticProbe().fit(X, labels)},
                  "random": {0: RandomDirection(3).fit(X, labels)}, "das": {0: MeanDifference().fit(X, labels)}}
    vectors = {m: {0: e[0].direction_} for m, e in estimators.items()}
    index = resample_indices(n, resamples, seed=1)
    return AgreementBootstrap(estimators, {0: X}, labels, vectors, ["mean_diff", "probe"], ["random"], index), vectors


def test_point_is_the_fitted_cosine_and_resamples_refit():
    agreement, vectors = synthetic()
    statistic = agreement.abs_cosine("mean_diff", "probe", 0)
    full = torch.arange(agreement.n)
    assert abs(float(statistic(full)) - abs(cosine(vectors["mean_diff"][0], vectors["probe"][0]))) < 1e-6
    draws = statistic(agreement.index)
    assert draws.shape == (20,) and draws.std() > 0
    held = agreement.vectors("random", 0, agreement.index)
    assert torch.equal(held, vectors["random"][0].double().expand(20, -1))


def test_a_method_refitted_elsewhere_is_read_on_a_prefix_of_the_draws_and_never_held():
    agreement, _ = synthetic()
    with pytest.raises(ValueError, match="das at layer 0 was not refitted"):
        agreement.vectors("das", 0, agreement.index)  # not remembered: never silently held at its fit
    refits = torch.nn.functional.normalize(torch.randn(8, 8, generator=torch.Generator().manual_seed(2)), dim=-1)
    made = []
    agreement.provide_refits("das", 0, 8, lambda: made.append(1) or refits, "warm-started")
    assert agreement.resamples_for([("mean_diff", 0), ("das", 0)]) == 8 and not made  # made when first needed
    assert torch.equal(agreement.vectors("das", 0, agreement.index[:8]), refits.double())
    with pytest.raises(ValueError, match="not refitted on these 20"):
        agreement.vectors("das", 0, agreement.index)
    with pytest.raises(ValueError, match="not refitted on these 8"):
        agreement.vectors("das", 0, agreement.index[1:9])
    assert agreement.resamples_for([("mean_diff", 0), ("das", 0)]) == 8
    assert agreement.resamples_for([("mean_diff", 0), ("probe", 0)]) == 20
    statistic = agreement.abs_cosine("mean_diff", "das", 0)
    estimate = agreement.estimate(statistic, [("mean_diff", 0), ("das", 0)], "train prompts")
    assert estimate.resamples == 8 and estimate.contains_point()
    expected = (agreement.resampled(0, agreement.index)["mean_diff"][:8] * refits.double()).sum(-1).abs()
    assert torch.allclose(statistic(agreement.index[:8]), expected)
    assert agreement.how("das") == "das warm-started" and "held" in agreement.how("random")
    assert made == [1]  # made once
    with pytest.raises(ValueError):
        agreement.provide_refits("probe", 0, 8, lambda: refits, "refitted twice")


def test_one_class_resample_is_undefined_and_refits_are_memoised(monkeypatch):
    agreement, _ = synthetic()
    index = torch.stack([torch.zeros(agreement.n, dtype=torch.long), torch.arange(agreement.n)])
    draws = agreement.abs_cosine("mean_diff", "probe", 0)(index)
    assert torch.isnan(draws[0]) and torch.isfinite(draws[1])
    agreement.resampled(0, agreement.index)
    monkeypatch.setattr("harness.experiments.direction_agreement.clone", lambda *a: (_ for _ in ()).throw(AssertionError("refit")))
    largest = agreement.largest_abs_cosine("random", [("mean_diff", 0), ("probe", 0)])(index)
    assert torch.isnan(largest[0]) and torch.isfinite(largest[1])
    agreement.abs_cosine("mean_diff", "probe", 0)(agreement.index[:5])  # a prefix reads the memo of all draws


def test_refits_read_back_from_the_disk_cache_give_the_same_draws_and_refit_nothing(tmp_path, monkeypatch):
    from harness.runtime.disk_cache import DiskCache, content_key

    agreement, _ = synthetic()
    index = agreement.index
    cache = DiskCache(tmp_path, refresh=False, code_version="test")
    key = content_key("d1-refits", *agreement.refits_key([0], index))
    calls = itertools.count()  # not a list: a computation's plain values are part of its key

    def refit():
        next(calls)
        return {0: agreement.resampled(0, index)}

    stored = cache.get_or_compute("directions", key, refit)
    expected = agreement.abs_cosine("mean_diff", "probe", 0)(index)

    fresh, _ = synthetic()
    assert content_key("d1-refits", *fresh.refits_key([0], index)) == key
    assert content_key("d1-refits", *fresh.refits_key([0], resample_indices(fresh.n, 20, seed=2))) != key
    read = cache.get_or_compute("directions", key, refit)
    assert next(calls) == 1, "recomputed"
    fresh.remember(0, index, read[0])
    monkeypatch.setattr("harness.experiments.direction_agreement.clone", lambda *a: (_ for _ in ()).throw(AssertionError("refit")))
    assert torch.equal(fresh.abs_cosine("mean_diff", "probe", 0)(index), expected)
    assert stored[0].keys() == read[0].keys()


def test_recentred_interval_holds_its_point_with_the_percentile_width():
    draws = torch.tensor([0.60, 0.62, 0.65, 0.66, 0.70, float("nan"), 0.71, 0.72, 0.75, 0.64, 0.69], dtype=torch.float64)
    estimate = recentred_estimate(0.8, draws, 52, "train prompts", "bootstrap")
    low, high = percentile_interval(draws)
    median = float(torch.quantile(draws[torch.isfinite(draws)], 0.5))
    assert estimate.ci_low == pytest.approx(low - median + 0.8) and estimate.ci_high == pytest.approx(high - median + 0.8)
    assert estimate.contains_point() and not low <= 0.8 <= high  # the percentile interval excludes it
    assert estimate.undefined == 1 and estimate.resamples == 11 and "median bias -0." in estimate.method
    near_one = recentred_estimate(0.99, draws, 52, "train prompts", "bootstrap")
    assert near_one.ci_high == 1.0 and near_one.contains_point()  # |cos| stays within [0, 1]
    assert recentred_estimate(0.3, torch.full((5,), 0.3, dtype=torch.float64), 5, "u", "b").ci_low == 0.3


def _mean_difference_weights(labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``[resamples, n]``: the weights whose product with the units' vectors is each resample's mean
    difference (positive minus negative class mean, a unit counted as often as it is drawn)."""
    counts = torch.nn.functional.one_hot(index, len(labels)).sum(-2).double()
    positive, negative = counts * labels.double(), counts * (1 - labels.double())
    return positive / positive.sum(-1, keepdim=True) - negative / negative.sum(-1, keepdim=True)


@pytest.mark.parametrize("scenario", ["held side", "independent noise"])
def test_calibration_percentile_misses_the_estimand_recentred_covers_it(scenario):
    n, d, signal, resamples, data_sets = 52, 576, 20.0, 100, 100  # D1's n and SmolLM2's d_model
    generator = torch.Generator().manual_seed(0)
    fixed = torch.zeros(d, dtype=torch.float64)
    fixed[0], fixed[1] = 0.85, (1 - 0.85 ** 2) ** 0.5  # cos 0.85 with the class-mean direction e0
    labels = torch.tensor([1, 0] * (n // 2))
    shift = torch.zeros(n, d, dtype=torch.float64)
    shift[:, 0] = (labels * 2.0 - 1) * signal / 2

    def views(count: int) -> torch.Tensor:
        """``[2, count, n, d]``: two noisy views of the same ``count`` data sets of n units."""
        return torch.randn(2, count, n, d, generator=generator, dtype=torch.float64) + shift

    def statistic(X: torch.Tensor, Z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        first = torch.nn.functional.normalize(weights @ X, dim=-1)
        other = fixed if scenario == "held side" else torch.nn.functional.normalize(weights @ Z, dim=-1)
        return (first * other).sum(-1).abs()

    everyone = _mean_difference_weights(labels, torch.arange(n)[None])
    estimand = float(torch.cat([statistic(*views(250), everyone).flatten() for _ in range(4)]).mean())  # mean fitted |cos|
    covered = {"percentile": 0, "recentred": 0}
    for X, Z in zip(*views(data_sets)):
        index = resample_indices(n, resamples, seed=int(torch.randint(0, 2 ** 31, (1,), generator=generator)))
        value, draws = float(statistic(X, Z, everyone)), statistic(X, Z, _mean_difference_weights(labels, index))
        low, high = percentile_interval(draws)
        covered["percentile"] += low <= estimand <= high
        estimate = recentred_estimate(value, draws, n, "units", "bootstrap")
        covered["recentred"] += estimate.ci_low <= estimand <= estimate.ci_high
    assert covered["percentile"] / data_sets < 0.5, covered
    assert covered["recentred"] / data_sets >= 0.93, covered
