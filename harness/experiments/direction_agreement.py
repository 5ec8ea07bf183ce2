"""D1's uncertainty (§6.3): every direction method refitted on bootstrap resamples of the train prompts.

The statistic of a D1 row, |cos(a, b)| of two methods' directions fitted on all train prompts, depends on
both fits, so both are refitted on each resample (each prompt drawn with replacement, one shared set of
draws ``index``, seeded by the session's seed):

- the cheap methods (``refit``: mean difference, probe, PCA, K-means) as a ``sklearn.base.clone`` of their
  fitted estimator (same settings and seed), on every one of the shared draws;
- DAS (a training run per fit) by ``harness.directions.das_refit.das_refits``: DAS's training continued
  from its full fit on each resample's pairs for D1's declared epochs, on the first draws only (D1's
  protocol declares how many). The fixture hands them over with ``provide_refits``: computed (through the
  disk cache) the first time a statistic needs them, so a selection without DAS rows trains nothing;
- the random control is ``held`` at its fit: it does not depend on the data.

A statistic whose methods were refitted on the first k draws only is drawn on those k (``estimate``).
A resample holding one class only leaves the cheap refits undefined (NaN rows, counted as undefined).

The interval (``recentred_estimate``). A refit on a resample is noisier than the fit on all prompts (a
resample repeats prompts: fewer distinct adjectives), and noise in either direction lowers their |cos| in
a high-dimensional space, so the draws sit below the point, often wholly: the percentile interval then
excludes its own point. D1's estimand is the |cos| of directions fitted on the n train prompts (the
paper's quantity; the point is its unbiased estimate), not that of infinite-data directions (higher, and
reachable only by extrapolating the bias). The draws give its spread: the CI is the point plus the draws'
2.5% and 97.5% quantiles minus their median (the refits' median bias, reported, removed), within |cos|'s
range [0, 1]; it holds its point by construction. Simulated at D1's n = 52 and d_model = 576 with a known
estimand (``tests/test_agreement_bootstrap.py``; a mean difference against a fixed vector, or against a
second mean difference with independent noise; 100 data sets each), the percentile interval covered it in
1% and 0% of the data sets, the re-centred one in 97% and 100%.

``abs_cosine`` and ``largest_abs_cosine`` build statistics of an index: on the 1-D index of all prompts
the fitted directions' value, on ``[resamples, n]`` indices the refits' values. Cheap refits are memoised
by (layer, resample indices), and a prefix of the shared draws reads the memo of all of them, so every D1
row shares one set of refits.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from sklearn.base import clone
from threadpoolctl import threadpool_limits
from torch import Tensor

from harness.measures.statistics import Estimate, draws_estimate

Directions = dict[str, dict[int, Tensor]]
Use = tuple[str, int]  # (method, layer)


def recentred_estimate(value: float, draws: Tensor, n: int, unit: str, what: str) -> Estimate:
    """The point ``value`` (an |cos|) with the percentile interval of ``draws`` re-centred at it: the draws
    minus their median plus the point, kept within [0, 1] (module docstring); NaN draws dropped, counted."""
    finite = draws[torch.isfinite(draws)]
    if finite.numel() == 0:
        raise ValueError(f"{what}: the statistic is undefined in every bootstrap resample")
    bias = float(torch.quantile(finite.double(), 0.5)) - value
    shifted = (draws.double() - bias).clamp(0.0, 1.0)
    estimate = draws_estimate(value, shifted, n, unit, f"{what}; percentile interval of the draws re-centred at "
                                                       f"the point (the refits' median bias {bias:+.3f} removed)")
    # the 2.5% and 97.5% quantiles bracket the median, so the interval holds the point up to float rounding
    return dataclasses.replace(estimate, ci_low=min(estimate.ci_low, value), ci_high=max(estimate.ci_high, value))


class AgreementBootstrap:
    """Refits of every method on the shared resamples ``index`` of the train prompts (module docstring)."""

    def __init__(self, estimators: dict, activations: dict[int, Tensor], labels: Tensor, directions: Directions,
                 refit: list[str], held: list[str], index: Tensor):
        self.estimators = estimators  # [method][layer] -> fitted estimator (cloned for each cheap refit)
        self.activations = activations  # layer -> [n, d_model] train activations at ADJ
        self.labels = labels
        self.directions = directions  # [method][layer] -> unit direction fitted on all train prompts
        self.refit = refit  # refitted here, by clone
        self.held = held  # data-independent (the random control): held at its fit
        self.index = index  # [resamples, n]: the shared draws
        self._memo: dict[tuple[int, bytes], dict[str, Tensor]] = {}
        self._provided: dict[Use, tuple[int, Callable[[], Tensor]]] = {}  # refits made elsewhere (DAS): (count, make)
        self._remembered: dict[Use, Tensor] = {}  # those made, on the first draws of index
        self._how: dict[str, str] = {}  # how each provided method was refitted (for the report)

    @property
    def n(self) -> int:
        return len(self.labels)

    def resampled(self, layer: int, index: Tensor) -> dict[str, Tensor]:
        """``[method] -> [resamples, d_model]``: the cheap methods refitted (NaN rows: undefined resample)."""
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
        """What the cheap refits at ``layers`` on ``index`` depend on (for a disk cache key): the activations,
        labels, draws, refitted methods and each estimator's settings."""
        settings = {method: {layer: self.estimators[method][layer].get_params() for layer in layers}
                    for method in self.refit}
        return ([self.activations[layer] for layer in layers], self.labels, index, self.refit, settings)

    def remember(self, layer: int, index: Tensor, refits: dict[str, Tensor]) -> None:
        """Seed the memo with ``resampled(layer, index)``'s value computed earlier (e.g. read from disk)."""
        if sorted(refits) != sorted(self.refit):
            raise ValueError(f"refits hold methods {sorted(refits)}; expected {sorted(self.refit)}")
        self._memo[(layer, index.numpy().tobytes())] = refits

    def provide_refits(self, method: str, layer: int, resamples: int, make: Callable[[], Tensor], how: str) -> None:
        """``method``'s refits at ``layer``, made elsewhere (DAS's) by ``make()`` on the first ``resamples``
        shared draws, when first needed; ``how``: how they are made, in words."""
        if method in self.refit or method in self.held or resamples > len(self.index):
            raise ValueError(f"{method}: {resamples} refits for {len(self.index)} draws (refitted here: "
                             f"{self.refit}; held: {self.held})")
        self._provided[(method, layer)] = (resamples, make)
        self._how[method] = how

    def _refits(self, use: Use) -> Tensor | None:
        """The provided refits of ``use``, made now if not yet (None: none provided)."""
        if use not in self._remembered and use in self._provided:
            resamples, make = self._provided[use]
            refits = make()
            if refits.shape != (resamples, self.activations[use[1]].shape[-1]):
                raise ValueError(f"{use}: refits of shape {tuple(refits.shape)}, expected {resamples} rows")
            self._remembered[use] = refits.double()
        return self._remembered.get(use)

    def how(self, method: str) -> str:
        """How ``method`` varies over the resamples, in words."""
        if method in self.held:
            return f"{method} held at its draw (data-independent)"
        return f"{method} {self._how.get(method, 'refitted (a clone of its estimator)')}"

    def resamples_for(self, uses: list[Use]) -> int:
        """How many of the shared draws every (method, layer) of ``uses`` was refitted on."""
        return min([len(self.index)] + [self._provided[use][0] for use in uses if use in self._provided])

    def vectors(self, method: str, layer: int, index: Tensor) -> Tensor:
        """``[d_model]`` on all prompts (1-D ``index``), else ``[resamples, d_model]``: the refits on ``index``
        (the shared draws or a prefix of them, for a method not refitted here)."""
        fitted = self.directions[method][layer].double()
        if index.dim() == 1:
            return fitted
        if method in self.held:
            return fitted.expand(len(index), -1)
        prefix = len(index) <= len(self.index) and torch.equal(index, self.index[:len(index)])
        if method in self.refit:
            return self.resampled(layer, self.index)[method][:len(index)] if prefix else self.resampled(layer, index)[method]
        stored = self._refits((method, layer))
        if stored is None or not prefix or len(index) > len(stored):
            raise ValueError(f"{method} at layer {layer} was not refitted on these {len(index)} resamples "
                             f"({0 if stored is None else len(stored)} refits remembered)")
        return stored[:len(index)]

    def abs_cosine(self, a: str, b: str, layer: int) -> Callable[[Tensor], Tensor]:
        """|cos(a, b)| at ``layer``."""
        def statistic(index: Tensor) -> Tensor:
            return torch.nn.functional.cosine_similarity(self.vectors(a, layer, index),
                                                         self.vectors(b, layer, index), dim=-1).abs()
        return statistic

    def largest_abs_cosine(self, control: str, against: list[Use]) -> Callable[[Tensor], Tensor]:
        """max over (method, layer) of |cos(control, method)| at that layer."""
        def statistic(index: Tensor) -> Tensor:
            values = torch.stack([self.abs_cosine(control, method, layer)(index) for method, layer in against])
            return values.max(0).values  # NaN (undefined resample) propagates
        return statistic

    def estimate(self, statistic: Callable[[Tensor], Tensor], uses: list[Use], unit: str) -> Estimate:
        """``statistic`` on all prompts, with ``recentred_estimate``'s CI over the shared draws that every
        (method, layer) of ``uses`` was refitted on."""
        resamples = self.resamples_for(uses)
        value = float(statistic(torch.arange(self.n)))
        return recentred_estimate(value, statistic(self.index[:resamples]), self.n, unit,
                                  f"bootstrap over {unit}, every method refitted in each resample")
