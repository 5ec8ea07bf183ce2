"""The direction-method registry (``harness/directions/registry.py``) and fitting every method through it
(``harness/directions/fitting.py``), on the tiny GPT-2 with the ToyMovieReview prompts: the seeded
methods take the context's seed (seed 0 = the paper's seeds), the seed is in the fit's cache key, and
a DAS layer that did not train is kept for the report but never handed to a claim. DAS follows the
estimator contract: the model reaches it through ``fit(X, y, objective=...)``, so ``clone`` copies no model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from harness.directions import registry as direction_methods
from harness.directions.das import DASObjective, DASSettings, DistributedAlignmentSearch
from harness.directions.fitting import FitContext, FittedDirections, fit_cache_key, fit_method, method_layers
from harness.directions.registry import REGISTRY, DirectionMethod, method_pairs, methods
from harness.directions.finders import MeanDifference
from harness.interventions.forward import SplitActivations, block_inputs, run_from
from harness.measures.metrics import sentiment_score

DAS = DASSettings(epochs=1, batch_size=8, layers=(1,))


@pytest.fixture(scope="module")
def context(gpt2, toy, toy_resid) -> FitContext:
    return FitContext(gpt2.bridge, SplitActivations(toy.train, toy_resid["train"]), toy.train_pairs, DAS)


def test_controls_are_flagged_and_left_out_on_request():
    assert methods() == ["mean_diff", "kmeans", "probe", "pca", "das", "random"]
    assert methods(controls=False) == ["mean_diff", "kmeans", "probe", "pca", "das"]
    assert len(method_pairs()) == 10 and ("mean_diff", "das") in method_pairs()


def test_a_registered_method_is_picked_up_everywhere(monkeypatch):
    registry = dict(REGISTRY)
    registry["centroid"] = DirectionMethod("centroid", lambda layer, context: MeanDifference())
    monkeypatch.setattr(direction_methods, "REGISTRY", registry)
    assert "centroid" in direction_methods.methods(controls=False)
    assert ("das", "centroid") in direction_methods.method_pairs()


def test_cheap_methods_fit_every_boundary_and_das_its_layers(gpt2):
    assert method_layers("probe", gpt2.n_layers, DAS) == tuple(range(gpt2.n_layers + 1))
    assert method_layers("das", gpt2.n_layers, DAS) == (1,)


def test_needing_the_model_and_the_layers_are_declared_separately():
    declared = {name: (method.layers, method.needs_model, method.control) for name, method in REGISTRY.items()}
    assert declared == {"mean_diff": ("every", False, False), "kmeans": ("every", False, False),
                        "probe": ("every", False, False), "pca": ("every", False, False),
                        "das": ("das", True, False), "random": ("every", False, True)}
    assert REGISTRY["das"].estimator is DistributedAlignmentSearch
    assert (DistributedAlignmentSearch.method_name, DistributedAlignmentSearch.layers) == ("das", "das")
    with pytest.raises(ValueError, match="already registered"):
        direction_methods.register_method("mean_diff")(type("Again", (MeanDifference,), {}))
    with pytest.raises(ValueError, match="layers"):
        DirectionMethod("odd", lambda layer, context: MeanDifference(), layers="some")


@pytest.mark.parametrize("method", ["mean_diff", "kmeans", "probe", "pca", "random"])
def test_fit_method_equals_fitting_the_estimator_by_hand(method, context, gpt2):
    fitted = fit_method(method, context, (0, gpt2.n_layers))
    for layer, estimator in fitted.items():
        by_hand = REGISTRY[method].make(layer, context).fit(context.train.at("ADJ")[layer], context.train.prompts.labels)
        torch.testing.assert_close(estimator.direction_, by_hand.direction_)
        assert torch.linalg.norm(estimator.direction_.double()) == pytest.approx(1.0, abs=1e-6)


def test_das_is_fit_on_data_only_and_equals_the_inline_objective(context, gpt2, toy, toy_resid):
    fitted = fit_method("das", context, (1,))[1]
    pairs = toy.train_pairs
    clean, corrupted = SplitActivations(toy.train, toy_resid["train"]).pairs(pairs)
    n = gpt2.n_layers
    with torch.no_grad():
        scores = [sentiment_score(run_from(gpt2.bridge, block_inputs(r, n), n), pairs.answer_ids) for r in (clean, corrupted)]
    objective = DASObjective(gpt2.bridge, 1, block_inputs(corrupted, 1), pairs.clean.positions["ADJ"], pairs.answer_ids,
                             pairs.clean.labels, *scores)
    inline = DistributedAlignmentSearch(layer=1, epochs=1, batch_size=8).fit(
        clean[1, torch.arange(len(pairs)), pairs.clean.positions["ADJ"]], pairs.clean.labels, objective=objective)
    torch.testing.assert_close(fitted.direction_, inline.direction_)
    assert not any(isinstance(value, (DASObjective, torch.nn.Module)) for value in vars(fitted).values())
    pickle.loads(pickle.dumps(fitted))  # holds no model: the fitted estimator pickles (and goes to the disk cache)


def test_das_is_cloned_without_the_model(context):
    """``sklearn.base.clone`` copies the hyperparameters (layer, epochs, batch size, lr, seed, ...) only."""
    das = REGISTRY["das"].make(1, context)
    params = das.get_params()
    assert params["layer"] == 1 and params["epochs"] == DAS.epochs and params["lr"] == DAS.lr and "objective" not in params
    assert not any(isinstance(value, (DASObjective, torch.nn.Module)) for value in params.values())
    copy = clone(fit_method("das", context, (1,))[1])
    assert copy.get_params() == params and not hasattr(copy, "direction_")
    assert not any(isinstance(value, (DASObjective, torch.nn.Module)) for value in vars(copy).values())
    with pytest.raises(ValueError, match="objective"):
        copy.fit(*context.training_data("das", 1))  # the model is a fit parameter, not a setting
    with pytest.raises(ValueError, match="layer"):
        copy.fit(*context.training_data("das", 1), objective=context.das_objective(2))


def test_fitted_estimators_classify_with_their_own_predict(context, gpt2):
    directions = FittedDirections({"mean_diff": fit_method("mean_diff", context, (gpt2.n_layers,))})
    estimator = directions.estimators["mean_diff"][gpt2.n_layers]
    X, y = context.train.at("ADJ")[gpt2.n_layers], context.train.prompts.labels
    projection = X.double().numpy() @ estimator.direction_.double().numpy()
    assert np.array_equal(estimator.predict(X), (projection > estimator.threshold_).astype(int))
    assert estimator.score(X, y) == pytest.approx(float((estimator.predict(X) == y.numpy()).mean()))
    assert set(directions.vectors()["mean_diff"]) == {gpt2.n_layers}


def test_seeded_methods_take_the_context_seed(gpt2, toy, toy_resid):
    """Seed 0 reproduces the paper's seeds (K-means 0, random 42); another seed moves K-means, DAS and random."""
    train = SplitActivations(toy.train, toy_resid["train"])
    zero, one = (FitContext(gpt2.bridge, train, toy.train_pairs, DAS, seed) for seed in (0, 1))
    assert REGISTRY["kmeans"].make(3, zero).random_state == 0 and REGISTRY["kmeans"].make(3, one).random_state == 1
    assert (REGISTRY["random"].make(3, zero).random_state, REGISTRY["random"].make(3, zero).draw) == (42, 3)
    assert REGISTRY["random"].make(3, one).random_state == 43
    assert REGISTRY["das"].make(1, zero).seed == 0 and REGISTRY["das"].make(1, one).seed == 1
    assert not torch.equal(fit_method("random", zero, (1,))[1].direction_, fit_method("random", one, (1,))[1].direction_)
    assert not torch.equal(fit_method("das", zero, (1,))[1].direction_, fit_method("das", one, (1,))[1].direction_)


