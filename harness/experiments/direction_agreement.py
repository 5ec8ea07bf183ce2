"""D1's uncertainty (§6.3): the cheap direction methods refitted on bootstrap resamples of the train prompts.

A resample draws the ToyMovieReview train prompts with replacement and refits, at ADJ of the requested
layers, every method that ``refit`` names (the cheap ones: mean difference, probe, PCA, K-means), each a
``sklearn.base.clone`` of its fitted estimator (same settings and seed). The other directions (DAS: a
training run per resample is too costly; the random control: it does not depend on data) are held at
their fit on all train prompts. A resample holding one class only leaves the refits undefined (NaN
rows, counted as undefined resamples by ``harness.measures.statistics.bootstrap``).

``abs_cosine`` and ``largest_abs_cosine`` build statistics for ``bootstrap(statistic, arange(n))``: on
the 1-D index of all prompts they give the fitted directions' value, on ``[resamples, n]`` indices the
refits' values. Refits are memoised by (layer, resample indices), so every D1 row drawn with the same
seed shares one set of refits.
"""

from __future__ import annotations

from typing import Callable

import torch
from sklearn.base import clone
from threadpoolctl import threadpool_limits
from torch import Tensor

Directions = dict[str, dict[int, Tensor]]


class AgreementBootstrap:
    """Refits of ``refit`` methods on resampled train prompts (module docstring)."""

    def __init__(self, estimators: dict, activations: dict[int, Tensor], labels: Tensor, directions: Directions,
                 refit: list[str]):
        self.estimators = estimators  # [method][layer] -> fitted estimator (cloned for each refit)
        self.activations = activations  # layer -> [n, d_model] train activations at ADJ
        self.labels = labels
        self.directions = directions  # [method][layer] -> unit direction fitted on all train prompts
        self.refit = refit
        self._memo: dict[tuple[int, bytes], dict[str, Tensor]] = {}

    @property
    def n(self) -> int:
        return len(self.labels)

    def resampled(self, layer: int, index: Tensor) -> dict[str, Tensor]:
        """``[method] -> [resamples, d_model]``: refitted directions (NaN rows: undefined resample)."""
        key = (layer, index.numpy().tobytes())
        if key not in self._memo:
            X = self.activations[layer]
            out = {}
            with threadpool_limits(1):  # K-means on ~50 prompts is 10x slower with a thread pool
                for method in self.refit:
                    rows = []
                    for sample in index:
                        y = self.labels[sample]
                        if y.min() == y.max():
                            rows.append(torch.full((X.shape[1],), float("nan")))
                            continue
                        fitted = clone(self.estimators[method][layer]).fit(X[sample], y)
                        rows.append(fitted.direction_.double())
                    out[method] = torch.stack(rows).double()
            self._memo[key] = out
        return self._memo[key]

    def refits_key(self, layers: list[int], index: Tensor) -> tuple:
        """What the refits at ``layers`` on ``index`` depend on (for a disk cache key): the activations,
        labels, draws, refitted methods and each estimator's settings."""
        settings = {method: {layer: self.estimators[method][layer].get_params() for layer in layers}
                    for method in self.refit}
        return ([self.activations[layer] for layer in layers], self.labels, index, self.refit, settings)

    def remember(self, layer: int, index: Tensor, refits: dict[str, Tensor]) -> None:
        """Seed the memo with ``resampled(layer, index)``'s value computed earlier (e.g. read from disk)."""
        if sorted(refits) != sorted(self.refit):
            raise ValueError(f"refits hold methods {sorted(refits)}; expected {sorted(self.refit)}")
        self._memo[(layer, index.numpy().tobytes())] = refits

    def vectors(self, method: str, layer: int, index: Tensor) -> Tensor:
        """``[d_model]`` on all prompts (1-D ``index``), else ``[resamples, d_model]``."""
        fitted = self.directions[method][layer].double()
        if index.dim() == 1:
            return fitted
        if method in self.refit:
            return self.resampled(layer, index)[method]
        return fitted.expand(len(index), -1)

    def abs_cosine(self, a: str, b: str, layer: int) -> Callable[[Tensor], Tensor]:
        """|cos(a, b)| at ``layer``."""
        def statistic(index: Tensor) -> Tensor:
            return torch.nn.functional.cosine_similarity(self.vectors(a, layer, index),
                                                         self.vectors(b, layer, index), dim=-1).abs()
        return statistic

    def largest_abs_cosine(self, control: str, against: list[tuple[str, int]]) -> Callable[[Tensor], Tensor]:
        """max over (method, layer) of |cos(control, method)| at that layer."""
        def statistic(index: Tensor) -> Tensor:
            values = torch.stack([self.abs_cosine(control, method, layer)(index) for method, layer in against])
            return values.max(0).values  # NaN (undefined resample) propagates
        return statistic
