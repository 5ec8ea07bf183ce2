"""Directions (paper §4): scikit-learn estimators that find a sentiment direction (``finders``), 1-D DAS
(``das``) and its warm-started refits on bootstrap resamples (``das_refit``, D1's uncertainty), the
registry they add themselves to with ``@register_method`` (``registry``) and fitting them on
ToyMovieReview (``fitting``). Imports the layers up to ``interventions``.

Importing the package imports ``finders`` and ``das``, so the built-in methods are registered (and on
the disk cache's allowlist) before anyone reads ``registry.REGISTRY``."""

from harness.directions import finders  # noqa: F401,I001  (registers mean_diff, kmeans, probe, pca, random)
from harness.directions import das  # noqa: F401  (registers das)
