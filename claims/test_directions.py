"""§4 and §6.3: the five methods find one sentiment direction.

Directions are fitted at the ADJ position of every ToyMovieReview train prompt (all single-token paper-era
train adjectives; the authors' size quirk that kept only the first ~15 per class is not reproduced), at
every residual boundary for mean difference, K-means, probe, PCA and random, and at the authors'
``select_layers`` boundaries for DAS (see the report for DAS's epochs and batch size).

- D1: pairwise |cos| between the five methods at layer 0 (the paper's cosine figure) and at DAS's best
  patching layer: all pairs >= 0.75, K-means vs mean difference >= 0.95, random vs any <= 0.15.
  Paper values are gpt2-small's layer-0 figure, read by a third party [3P] (PAPER.md §6.3).
- D2: each direction classifies held-out test adjectives by projection (threshold halfway between the
  train class means) with accuracy >= 0.9 at its best layer (the layer of highest held-out accuracy).
- D3 (gpt2-small only): the suite's DAS direction agrees with the authors' released directions,
  |cos| >= 0.7 at the mid layers 4-8.
"""

from __future__ import annotations

import json
from importlib import resources
from itertools import combinations

import numpy as np
import pytest
import torch

from fixtures.directions import FIVE_METHODS
from harness.claim_record import ClaimRecord
from harness.directions import cosine
from harness.metrics import bootstrap_ci

PAPER_MODEL = "gpt2-small"
# Third-party reading of the paper's layer-0 |cos| figure on gpt2-small (PAPER.md §6.3) [3P].
GPT2_LAYER0_COS = {
    ("mean_diff", "kmeans"): 1.00, ("mean_diff", "probe"): 0.99, ("mean_diff", "pca"): 0.94,
    ("mean_diff", "das"): 0.87, ("probe", "pca"): 0.88, ("probe", "das"): 0.86, ("pca", "das"): 0.82,
}
METHOD_PAIRS = list(combinations(FIVE_METHODS, 2))
D3_LAYERS = [4, 5, 6, 7, 8]


def _threshold_source(model_name: str) -> str:
    return f"paper ({PAPER_MODEL})" if model_name == PAPER_MODEL else "generic"


@pytest.fixture(scope="module")
def agreement_layers(toy_patching, report, toy_directions) -> dict[str, int]:
    """Layer 0 and DAS's best patching layer; draws the |cos| heatmaps for the report."""
    layers = {"layer0": 0, "best": toy_patching.best_layer("das")}
    methods = list(toy_directions)

    def draw(figure) -> None:
        for ax, (label, layer) in zip(figure.subplots(1, 2), layers.items()):
            matrix = np.array([[abs(cosine(toy_directions[a][layer], toy_directions[b][layer])) for b in methods]
                               for a in methods])
            image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(methods)), methods, rotation=45, fontsize=7)
            ax.set_yticks(range(len(methods)), methods, fontsize=7)
            for i in range(len(methods)):
                for j in range(len(methods)):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if matrix[i, j] < 0.6 else "black")
            ax.set_title(f"|cos| at layer {layer} ({label})", fontsize=9)
        figure.colorbar(image, ax=figure.axes, shrink=0.7)

    report.add_figure("direction_cosines.png", draw)
    return layers


@pytest.mark.claim("D1")
@pytest.mark.parametrize("pair", METHOD_PAIRS, ids=[f"{a}-{b}" for a, b in METHOD_PAIRS])
@pytest.mark.parametrize("where", ["layer0", "best"])
def test_d1_methods_agree(pair, where, agreement_layers, toy_directions, model, claim):
    a, b = pair
    layer = agreement_layers[where]
    value = abs(cosine(toy_directions[a][layer], toy_directions[b][layer]))
    threshold = 0.95 if set(pair) == {"mean_diff", "kmeans"} else 0.75
    paper = GPT2_LAYER0_COS.get(pair)
    claim.check(ClaimRecord(
        claim="D1", section="§6.3", description=f"|cos({a}, {b})| at layer {layer}",
        paper_value=f">= {threshold} (gpt2-small L0: {paper:.2f} [3P])" if paper else f">= {threshold} (gpt2-small)",
        measured=value, tolerance=f">= {threshold}", threshold_source=_threshold_source(model.name),
        passed=value >= threshold, details=f"layer {layer} ({where})",
    ))


@pytest.mark.claim("D1")
@pytest.mark.parametrize("method", FIVE_METHODS)
@pytest.mark.parametrize("where", ["layer0", "best"])
def test_d1_random_is_orthogonal(method, where, agreement_layers, toy_directions, model, claim):
    layer = agreement_layers[where]
    value = abs(cosine(toy_directions["random"][layer], toy_directions[method][layer]))
    claim.check(ClaimRecord(
        claim="D1", section="§6.3", description=f"|cos(random, {method})| at layer {layer}",
        paper_value="<= 0.15 (gpt2-small L0: <= 0.06 [3P])", measured=value, tolerance="<= 0.15",
        threshold_source=_threshold_source(model.name), passed=value <= 0.15, details=f"layer {layer} ({where})",
    ))


@pytest.mark.claim("D2")
@pytest.mark.parametrize("method", FIVE_METHODS)
def test_d2_direction_separates_test_adjectives(method, toy_directions, toy_activations, claim, model):
    train, test = toy_activations["train"], toy_activations["test"]
    train_adj, test_adj = train.at("ADJ"), test.at("ADJ")
    y_train, y_test = train.prompts.labels, test.prompts.labels

    def correct_at(layer: int) -> torch.Tensor:
        d = toy_directions[method][layer].double()
        train_projection, test_projection = train_adj[layer].double() @ d, test_adj[layer].double() @ d
        threshold = (train_projection[y_train == 1].mean() + train_projection[y_train == 0].mean()) / 2
        return ((test_projection > threshold).long() == y_test).double()

    accuracies = {layer: float(correct_at(layer).mean()) for layer in toy_directions[method]}
    best = max(accuracies, key=accuracies.get)
    low, high = bootstrap_ci(lambda c: c.mean(-1), correct_at(best))
    claim.check(ClaimRecord(
        claim="D2", section="§4", description=f"{method}: held-out adjective accuracy by projection",
        paper_value=">= 0.9 (directions classify sentiment)", measured=accuracies[best], ci_low=low, ci_high=high,
        tolerance=">= 0.9", threshold_source="generic", passed=accuracies[best] >= 0.9,
        details=f"best layer {best} of {len(accuracies)}; {len(y_test)} test prompts",
    ))


@pytest.mark.claim("D3")
@pytest.mark.parametrize("layer", D3_LAYERS, ids=[f"layer{layer}" for layer in D3_LAYERS])
def test_d3_das_matches_released_directions(layer, model, toy_directions, claim):
    if model.name != PAPER_MODEL:
        pytest.skip(f"the authors released DAS directions for {PAPER_MODEL} only; this model is {model.name}")
    if layer not in toy_directions["das"]:
        pytest.skip(f"DAS was not fitted at layer {layer} (--das-layers)")
    path = resources.files("harness").joinpath(f"data/reference/{PAPER_MODEL}/das_simple_train_ADJ_layer{layer}.json")
    released = torch.tensor(json.loads(path.read_text()), dtype=torch.float64)
    value = abs(cosine(toy_directions["das"][layer], released))
    claim.check(ClaimRecord(
        claim="D3", section="§4", description=f"|cos(suite DAS, released DAS)| at layer {layer}",
        paper_value="released directions (authors' data/gpt2-small)", measured=value, tolerance=">= 0.7",
        threshold_source=f"paper ({PAPER_MODEL})", passed=value >= 0.7,
    ))
