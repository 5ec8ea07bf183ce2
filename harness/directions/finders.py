"""Sentiment-direction finders as scikit-learn estimators (paper §4, ``utils/classification.py``).

Each is fit on residual-stream activations at the ADJ position, ``fit(X, y)`` with y = 1 for positive
prompts, and exposes a unit ``direction_`` whose sign is oriented so that positive prompts project
higher than negative ones (the authors left PCA and DAS unoriented; claims compare with |cos| anyway),
except the random baseline, which stays exactly the paper's draw (``oriented = False``).
``predict``/``score`` classify by projection, thresholded halfway between the two classes' mean
projections on the training data (``orientation_`` = the sign that puts positives above; 1 for every
oriented direction).

The paper's settings: K-means ``KMeans(n_clusters=2, n_init=10, random_state=0)`` with clusters
oriented by majority vote and direction = positive centroid − negative centroid; the probe
``LogisticRegression(solver='liblinear', max_iter=1000, tol=1e-4, random_state=0)`` with direction
``coef_[0]``; PCA's first component (computed by the exact SVD, ``svd_solver="full"``: the authors'
``PCA(n_components=1)`` picks scikit-learn's randomized solver when d_model > 500, seeded by numpy's global
random state, so its direction, an approximation of the exact one, would depend on whatever drew from
that state earlier in the session); mean difference = mean(positive) − mean(negative); the random
baseline one ``torch.randn(d_model)`` per layer from ``torch.manual_seed(42)`` set once, normalised and not
oriented (docs/PAPER.md §4 "Random baseline"). DAS lives in ``harness.directions.das``.

The extension contract (``harness.directions.registry``): a finder is a scikit-learn estimator, its
hyperparameters only in ``__init__`` (``clone`` copies them and nothing else), built for a layer by
``for_layer(layer, context)``; it registers itself with ``@register_method(name, control=..., layers=...,
needs_model=...)``, which also puts it on the disk cache's allowlist. ``fit(X, y, **fit_params)`` passes
the fit parameters (what a ``needs_model`` finder takes from ``fit_params(context)``) to ``_raw_direction``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from harness.directions.registry import Layers, register_method

PAPER_RANDOM_SEED = 42  # ``random_directions.py``: torch.manual_seed(42)


def _as_numpy(X) -> np.ndarray:
    return X.detach().cpu().double().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, float)


class DirectionFinder(BaseEstimator):
    """Base: subclasses implement ``_raw_direction(X, y, **fit_params)``; ``fit`` normalises it and, when
    the class is ``oriented``, flips it so that positive prompts project higher.

    Declared by ``register_method`` (class attributes, not hyperparameters): ``method_name``, ``control``,
    ``layers`` ("every" | "das") and ``needs_model``."""

    oriented = True
    method_name: str | None = None
    control: bool = False
    layers: Layers = "every"
    needs_model: bool = False

    @classmethod
    def for_layer(cls, layer: int, context) -> "DirectionFinder":
        """The unfitted estimator for residual boundary ``layer`` (``context``: the ``FitContext``, whose
        ``seed`` seeds the seeded methods); hyperparameters only. Default: ``cls()``."""
        return cls()

    def fit_params(self, context) -> dict:
        """What ``fit`` takes besides (X, y), from the ``FitContext``: nothing unless the method ``needs_model``."""
        return {}

    def fit(self, X, y, **fit_params):
        X, y = _as_numpy(X), np.asarray(y).astype(int)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X [n, d_model] and y [n]; got {X.shape} and {y.shape}")
        if set(np.unique(y)) != {0, 1}:
            raise ValueError(f"y must contain both classes 0 (negative) and 1 (positive); got {np.unique(y)}")
        direction = np.asarray(self._raw_direction(X, y, **fit_params), dtype=float)
        direction = direction / np.linalg.norm(direction)
        projection = X @ direction
        orientation = 1.0 if projection[y == 1].mean() >= projection[y == 0].mean() else -1.0
        if self.oriented:
            direction, projection, orientation = orientation * direction, orientation * projection, 1.0
        self.direction_ = torch.tensor(direction, dtype=torch.float32)
        self.orientation_ = orientation
        self.threshold_ = float(orientation * (projection[y == 1].mean() + projection[y == 0].mean()) / 2)
        return self

    def _raw_direction(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        return self.orientation_ * (_as_numpy(X) @ self.direction_.double().numpy()) - self.threshold_

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)

    def score(self, X, y) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())


@register_method("mean_diff")
class MeanDifference(DirectionFinder):
    def _raw_direction(self, X, y):
        return X[y == 1].mean(0) - X[y == 0].mean(0)


@register_method("kmeans")
class KMeansDirection(DirectionFinder):
    def __init__(self, n_init: int = 10, random_state: int = 0):
        self.n_init = n_init
        self.random_state = random_state

    @classmethod
    def for_layer(cls, layer, context):
        return cls(n_init=10, random_state=context.seed)

    def _raw_direction(self, X, y):
        kmeans = KMeans(n_clusters=2, n_init=self.n_init, random_state=self.random_state).fit(X)
        positive_share = [y[kmeans.labels_ == k].mean() for k in (0, 1)]
        positive = int(np.argmax(positive_share))
        self.cluster_positive_share_ = positive_share
        return kmeans.cluster_centers_[positive] - kmeans.cluster_centers_[1 - positive]


@register_method("probe")  # keeps the paper's random_state 0: it only orders liblinear's coordinate descent
class LogisticProbe(DirectionFinder):
    def __init__(self, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-4, random_state: int = 0):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _raw_direction(self, X, y):
        probe = LogisticRegression(
            solver="liblinear", C=self.C, max_iter=self.max_iter, tol=self.tol, random_state=self.random_state
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            probe.fit(X, y)
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return probe.coef_[0]


@register_method("pca")  # the full SVD: deterministic
class PCADirection(DirectionFinder):
    def _raw_direction(self, X, y):
        pca = PCA(n_components=1, svd_solver="full").fit(X)
        self.explained_variance_ratio_ = float(pca.explained_variance_ratio_[0])
        return pca.components_[0]


@register_method("random", control=True)
class RandomDirection(DirectionFinder):
    """The paper's random baseline (``random_directions.py``): ``torch.manual_seed(42)`` once, then one
    ``torch.randn(d_model)`` per layer in order; this is draw number ``draw`` (the layer) of the stream
    seeded ``random_state``, normalised, its sign left as drawn (not oriented by the labels)."""

    oriented = False

    def __init__(self, random_state: int = PAPER_RANDOM_SEED, draw: int = 0):
        self.random_state = random_state
        self.draw = draw

    @classmethod
    def for_layer(cls, layer, context):
        """Seed 42 + the suite seed (seed 0 = the paper's 42), one draw per layer in order."""
        return cls(random_state=PAPER_RANDOM_SEED + context.seed, draw=layer)

    def _raw_direction(self, X, y):
        generator = torch.Generator().manual_seed(self.random_state)
        for _ in range(self.draw):
            torch.randn(X.shape[1], generator=generator)
        return torch.randn(X.shape[1], generator=generator).double().numpy()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))
