"""§4 and §6.3: the five methods find one sentiment direction.

Directions are fitted at the ADJ position of every ToyMovieReview train prompt (all single-token paper-era
train adjectives; the authors' size quirk that kept only the first ~15 per class is not reproduced), at
every residual boundary for the methods of ``harness/direction_methods.py`` and at the authors'
``select_layers`` boundaries for DAS (see the report for DAS's epochs and batch size).

- D1: pairwise |cos| between the methods at layer 0 (the paper's cosine figure) and at DAS's best
  patching layer; D1.random: the random direction against each method.
- D2: each fitted estimator classifies held-out test adjectives with its own ``predict`` (projection,
  thresholded halfway between its training class means) at its best layer (the layer of highest
  held-out accuracy).
- D3 (gpt2-small only): the suite's DAS direction agrees with the authors' released directions at the
  mid layers 4-8.
Thresholds, paper values and their sources: ``harness/claims_declared.py``.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch

from harness.claims_declared import declared
from harness.direction_methods import method_pairs, methods
from harness.directions import cosine
from harness.metrics import bootstrap_ci

METHOD_PAIRS = method_pairs()
D3_MODEL, D3_LAYERS = declared("D3").paper.model, [4, 5, 6, 7, 8]  # the authors released gpt2-small's


@pytest.mark.claim("D1")
@pytest.mark.parametrize("pair", METHOD_PAIRS, ids=[f"{a}-{b}" for a, b in METHOD_PAIRS])
@pytest.mark.parametrize("where", ["layer0", "best"])
def test_d1_methods_agree(pair, where, agreement_layers, toy_directions, claim):
    a, b = pair
    layer = agreement_layers[where]
    claim.check(abs(cosine(toy_directions[a][layer], toy_directions[b][layer])), case=f"{a}-{b}",
                description=f"|cos({a}, {b})| at layer {layer}", details=f"layer {layer} ({where})")


@pytest.mark.claim("D1.random")
@pytest.mark.parametrize("method", methods(controls=False))
@pytest.mark.parametrize("where", ["layer0", "best"])
def test_d1_random_is_orthogonal(method, where, agreement_layers, toy_directions, claim):
    layer = agreement_layers[where]
    claim.check(abs(cosine(toy_directions["random"][layer], toy_directions[method][layer])),
                description=f"|cos(random, {method})| at layer {layer}", details=f"layer {layer} ({where})")


@pytest.mark.claim("D2")
@pytest.mark.parametrize("method", methods(controls=False))
def test_d2_direction_separates_test_adjectives(method, fitted_directions, toy_activations, claim):
    test = toy_activations["test"]
    adjectives, labels = test.at("ADJ"), test.prompts.labels

    def correct_at(layer: int) -> torch.Tensor:
        predicted = fitted_directions.estimators[method][layer].predict(adjectives[layer])
        return (torch.from_numpy(predicted) == labels).double()

    accuracies = {layer: float(correct_at(layer).mean()) for layer in fitted_directions.estimators[method]}
    best = max(accuracies, key=accuracies.get)
    claim.check(accuracies[best], ci=bootstrap_ci(lambda c: c.mean(-1), correct_at(best)),
                description=f"{method}: held-out adjective accuracy by projection",
                details=f"best layer {best} of {len(accuracies)}; {len(labels)} test prompts")


@pytest.mark.claim("D3")
@pytest.mark.parametrize("layer", D3_LAYERS, ids=[f"layer{layer}" for layer in D3_LAYERS])
def test_d3_das_matches_released_directions(layer, model, toy_directions, claim):
    if model.name != D3_MODEL:
        pytest.skip(f"the authors released DAS directions for {D3_MODEL} only; this model is {model.name}")
    if layer not in toy_directions["das"]:
        pytest.skip(f"DAS was not fitted at layer {layer} (--das-layers)")
    path = resources.files("harness").joinpath(f"data/reference/{D3_MODEL}/das_simple_train_ADJ_layer{layer}.json")
    released = torch.tensor(json.loads(path.read_text()), dtype=torch.float64)
    claim.check(abs(cosine(toy_directions["das"][layer], released)),
                description=f"|cos(suite DAS, released DAS)| at layer {layer}")
