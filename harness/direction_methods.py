"""The registry of direction-finding methods (§4): a method is one estimator class plus one line here.

Every sweep, claim parametrization and figure iterates this registry, so a registered method is
picked up everywhere. A method is registered with

- ``make(layer, context)``: a factory returning an unfitted estimator for residual boundary ``layer``
  (``context`` supplies what a model-dependent method needs at construction: DAS's corrupted runs, and
  ``context.seed``, the session's ``suite_seed``, for every seeded method: K-means init, DAS, random);
  ``fit(X, y)`` then only takes the activations and labels, like every scikit-learn estimator;
- ``control``: a baseline, not a method claimed to find the sentiment direction (the random direction);
- ``every_layer``: fitted at every residual boundary (cheap), or only at the DAS layers (``--das-layers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.directions import DirectionFinder, KMeansDirection, LogisticProbe, MeanDifference, PCADirection, RandomDirection


@dataclass(frozen=True)
class DirectionMethod:
    name: str
    make: Callable[[int, object], DirectionFinder]
    control: bool = False
    every_layer: bool = True


def _das(layer: int, context) -> DirectionFinder:
    return context.das_estimator(layer)


def _random(layer: int, context) -> DirectionFinder:
    """The paper's baseline: seed 42 once, one draw per layer in order (seed 0 = the paper's 42)."""
    return RandomDirection(random_state=PAPER_RANDOM_SEED + context.seed, draw=layer)


PAPER_RANDOM_SEED = 42  # ``random_directions.py``: torch.manual_seed(42)

# The mean difference and PCA (full SVD at these sizes) are deterministic; the probe keeps the paper's
# random_state 0 (it only orders liblinear's coordinate descent on a convex problem).
REGISTRY: dict[str, DirectionMethod] = {method.name: method for method in (
    DirectionMethod("mean_diff", lambda layer, context: MeanDifference()),
    DirectionMethod("kmeans", lambda layer, context: KMeansDirection(n_init=10, random_state=context.seed)),
    DirectionMethod("probe", lambda layer, context: LogisticProbe()),
    DirectionMethod("pca", lambda layer, context: PCADirection()),
    DirectionMethod("das", _das, every_layer=False),
    DirectionMethod("random", _random, control=True),
)}


def methods(controls: bool = True) -> list[str]:
    """Registered method names in registration order; ``controls=False`` leaves the baselines out."""
    return [name for name, method in REGISTRY.items() if controls or not method.control]


def method_pairs() -> list[tuple[str, str]]:
    """Every unordered pair of non-control methods (D1's comparisons)."""
    names = methods(controls=False)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
