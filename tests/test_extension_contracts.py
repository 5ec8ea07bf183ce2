"""Extension contracts: the steps ``docs/contributing.md`` gives, each taken here as a contributor would.

A direction method (§4) is one file; a claim on results the suite computes is two edited files (its
declaration and its test) and no new one; a prompt dataset is three new files (dataset, fixture, renderer),
none listed anywhere by hand.

Direction method: 
``tests/toy_direction_method.py`` defines a ``DirectionFinder`` subclass under ``@register_method`` and
nothing else. Once it is imported, the method
- is listed by ``methods()`` (before the baselines) and paired with every other method for D1;
- is fitted by ``fit_method`` at every residual boundary of the tiny GPT-2 (ToyMovieReview train, ADJ),
  as the estimator fitted by hand;
- round-trips through the ``DiskCache`` (store, then load), stored under its qualified class name;
- is cloned by ``sklearn.base.clone`` (same hyperparameters, unfitted) and refits to the same direction.
The registration is undone after this module (the rest of the session sees the built-in methods only).
"""

from __future__ import annotations

import importlib
import json
import sys

import pytest
import torch
from sklearn.base import clone

from harness.directions.das import DASSettings
from harness.directions.fitting import FitContext, fit_cache_key, fit_method, method_layers
from harness.directions.registry import REGISTRY, method_pairs, methods
from harness.interventions.forward import SplitActivations
from harness.runtime import disk_cache
from harness.runtime.disk_cache import DiskCache
from harness.measures.statistics import Estimate
from harness.verdicts.declaration import Claim, PaperValue, Rule, ThresholdKind, Verdict
from harness.verdicts.declared import CLAIMS, declared
from harness.verdicts.expectations import ClaimNotReplicated

pytestmark = pytest.mark.unit

TOY_MODULE = "tests.toy_direction_method"
BUILT_IN = ["mean_diff", "kmeans", "probe", "pca", "das", "random"]


@pytest.fixture(scope="module")
def toy_class():
    """The toy method's class, registered by importing its one file; the registry and the cache's
    allowlist are restored (in place: other modules hold the same dicts) when the module ends."""
    registry, allowlist = dict(REGISTRY), dict(disk_cache._REGISTERED)
    sys.modules.pop(TOY_MODULE, None)
    try:
        yield importlib.import_module(TOY_MODULE).ToyMedianDifference
    finally:
        sys.modules.pop(TOY_MODULE, None)
        REGISTRY.clear()
        REGISTRY.update(registry)
        disk_cache._REGISTERED.clear()
        disk_cache._REGISTERED.update(allowlist)


@pytest.fixture(scope="module")
def context(gpt2, toy, toy_resid) -> FitContext:
    return FitContext(gpt2.bridge, SplitActivations(toy.train, toy_resid["train"]), toy.train_pairs,
                      DASSettings(epochs=1, batch_size=8, layers=(1,)))


def test_the_toy_method_is_registered(toy_class):
    assert methods() == [*BUILT_IN[:-1], "toy_median", "random"]
    assert methods(controls=False)[-1] == "toy_median" and ("das", "toy_median") in method_pairs()
    method = REGISTRY["toy_median"]
    assert (method.estimator, method.layers, method.needs_model, method.control) == (toy_class, "every", False, False)
    assert toy_class.method_name == "toy_median"
    assert disk_cache._REGISTERED["ToyMedianDifference"] is toy_class


def test_fit_method_fits_it_at_every_layer(toy_class, context, gpt2):
    layers = method_layers("toy_median", gpt2.n_layers, context.das)
    assert layers == tuple(range(gpt2.n_layers + 1))
    fitted = fit_method("toy_median", context, layers)
    assert set(fitted) == set(layers)
    X, y = context.train.at("ADJ"), context.train.prompts.labels
    for layer, estimator in fitted.items():
        assert type(estimator) is toy_class
        assert torch.equal(estimator.direction_, toy_class().fit(X[layer], y).direction_)
        assert float(estimator.direction_.double().norm()) == pytest.approx(1.0, abs=1e-6)
        assert estimator.score(X[layer], y) >= 0.5  # oriented: positives project above the threshold
    assert fit_cache_key("toy_median", "sha", "float32", context, layers) != fit_cache_key(
        "mean_diff", "sha", "float32", context, layers)


def test_it_round_trips_through_the_disk_cache(toy_class, context, tmp_path):
    fitted = fit_method("toy_median", context, (0, 1))
    cache = DiskCache(tmp_path)
    path = cache.path("directions", "toy")
    cache.store(path, fitted)
    tree = json.loads(path.read_bytes().split(b"\n")[2])
    assert {"ToyMedianDifference"} == {value["object"] for _, value in tree["dict"]}  # its qualified name
    loaded = DiskCache.load(path)
    assert set(loaded) == {0, 1}
    for layer, estimator in loaded.items():
        assert type(estimator) is toy_class and estimator.get_params() == fitted[layer].get_params()
        assert torch.equal(estimator.direction_, fitted[layer].direction_)
        assert (estimator.threshold_, estimator.orientation_) == (fitted[layer].threshold_, fitted[layer].orientation_)


