"""Estimates with their 95% confidence intervals: what every claim is decided on (issue "Verdicts").

An ``Estimate`` is a point value, its 95% CI, the number ``n`` of independent units it rests on (the
prompt pair, the sentence, the generated sample) and how the CI was made. The constructors:

- ``bootstrap``: percentile bootstrap over units (1,000 resamples, seeded). Resamples where the
  statistic is undefined (a zero denominator) are dropped and *counted* (``undefined``).
- ``wilson``: the Wilson score interval of a share.
- ``cross_fitted``: a "best layer" value whose layer is chosen on data that does not score it. Units
  are split into two folds (seeded, stratified by label); each fold is scored at the layer chosen on
  the other fold; the value is the units-weighted mean of the two. The bootstrap resamples units within
  each fold and redoes the choice in every resample.
- ``selected``: the chosen layer itself (argmax over layers on all units), its CI from redoing the
  choice in every resample (for "the best layer is intermediate" claims).
- ``binned_share_bands``: per bin, a share of items and its percentile band over resampled units (the
  report's label-share figure).
- ``TieRule``: an optional declared rule for ``cross_fitted`` and ``selected`` choosing among layers
  within a tolerance of the best (their default stays the argmax, i.e. the first best layer).

BCa, cluster and paired-difference intervals: ``harness.measures.intervals``; their coverage by
simulation: ``harness.measures.calibration`` (docs/calibration.md). Every constructor attaches the
estimate's ``tail`` (``harness.measures.tails``): the one-sided p-values its CI procedure implies, which
decide a claim's rows together (``harness.verdicts.claim_level``).

``seeded(seed)`` sets the seed of every bootstrap made inside it (``--seeds``); the default is 0.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from harness.measures.tails import Percentile, Point, Scaled, Score, Tail, sorted_finite

RESAMPLES = 1000
SENTENCE_RESAMPLES = 1000  # resamples of a corpus's sentences or a dataset's items (a few seconds per statistic)
LEVEL = 0.95
_seed = [0]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Bootstraps made inside use ``seed``."""
    previous, _seed[0] = _seed[0], seed
    try:
        yield
    finally:
        _seed[0] = previous


def current_seed() -> int:
    return _seed[0]


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float
    n: int  # independent units
    unit: str  # what a unit is: "pairs", "prompts", "sentences", "samples", ...
    method: str  # how the CI was made
    undefined: int = 0  # bootstrap resamples where the statistic was undefined (dropped, counted)
    resamples: int = 0
    # the one-sided p-values the CI procedure implies (``harness.measures.tails``); None: an estimate built
    # by hand with a CI of unknown origin (a CI that is its point gets ``Point``)
    tail: Tail | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # a CI may be unbounded (a ratio whose denominator the data do not resolve: ``ratio_interval``)
        for name, bound in (("value", False), ("ci_low", True), ("ci_high", True)):
            number = getattr(self, name)
            if math.isnan(number) or (math.isinf(number) and not bound):
                raise ValueError(f"Estimate.{name} is {number}: a claim's value must be finite and its CI bounds "
                                 f"numbers ({self.method}, n = {self.n} {self.unit})")
        if self.tail is None and self.ci_low == self.value == self.ci_high:
            object.__setattr__(self, "tail", Point(self.value))

    def scaled(self, factor: float) -> "Estimate":
        low, high = sorted((self.ci_low * factor, self.ci_high * factor))
        tail = None if self.tail is None else Scaled(self.tail, factor)
        return Estimate(self.value * factor, low, high, self.n, self.unit, self.method, self.undefined, self.resamples,
                        tail)

    def contains_point(self) -> bool:
        """Whether the CI contains the estimate's own point (a percentile or BCa interval need not)."""
        return self.ci_low <= self.value <= self.ci_high

    def describe_ci(self) -> str:
        text = f"{self.method}, n = {self.n} {self.unit}"
        if self.undefined:
            text += f", {self.undefined} of {self.resamples} resamples undefined (dropped)"
        return text


def fixed(value: float, unit: str, why: str) -> Estimate:
    """A value with no resampling unit (a deterministic quantity of one fit): its CI is the point itself,
    and ``method`` says why; ``--seeds`` shows its variability over refits."""
    return Estimate(float(value), float(value), float(value), 1, unit, f"no CI: {why}")