@pytest.mark.parametrize("method", ["kmeans", "das", "random", "probe"])
def test_the_seed_is_part_of_the_cache_key(method, gpt2, toy, toy_resid):
    train = SplitActivations(toy.train, toy_resid["train"])
    keys = {seed: fit_cache_key(method, "sha", "float32", FitContext(gpt2.bridge, train, toy.train_pairs, DAS, seed), (1,))
            for seed in (0, 0, 1)}
    assert len(keys) == 2 and keys[0] != keys[1]


def test_untrained_das_layers_are_reported_but_feed_no_claim(context):
    das = fit_method("das", context, (1, 2))
    das[1].trained_, das[2].trained_ = True, False  # as early stopping would flag them
    fitted = FittedDirections({"das": das, "mean_diff": fit_method("mean_diff", context, (1, 2))}, DAS, 10, 0)
    assert set(fitted.estimators["das"]) == {1, 2}  # complete, for the report
    assert fitted.trained_layers("das") == (1,) and set(fitted.vectors()["das"]) == {1}
    assert set(fitted.trained_estimators("das")) == {1}
    assert fitted.trained_layers("mean_diff") == (1, 2) and set(fitted.vectors()["mean_diff"]) == {1, 2}
    (training,) = fitted.training()
    assert training.method == "das" and set(training.layers) == {1, 2} and 2 in training.dropped()
    assert not training.layers[2].trained and "below its initial" in training.dropped()[2]