def test_it_is_cloned_by_sklearn(toy_class, context):
    X, y = context.train.at("ADJ")[1], context.train.prompts.labels
    fitted = toy_class(floor=0.1).fit(X, y)
    copy = clone(fitted)
    assert type(copy) is toy_class and copy.get_params() == {"floor": 0.1} and not hasattr(copy, "direction_")
    assert torch.equal(copy.fit(X, y).direction_, fitted.direction_)
    assert not torch.equal(toy_class().fit(X, y).direction_, fitted.direction_)  # the hyperparameter matters


# a claim on results the suite already computes: a declaration and a test -------------------------------------

TOY_CLAIM = Claim("T1", "§5.1", "The toy effect is positive", "a toy mean", PaperValue("> 0", "gpt2-small", "3P"),
                  Rule(0.0, "above", ThresholdKind.PAPER_QUALITATIVE, "the paper states the sign only", strict=True),
                  unit="pairs")


class FakeItem:
    """What ``ClaimCheck`` reads of a pytest item: its id, user properties and stash."""

    def __init__(self):
        self.nodeid, self.user_properties, self.stash = "claims/test_toy.py::test_t1", [], {}


@pytest.mark.parametrize("ci, verdict", [((0.1, 0.3), Verdict.REPLICATES), ((-0.1, 0.3), Verdict.INCONCLUSIVE)])
def test_a_declared_claim_is_decided_and_recorded_by_claim_check(monkeypatch, ci, verdict):
    from fixtures.claims import ClaimCheck

    monkeypatch.setitem(CLAIMS, TOY_CLAIM.id, TOY_CLAIM)  # step 1: the declaration in harness/verdicts/declared.py
    check = ClaimCheck(FakeItem(), declared("T1"), "smollm2-135m")  # what the ``claim`` fixture builds
    record = check.check(Estimate(0.2, *ci, n=24, unit="pairs", method="percentile bootstrap"),
                         details="what a reader needs to judge it")  # step 2: the test's one call
    assert record.verdict == verdict.value and record.claim == "T1"
    assert dict(check.node.user_properties)["claim_record"]["verdict"] == verdict.value


def test_a_claim_that_does_not_replicate_raises_the_exception_expectations_catch(monkeypatch):
    from fixtures.claims import ClaimCheck

    monkeypatch.setitem(CLAIMS, TOY_CLAIM.id, TOY_CLAIM)
    with pytest.raises(ClaimNotReplicated, match="does not replicate"):
        ClaimCheck(FakeItem(), declared("T1"), "smollm2-135m").check(
            Estimate(-0.2, -0.3, -0.1, n=24, unit="pairs", method="percentile bootstrap"))


# a prompt dataset: a dataset module, a fixture module and a renderer module ------------------------------------

def test_a_new_prompt_dataset_builds_runs_and_renders(gpt2, tmp_path):
    from harness.interventions.forward import residual_stream
    from harness.reporting.report import ReportBuilder
    from tests import toy_prompt_rendering  # noqa: F401  (registers its renderer, as the rendering package does)
    from tests.toy_prompt_dataset import ToyFeelingsSummary, build_toy_feelings

    prompts = build_toy_feelings(gpt2.bridge, prepend_bos=gpt2.prepend_bos)
    assert len(prompts) >= 2 and set(prompts.labels.tolist()) == {0, 1}
    adjective = prompts.tokens[torch.arange(len(prompts)), prompts.positions["ADJ"]]
    assert all(gpt2.bridge.tokenizer.decode(int(token)).strip() in text for token, text in zip(adjective, prompts.texts))
    resid = residual_stream(gpt2.bridge, prompts.tokens)  # what a claim reads: every boundary, every prompt
    assert resid.shape[:2] == (gpt2.bridge.cfg.n_layers + 1, len(prompts))

    report = ReportBuilder(model_name="tiny", settings={})
    report.record(ToyFeelingsSummary(prompts))  # what the dataset's fixture does
    report.write(tmp_path)
    assert "Toy feelings dataset" in (tmp_path / "REPORT.md").read_text()


def test_renderers_and_fixture_modules_are_discovered_without_a_list(pytestconfig):
    """A module added to harness/reporting/rendering/ or fixtures/ is loaded by discovery, not a hand-kept list."""
    import pkgutil

    import harness.reporting.rendering as rendering

    fixture_modules = [f"fixtures.{p.stem}" for p in (pytestconfig.rootpath / "fixtures").glob("*.py")
                       if p.stem != "__init__"]
    assert fixture_modules and all(pytestconfig.pluginmanager.get_plugin(name) for name in fixture_modules)
    loaded = [m.name for m in pkgutil.iter_modules(rendering.__path__)]
    assert loaded and all(f"harness.reporting.rendering.{name}" in sys.modules for name in loaded)