def percentile_interval(draws: Tensor) -> tuple[float, float] | None:
    """The 95% percentile interval of the finite ``draws``; None if none is finite."""
    finite = draws.flatten().double()
    finite = finite[torch.isfinite(finite)]
    if finite.numel() == 0:
        return None
    tail = (1 - LEVEL) / 2
    low, high = torch.quantile(finite, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


def _percentile(values: Tensor, resamples: int, what: str) -> tuple[float, float, int, Percentile]:
    """The percentile interval of ``values``, the count of undefined ones and the interval's tail."""
    interval = percentile_interval(values)
    if interval is None:
        raise ValueError(f"{what}: the statistic is undefined in every bootstrap resample")
    return *interval, resamples - int(torch.isfinite(values.flatten()).sum()), Percentile(sorted_finite(values))


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int | None = None) -> Tensor:
    generator = torch.Generator().manual_seed(current_seed() if seed is None else seed)
    return torch.randint(0, n, (resamples, n), generator=generator)


def bootstrap(statistic: Callable[..., Tensor], *per_unit: Tensor, unit: str = "prompts",
              resamples: int = RESAMPLES) -> Estimate:
    """``statistic(*per_unit)`` and its percentile CI over units resampled with replacement.

    Every tensor of ``per_unit`` has the units on its last axis; ``statistic`` must accept a leading
    resample axis (``[resamples, n]`` inputs give ``[resamples]``)."""
    n = per_unit[0].shape[-1]
    value = float(statistic(*per_unit))
    index = resample_indices(n, resamples)
    low, high, undefined, tail = _percentile(statistic(*(item[..., index] for item in per_unit)), resamples, unit)
    if not math.isfinite(value):
        raise ValueError(f"the statistic is undefined on the data itself (n = {n} {unit})")
    return Estimate(value, low, high, n, unit, f"percentile bootstrap over {unit} ({resamples} resamples)",
                    undefined, resamples, tail)


def wilson(successes: int, n: int, *, unit: str = "samples", scale: float = 100.0) -> Estimate:
    """A share (× ``scale``) with its Wilson score interval."""
    if n <= 0:
        raise ValueError("wilson: no units")
    z = 1.959963984540054
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # contains p (rounding)
    return Estimate(scale * p, scale * low, scale * high, n, unit, "Wilson score interval",
                    tail=Score(successes, n, scale))


def folds(labels: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor]:
    """Two disjoint halves of the units, stratified by ``labels`` (seeded)."""
    generator = torch.Generator().manual_seed(current_seed() if seed is None else seed)
    first, second = [], []
    for label in labels.unique(sorted=True):
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        half = (len(members) + 1) // 2 if len(first) <= len(second) else len(members) // 2
        first.append(members[:half])
        second.append(members[half:])
    return torch.cat(first).sort().values, torch.cat(second).sort().values


LayerStatistic = Callable[[int, Tensor], Tensor]  # (layer, index [resamples, m]) -> [resamples]
PREFERENCES = ("deepest", "shallowest", "median")


@dataclass(frozen=True)
class TieRule:
    """A declared layer choice: among the layers scoring within ``tolerance`` of the best (in the
    statistic's units, on the selection data), the one ``prefer`` names by depth: "deepest", "shallowest"
    or "median" (the lower middle of an even count). Without a rule the choice is the argmax, which breaks
    exact ties toward the first layer listed."""

    tolerance: float = 0.0
    prefer: str = "median"

    def __post_init__(self) -> None:
        if self.prefer not in PREFERENCES or not self.tolerance >= 0:
            raise ValueError(f"TieRule: prefer one of {PREFERENCES} with tolerance >= 0, got {self}")

    @classmethod
    def from_protocol(cls, protocol: dict) -> "TieRule":
        """The rule a claim's protocol declares (``LAYER_CHOICE_PROTOCOL``)."""
        return cls(protocol["tie_tolerance"], protocol["tie_prefer"])

    def describe(self) -> str:
        return f"ties within {self.tolerance:g} of the best broken toward the {self.prefer} layer"


