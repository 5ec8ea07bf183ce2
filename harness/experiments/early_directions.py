"""The early-layer directions of §5.4-§5.6: every method's direction at the paper's layer 1 of 12.

The correlational evaluation, steering and negation all read the directions fitted at ADJ on
ToyMovieReview at the early layer, the paper's layer 1 of gpt2-small's 12 carried to the same fraction
of depth (``layer_at_depth``). A method not fitted there (DAS, fitted only at ``--das-layers``) takes
its nearest fitted layer, the lower one on a tie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import torch

from harness.interventions import hook_names
from harness.experiments.correlation import layer_at_depth
from harness.directions.registry import methods
from harness.models.paper import EARLY_PAPER_LAYER


@dataclass(frozen=True)
class EarlyDirections:
    """The five methods' and the random direction at the early layer (DAS: its nearest fitted layer)."""

    layer: int
    hook: str  # the residual hook at that layer
    directions: dict[str, torch.Tensor]
    source_layer: dict[str, int]

    def describe(self) -> str:
        moved = [f"{m} from layer {l}" for m, l in self.source_layer.items() if l != self.layer]
        return f"layer {self.layer} (the paper's layer 1 of 12 at the same depth)" + (
            f"; no direction fitted there for {', '.join(moved)} (nearest fitted layer)" if moved else "")


def nearest_fitted_layer(fitted_layers: Iterable[int], layer: int) -> int:
    """The fitted layer closest to ``layer``; the lower one when two are equally close."""
    return min(fitted_layers, key=lambda fitted: (abs(fitted - layer), fitted))


def early_directions(directions: Mapping[str, Mapping[int, torch.Tensor]], n_layers: int) -> EarlyDirections:
    """Every registered method's direction (``directions[method][layer]``) at the early layer of a model
    with ``n_layers`` blocks, each from its nearest fitted layer."""
    layer = layer_at_depth(EARLY_PAPER_LAYER, n_layers)
    source = {method: nearest_fitted_layer(directions[method], layer) for method in methods()}
    return EarlyDirections(layer, hook_names.resid(n_layers, layer),
                           {m: directions[m][source[m]] for m in methods()}, source)
