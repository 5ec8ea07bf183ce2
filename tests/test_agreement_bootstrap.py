"""harness.experiments.direction_agreement: D1's refits on bootstrap resamples of the train prompts (synthetic data).

On the full index the statistic is the fitted directions' |cos|; on resamples the refitted methods vary
while held methods (DAS, the random control) stay fixed; a resample with one class is undefined (NaN);
refits are memoised by (layer, indices), so a second statistic on the same draws refits nothing, and
refits read back from the disk cache (keyed by ``refits_key``) give the same draws.
"""

from __future__ import annotations

import itertools

import torch

from harness.experiments.direction_agreement import AgreementBootstrap
from harness.directions.finders import MeanDifference, LogisticProbe, RandomDirection, cosine
from harness.measures.statistics import bootstrap, resample_indices


def synthetic(n: int = 24, d: int = 8):
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 0] * (n // 2))
    X = torch.randn(n, d, generator=generator) + 1.5 * (labels[:, None] * 2.0 - 1) * torch.eye(d)[0]
    estimators = {"mean_diff": {0: MeanDifference().fit(X, labels)}, "probe": {0: LogisticProbe().fit(X, labels)},
                  "random": {0: RandomDirection(3).fit(X, labels)}}
    vectors = {m: {0: e[0].direction_} for m, e in estimators.items()}
    return AgreementBootstrap(estimators, {0: X}, labels, vectors, ["mean_diff", "probe"]), vectors


def test_point_is_the_fitted_cosine_and_resamples_refit():
    agreement, vectors = synthetic()
    statistic = agreement.abs_cosine("mean_diff", "probe", 0)
    full = torch.arange(agreement.n)
    assert abs(float(statistic(full)) - abs(cosine(vectors["mean_diff"][0], vectors["probe"][0]))) < 1e-6
    index = resample_indices(agreement.n, 20, seed=1)
    draws = statistic(index)
    assert draws.shape == (20,) and draws.std() > 0
    held = agreement.vectors("random", 0, index)
    assert torch.equal(held, vectors["random"][0].double().expand(20, -1))


def test_one_class_resample_is_undefined_and_refits_are_memoised(monkeypatch):
    agreement, _ = synthetic()
    index = torch.stack([torch.zeros(agreement.n, dtype=torch.long), torch.arange(agreement.n)])
    draws = agreement.abs_cosine("mean_diff", "probe", 0)(index)
    assert torch.isnan(draws[0]) and torch.isfinite(draws[1])
    monkeypatch.setattr("harness.experiments.direction_agreement.clone", lambda *a: (_ for _ in ()).throw(AssertionError("refit")))
    largest = agreement.largest_abs_cosine("random", [("mean_diff", 0), ("probe", 0)])(index)
    assert torch.isnan(largest[0]) and torch.isfinite(largest[1])


def test_bootstrap_over_train_prompts():
    agreement, _ = synthetic()
    estimate = bootstrap(agreement.abs_cosine("mean_diff", "probe", 0), torch.arange(agreement.n),
                         unit="train prompts", resamples=50)
    assert estimate.n == agreement.n and estimate.resamples == 50 and estimate.ci_low <= estimate.ci_high <= 1


def test_refits_read_back_from_the_disk_cache_give_the_same_draws_and_refit_nothing(tmp_path, monkeypatch):
    from harness.runtime.disk_cache import DiskCache, content_key

    agreement, _ = synthetic()
    index = resample_indices(agreement.n, 20, seed=1)
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