def choose_layer(by_layer: Tensor, layers: Sequence[int], tie: TieRule | None = None) -> Tensor:
    """The index (into ``layers``) of the layer chosen from ``by_layer`` ([layer, ...] scores, larger is
    better, −inf where undefined): the argmax, or ``tie``'s choice among the near-best."""
    if tie is None:
        return by_layer.argmax(0)
    best = by_layer.max(0, keepdim=True).values
    candidate = (by_layer >= best - tie.tolerance) | (best == -math.inf)
    order = torch.tensor(list(layers)).argsort(stable=True)  # shallowest first
    in_depth = candidate[order].long()
    if tie.prefer == "shallowest":
        position = in_depth.argmax(0)
    elif tie.prefer == "deepest":
        position = len(order) - 1 - in_depth.flip(0).argmax(0)
    else:  # the ((k - 1) // 2)-th candidate by depth, counting from 0
        target = (in_depth.sum(0) - 1) // 2 + 1
        position = ((in_depth.cumsum(0) == target) & (in_depth == 1)).long().argmax(0)
    return order[position]


@dataclass(frozen=True)
class CrossFit:
    """A cross-fitted value (module docstring): the point, its bootstrap draws and the layer each fold
    was scored at. Two cross-fits over the same units share their folds and resamples (both seeded), so
    ``a.minus(b)`` is a paired difference."""

    value: float
    draws: Tensor  # [resamples]
    layers: tuple[int, int]  # the layer each fold was scored at (chosen on the other fold)
    n: int
    unit: str
    tie: TieRule | None = None  # the declared tie rule of the layer choice (None: the argmax)

    def estimate(self) -> Estimate:
        rule = "" if self.tie is None else f" ({self.tie.describe()})"
        return draws_estimate(self.value, self.draws, self.n, self.unit,
                           f"2-fold cross-fitted layer choice{rule}, redone in each bootstrap resample")

    def minus(self, other: "CrossFit") -> Estimate:
        if self.n != other.n or self.draws.shape != other.draws.shape:
            raise ValueError("a paired difference needs two cross-fits over the same units")
        return draws_estimate(self.value - other.value, self.draws - other.draws, self.n, self.unit,
                           "paired difference of 2-fold cross-fitted values, layer choices redone in each "
                           "bootstrap resample")


def draws_estimate(value: float, draws: Tensor, n: int, unit: str, method: str) -> Estimate:
    """An estimate from bootstrap draws made elsewhere (undefined draws counted)."""
    low, high, undefined, tail = _percentile(draws, len(draws), unit)
    return Estimate(float(value), low, high, n, unit, f"{method} ({len(draws)} resamples of {unit})", undefined,
                    len(draws), tail)


def cross_fitted(statistic: LayerStatistic, layers: Sequence[int], labels: Tensor, *, unit: str = "pairs",
                 resamples: int = RESAMPLES, maximise: bool = True, tie: TieRule | None = None,
                 select: LayerStatistic | None = None) -> CrossFit:
    """The value at the best layer chosen on the other fold (module docstring). ``statistic(layer,
    index)`` evaluates the claim's statistic at ``layer`` on the units ``index`` (``[resamples, m]``
    long tensor) and returns ``[resamples]``; ``labels`` stratify the folds. ``tie``: a declared rule
    among near-best layers (``TieRule``; default the argmax). ``select``: a continuous criterion to
    choose the layer by, where the statistic itself ties often (an accuracy); default the statistic."""
    halves = folds(labels)
    if min(len(h) for h in halves) == 0:
        raise ValueError(f"cross_fitted: too few {unit} to split into two folds (n = {len(labels)})")
    point, draws, chosen = cross_fit_draws(statistic, layers, halves, resamples=resamples, maximise=maximise, tie=tie,
                                           select=select)
    if not math.isfinite(float(point[0])):
        raise ValueError(f"cross_fitted: the statistic is undefined at the chosen layers")
    return CrossFit(float(point[0]), draws, tuple(int(layers[int(c[0])]) for c in chosen), len(labels), unit, tie)


