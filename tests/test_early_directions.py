"""harness.experiments.early_directions: the early layer of §5.4-§5.6 and each method's nearest fitted layer.

- the early layer is the paper's layer 1 of 12 at the same depth (3 of 30), its hook the residual there;
- a method fitted at the early layer uses it; one that is not (DAS at ``--das-layers``) takes its
  nearest fitted layer, the lower one on a tie, and ``describe`` names it;
- every registered method, the random control included, in registry order.
"""

from __future__ import annotations

import pytest
import torch

from harness.interventions import hook_names
from harness.directions.registry import methods
from harness.experiments.early_directions import early_directions, nearest_fitted_layer


@pytest.mark.parametrize("fitted, layer, expected", [
    ([0, 15], 3, 0), ([0, 15], 9, 15), ([2, 4], 3, 2), ([4, 2], 3, 2), ([3], 3, 3), (range(31), 3, 3), ([7], 0, 7),
])
def test_nearest_fitted_layer(fitted, layer, expected):
    assert nearest_fitted_layer(fitted, layer) == expected


def synthetic_directions(n_layers: int, das_layers: list[int]) -> dict[str, dict[int, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return {method: {layer: torch.randn(8, generator=generator)
                     for layer in (das_layers if method == "das" else range(n_layers + 1))}
            for method in reversed(methods())}  # stored out of registry order on purpose


def test_early_directions_take_the_nearest_fitted_layer():
    directions = synthetic_directions(30, das_layers=[0, 15])
    early = early_directions(directions, 30)
    assert early.layer == 3 and early.hook == hook_names.resid(30, 3)
    assert list(early.directions) == list(early.source_layer) == methods()
    assert early.source_layer == {**{m: 3 for m in methods()}, "das": 0}
    for method in methods():
        assert early.directions[method] is directions[method][early.source_layer[method]]
    assert early.describe() == ("layer 3 (the paper's layer 1 of 12 at the same depth); no direction fitted there "
                                "for das from layer 0 (nearest fitted layer)")


def test_early_directions_when_every_method_is_fitted_there():
    early = early_directions(synthetic_directions(12, das_layers=[1, 6]), 12)
    assert early.layer == 1 and set(early.source_layer.values()) == {1}
    assert early.describe() == "layer 1 (the paper's layer 1 of 12 at the same depth)"


def test_a_missing_method_is_an_error():
    directions = synthetic_directions(12, das_layers=[1])
    del directions["pca"]
    with pytest.raises(KeyError):
        early_directions(directions, 12)
