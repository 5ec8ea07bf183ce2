"""A toy direction method, added in this one file (``tests/test_extension_contracts.py`` imports it):
the difference of the two classes' medians. Defining the class registers it as method ``"toy_median"``
(fitted at every layer, from the data alone) and puts it on the disk cache's allowlist."""

from __future__ import annotations

import numpy as np

from harness.directions.finders import DirectionFinder
from harness.directions.registry import register_method


@register_method("toy_median", control=False, layers="every", needs_model=False)
class ToyMedianDifference(DirectionFinder):
    """median(positive) − median(negative), its components below ``floor`` (a fraction of the largest) zeroed."""

    def __init__(self, floor: float = 0.0):
        self.floor = floor

    def _raw_direction(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        direction = np.median(X[y == 1], axis=0) - np.median(X[y == 0], axis=0)
        return np.where(np.abs(direction) >= self.floor * np.abs(direction).max(), direction, 0.0)