def cross_fit_draws(statistic: LayerStatistic, layers: Sequence[int], halves: tuple[Tensor, Tensor], *,
                    resamples: int = RESAMPLES, maximise: bool = True, tie: TieRule | None = None,
                    select: LayerStatistic | None = None) -> tuple[Tensor, Tensor, list[Tensor]]:
    """``cross_fitted``'s computation on the folds ``halves``: the point ``[1]``, the draws
    ``[resamples]`` (each fold's units resampled, seeded by the session's seed + the fold) and each
    fold's chosen layer index ``[1]``. A statistic returning trailing batch axes (``[resamples, ...]``,
    e.g. simulated data sets: ``harness.measures.calibration``) gets them on every output."""
    n, sign = sum(len(h) for h in halves), 1.0 if maximise else -1.0
    criterion = statistic if select is None else select

    def scored(index_by_fold: tuple[Tensor, Tensor]) -> tuple[Tensor, list[Tensor]]:
        value, chosen = 0.0, []
        for this, other in ((0, 1), (1, 0)):
            by_layer = torch.stack([sign * criterion(layer, index_by_fold[other]) for layer in layers]).double()
            by_layer = torch.where(torch.isfinite(by_layer), by_layer, torch.tensor(-math.inf, dtype=torch.float64))
            pick = choose_layer(by_layer, layers, tie)
            at = torch.stack([statistic(layer, index_by_fold[this]) for layer in layers]).double()
            value = value + at.gather(0, pick[None]).squeeze(0) * len(halves[this])
            chosen.append(pick)
        return value / n, chosen

    point, chosen = scored(tuple(h[None] for h in halves))
    draws, _ = scored(tuple(h[resample_indices(len(h), resamples, seed=current_seed() + fold)]
                            for fold, h in enumerate(halves)))
    return point, draws, chosen


def selected(statistic: LayerStatistic, layers: Sequence[int], n: int, *, unit: str = "pairs",
             resamples: int = RESAMPLES, value_of: Callable[[int], float] = float,
             tie: TieRule | None = None) -> Estimate:
    """The layer maximising ``statistic`` on all units (mapped by ``value_of``, e.g. to relative depth),
    its CI from redoing the choice in each bootstrap resample of the units; ``tie``: a declared rule among
    near-best layers (``TieRule``; default the argmax)."""
    def choose(index: Tensor) -> Tensor:
        by_layer = torch.stack([statistic(layer, index) for layer in layers])
        by_layer = torch.where(torch.isfinite(by_layer), by_layer, torch.tensor(-math.inf, dtype=by_layer.dtype))
        return torch.tensor([value_of(layers[int(i)]) for i in choose_layer(by_layer, layers, tie)],
                            dtype=torch.float64)

    point = float(choose(torch.arange(n)[None])[0])
    low, high, undefined, tail = _percentile(choose(resample_indices(n, resamples)), resamples, unit)
    method = f"the choice redone in each of {resamples} bootstrap resamples of {unit}"
    if tie is not None:
        method += f"; {tie.describe()}"
    return Estimate(point, low, high, n, unit, method, undefined, resamples, tail)


def binned_share_bands(unit_ids: Int[Tensor, "n"], n_units: int, bins: Int[Tensor, "n"], n_bins: int,
                       hits: Tensor, seed: int, resamples: int = RESAMPLES) -> tuple[np.ndarray, ...]:
    """Per bin of ``bins`` (each item's bin, 0..n_bins−1), the share of the items with ``hits`` (0/1 per
    item) and its 95% percentile band over the units (each item's ``unit_ids``, e.g. its sentence)
    resampled with replacement under ``seed``: a ratio of per-unit counts, so one matrix product per
    resample set. A bin empty in a resample has no share there (NaN, left out of its band; a bin empty in
    every resample has a NaN band)."""
    in_bin = torch.zeros(n_units, n_bins, dtype=torch.float64).index_put_(
        (unit_ids, bins), torch.ones(len(unit_ids), dtype=torch.float64), accumulate=True)
    with_hit = torch.zeros(n_units, n_bins, dtype=torch.float64).index_put_(
        (unit_ids, bins), hits.double(), accumulate=True)
    with seeded(seed):
        index = resample_indices(n_units, resamples)
    counts = torch.zeros(len(index), n_units, dtype=torch.float64).scatter_add_(
        1, index, torch.ones_like(index, dtype=torch.float64))
    share = with_hit.sum(0) / in_bin.sum(0)
    draws = (counts @ with_hit) / (counts @ in_bin)
    with warnings.catch_warnings():  # an empty bin has no share in any resample: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(draws.numpy(), [0.025, 0.975], axis=0)
    return share.numpy(), low, high
