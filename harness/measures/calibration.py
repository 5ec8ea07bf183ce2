"""The coverage of the suite's interval procedures, by simulation (issue "Intervals that mean what they say").

Each scenario draws data with a known true value at the suite's real sample sizes and shapes, makes the
95% CI of every simulated data set with the procedure under test and reports:

- coverage: the share of CIs that contain the truth (nominal 95%);
- false "replicates" (above): with the truth exactly on a threshold, the share of CIs lying wholly above
  it, i.e. how often an "above" rule passes a claim that is not true (nominal 2.5%);
- below: the mirror rate for "below" rules (nominal 2.5%).

The CIs are the library's: ``intervals.resampled`` (the resamples and jackknives behind ``bootstrap``,
``bca``, ``studentized``, ``cluster_bootstrap`` and ``paired_difference``) with ``Resampled.estimate``
(their intervals), ``statistics.cross_fit_draws`` (``cross_fitted``'s computation) with
``CrossFit.estimate``, and ``wilson`` (exactly: a sum over the binomial distribution). To run
thousands of data sets at once, each statistic takes the drawn unit indices and returns one value per
data set (a trailing axis), through draw counts and one matrix product (as ``correlation.by_sentence``
does); the data sets of a chunk share their resample indices, chunks do not.

Rows with ``used`` are the procedures the suite is to decide claims with (tests/test_calibration.py
asserts coverage >= 93% and false "replicates" <= 5% for them); the others are recorded as the reason
they are replaced. ``python -m harness.measures.calibration`` prints the table in GitHub Markdown
(docs/calibration.md).
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Iterable, Iterator

import torch
from torch import Tensor

from harness.measures.intervals import METHODS, resampled
from harness.measures.statistics import CrossFit, Estimate, TieRule, cross_fit_draws, folds, seeded, wilson

SIMULATIONS = 2000
RESAMPLES = 1000
CROSS_FIT_SIMULATIONS = 1000  # a cross-fit redoes the choice over every layer in every resample; they cover ~97-99%
CHUNK = 100  # data sets per set of resample indices


@dataclass(frozen=True)
class Row:
    procedure: str
    setting: str  # the data: n, shape, truth
    claims: str  # the claims the scenario stands for
    simulations: int  # 0: exact (a sum over the binomial distribution, no simulation)
    resamples: int
    coverage: float
    above: float  # false "replicates" of a "whole CI above the truth" rule
    below: float  # of a "whole CI below the truth" rule
    used: bool  # a procedure the suite is to use (its calibration is asserted)

    def cells(self) -> list:
        return [self.procedure, self.setting, self.claims, self.simulations or "exact", self.resamples or "—",
                f"{self.coverage:.1%}", f"{self.above:.1%}", f"{self.below:.1%}", "yes" if self.used else "no (record)"]


HEADERS = ["procedure", "data (n, shape, truth)", "claims", "simulations", "resamples", "coverage",
           "false 'replicates' (above)", "false (below)", "used"]


def _row(procedure: str, setting: str, claims: str, truth: float, estimates: list[Estimate], resamples: int,
         used: bool) -> Row:
    low = torch.tensor([e.ci_low for e in estimates], dtype=torch.float64)
    high = torch.tensor([e.ci_high for e in estimates], dtype=torch.float64)
    above, below = float((low > truth).double().mean()), float((high < truth).double().mean())
    return Row(procedure, setting, claims, len(estimates), resamples, 1 - above - below, above, below, used)


def _generator(seed: int, scenario: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 7919 + scenario)


def _chunks(simulations: int, seed: int) -> Iterator[slice]:
    """Slices of the simulated data sets, each under its own bootstrap seed (``seeded``)."""
    for start in range(0, simulations, CHUNK):
        with seeded(seed * 1_000_003 + start):
            yield slice(start, min(start + CHUNK, simulations))


def weighted_means(index: Tensor, columns: Tensor) -> Tensor:
    """The means over the units drawn in each row of ``index`` (``[..., m]``, with repeats) of every
    column of ``columns`` (``[n, S]``): ``[..., S]``."""
    flat = index.reshape(-1, index.shape[-1])
    counts = torch.zeros(len(flat), len(columns), dtype=torch.float64).scatter_add_(
        1, flat, torch.ones_like(flat, dtype=torch.float64))
    return (counts @ columns / index.shape[-1]).reshape(*index.shape[:-1], columns.shape[-1])


def bootstrap_rows(statistic: Callable[[Tensor, slice], Tensor], n_units: int, simulations: int, procedures, *,
                   truth: float, setting: str, claims: str, resamples: int, seed: int,
                   clusters: Tensor | None = None, unit: str = "units") -> list[Row]:
    """One row per ``(name, method, used)`` of ``procedures`` (``intervals.METHODS``):
    ``statistic(index, part)`` gives, for the drawn unit indices ``[..., m]``, the statistic of each data
    set of the slice ``part`` (``[..., S]``). The CIs of one data set share its resamples, as ``bootstrap``,
    ``bca`` and ``studentized`` under one seed do."""
    estimates: dict[str, list[Estimate]] = {name: [] for name, _, _ in procedures}
    needs = max((method for _, method, _ in procedures), key=METHODS.index)
    for part in _chunks(simulations, seed):
        draws = resampled(lambda index: statistic(index, part), torch.arange(n_units), resamples=resamples,
                          clusters=clusters, method=needs)
        for s in range(draws.value.shape[-1]):
            for name, method, _ in procedures:
                estimates[name].append(draws.estimate(method, unit, name, at=(s,)))
    return [_row(name, setting, claims, truth, estimates[name], resamples, used) for name, _, used in procedures]


PROCEDURES = (("percentile bootstrap", "percentile", False), ("BCa bootstrap", "bca", False),
              ("studentized bootstrap", "studentized", True))


def skewed_mean(simulations: int, resamples: int, seed: int) -> list[Row]:
    """The mean of 27 exponential values (truth 1): N1's paired mean over its 27 sentence pairs, skewed."""
    data = torch.empty(27, simulations, dtype=torch.float64).exponential_(generator=_generator(seed, 1))
    return bootstrap_rows(lambda index, part: weighted_means(index, data[:, part]), 27, simulations,
                          PROCEDURES, truth=1.0, setting="n = 27, mean of exponential (skewed) values, truth 1",
                          claims="N1 (a mean over 27 pairs)", resamples=resamples, seed=seed)


def patching_runs(n: int, simulations: int, recovered: float, generator: torch.Generator,
                  methods: int = 1) -> tuple[Tensor, ...]:
    """``(sign, clean, corrupted, *patched)``: per pair (rows), the clean label's sign (±1, balanced) and,
    per data set (columns), sentiment scores of the clean, corrupted and ``methods`` patched runs (§5.1),
    each run with its own bias; pair i's patched LD recovers
    r_i of its clean − corrupted gap, r_i = ``recovered``/100 + a part shared by the methods + a part of
    each, independent of the (lognormal) gap, so that the true % LD recovered is ``recovered``."""
    sign = (torch.arange(n) % 2).double()[:, None] * 2 - 1
    normal = lambda *shape: torch.randn(*shape, dtype=torch.float64, generator=generator)
    corrupted = -1.0 + 0.5 * normal(n, simulations)
    gap = 3.0 * (0.6 * normal(n, simulations)).exp()
    shared = 0.5 * normal(n, simulations)
    patched = [corrupted + (recovered / 100 + shared + 0.3 * normal(n, simulations)) * gap for _ in range(methods)]
    score = lambda ld: ld * sign + 0.5 * normal(1, simulations)
    return sign, score(corrupted + gap), score(corrupted), *(score(ld) for ld in patched)


def ld_recovered_of_means(index: Tensor, sign: Tensor, clean: Tensor, corrupted: Tensor,
                          *patched: Tensor) -> list[Tensor]:
    """``metrics.logit_diff_recovered`` of each ``patched`` run on the units drawn in ``index``, for every
    data set (columns), in one matrix product: a run's mean centred LD is mean(s · sign) − mean(s) ·
    mean(sign) (tests/test_calibration.py checks the identity against the metric)."""
    runs = (clean, corrupted, *patched)
    means = weighted_means(index, torch.cat([sign, *(score * sign for score in runs), *runs], dim=1))
    signs, (signed, plain) = means[..., :1], means[..., 1:].chunk(2, dim=-1)
    centred = [ld - score * signs for ld, score in zip(signed.chunk(len(runs), dim=-1), plain.chunk(len(runs), dim=-1))]
    return [(run - centred[1]) / (centred[0] - centred[1]) * 100 for run in centred[2:]]


def ld_recovered(simulations: int, resamples: int, seed: int) -> list[Row]:
    """% LD recovered (a ratio of means, §5.1) over 24 pairs (P3's SST pairs, truth 20 = its threshold)
    and 136 pairs (P1's ToyMovieReview test pairs on the paper's models, truth 90 = its threshold)."""
    rows = []
    for n, truth, claims, procedures in ((24, 20.0, "P3", PROCEDURES), (136, 90.0, "P1", PROCEDURES[:2])):
        sign, clean, corrupted, patched = patching_runs(n, simulations, truth, _generator(seed, 2 + n))
        statistic = lambda index, part: ld_recovered_of_means(index, sign, clean[:, part], corrupted[:, part],
                                                              patched[:, part])[0]
        rows += bootstrap_rows(statistic, n, simulations, procedures, truth=truth, claims=claims,
                               setting=f"n = {n} pairs, % LD recovered (ratio of means), truth {truth:g}",
                               resamples=resamples, seed=seed, unit="pairs")
    return rows


def paired(simulations: int, resamples: int, seed: int) -> list[Row]:
    """P5: two methods' % LD recovered on the same 24 pairs (shared clean and corrupted runs, correlated
    recoveries), the true difference 0 = the threshold; both sides on the same resampled pairs
    (``intervals.paired_difference``)."""
    sign, clean, corrupted, first, second = patching_runs(24, simulations, 30.0, _generator(seed, 3), methods=2)
    def statistic(index: Tensor, part: slice) -> Tensor:
        a, b = ld_recovered_of_means(index, sign, clean[:, part], corrupted[:, part], first[:, part], second[:, part])
        return a - b
    return bootstrap_rows(statistic, 24, simulations, [(f"paired difference, {name.split()[0]}", method, used)
                                                       for name, method, used in PROCEDURES],
                          truth=0.0, setting="n = 24 pairs, difference of two % LD recovered, truth 0", claims="P5",
                          resamples=resamples, seed=seed, unit="pairs")


def clustered(simulations: int, resamples: int, seed: int) -> list[Row]:
    """A mean over 30 clusters × 40 tokens (word types and their occurrences, R1): token value = cluster
    effect + token noise, both N(0, 1) (intra-cluster correlation 0.5), truth 0. The studentized cluster
    bootstrap runs on the 30 cluster means: with equal clusters it is the same computation, on the same
    resamples (tests/test_statistics.py), and its per-resample jackknife over tokens would cost 30 × 1,200
    counts per resample."""
    generator = _generator(seed, 4)
    values = (torch.randn(30, 1, simulations, dtype=torch.float64, generator=generator)
              + torch.randn(30, 40, simulations, dtype=torch.float64, generator=generator))
    tokens, means = values.flatten(0, 1), values.mean(1)
    setting = "30 clusters × 40 tokens, mean, ICC 0.5, truth 0"
    common = dict(truth=0.0, setting=setting, resamples=resamples, seed=seed)
    return [*bootstrap_rows(lambda index, part: weighted_means(index, tokens[:, part]), 1200, simulations,
                            (("percentile bootstrap over tokens", "percentile", False),),
                            claims="R1, R1.auroc (as tokens)", **common),
            *bootstrap_rows(lambda index, part: weighted_means(index, tokens[:, part]), 1200, simulations,
                            (("cluster bootstrap, percentile", "percentile", True),
                             ("cluster bootstrap, BCa", "bca", True)),
                            claims="R1, R1.auroc", clusters=torch.arange(30).repeat_interleave(40), unit="word types",
                            **common),
            *bootstrap_rows(lambda index, part: weighted_means(index, means[:, part]), 30, simulations,
                            (("cluster bootstrap, studentized", "studentized", True),), claims="R1, R1.auroc",
                            unit="word types", **common)]


def wilson_exact(n: int, p: float, claims: str) -> Row:
    """The Wilson interval's exact coverage and false "replicates" at ``p`` (a sum over the binomial)."""
    log_pmf = lambda k: (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                         + k * math.log(p) + (n - k) * math.log1p(-p))
    truth, above, below = 100 * p, 0.0, 0.0
    for k in range(n + 1):
        estimate = wilson(k, n)
        above += math.exp(log_pmf(k)) * (estimate.ci_low > truth)
        below += math.exp(log_pmf(k)) * (estimate.ci_high < truth)
    return Row("Wilson score interval", f"n = {n} samples, share {p:g}, truth {truth:g}%", claims, 0, 0,
               1 - above - below, above, below, True)


def layer_values(n: int, layers: int, plateau: range, peak: float, step: float, simulations: int,
                 generator: torch.Generator, binary: bool) -> Tensor:
    """``[layers, n, simulations]`` per-unit values whose true mean is ``peak`` on the ``plateau`` layers
    (tied) and ``step`` lower per layer away from it; a unit effect shared by every layer (correlation
    0.49). ``binary``: 0/1 correctness (a thresholded latent, accuracy ``peak`` on the plateau)."""
    distance = torch.tensor([max(plateau.start - l, l - plateau.stop + 1, 0) for l in range(layers)],
                            dtype=torch.float64)
    level = (peak - step * distance)[:, None, None]
    latent = (0.7 * torch.randn(1, n, simulations, dtype=torch.float64, generator=generator)
              + math.sqrt(1 - 0.49) * torch.randn(layers, n, simulations, dtype=torch.float64, generator=generator))
    if binary:
        cut = torch.tensor([NormalDist().inv_cdf(float(p)) for p in level.flatten()], dtype=torch.float64)
        return (latent < cut[:, None, None]).double()
    return level + latent


def cross_fits(simulations: int, resamples: int, seed: int) -> list[Row]:
    """2-fold cross-fitted layer choice (D2, P1–P3, K3): the value at the layer chosen on the other fold,
    a plateau of tied best layers whose common value is the truth and the threshold. D2: accuracy of 27
    test prompts at 30 layers (plateau 0.9 = D2's threshold; exact ties); P3: a mean over 24 pairs at 12
    layers."""
    rows = []
    for scenario, (n, layers, plateau, peak, step, binary, claims, tie) in enumerate((
            (27, 30, range(12, 18), 0.9, 0.05, True, "D2", TieRule(0.0, "median")),
            (24, 12, range(5, 9), 0.0, 0.25, False, "P1–P3, K3", TieRule(0.1, "median")))):
        values = layer_values(n, layers, plateau, peak, step, simulations, _generator(seed, 5 + scenario), binary)
        labels = torch.arange(n) % 2
        what = "accuracy (0/1 per unit)" if binary else "mean (unit effect shared by layers)"
        setting = f"n = {n}, {layers} layers, {what}, {len(plateau)} tied best layers, truth {peak:g}"
        for name, rule in (("cross-fitted, argmax", None), (f"cross-fitted, {tie.describe()}", tie)):
            estimates = []
            for part in _chunks(simulations, seed):
                point, draws, _ = cross_fit_draws(lambda layer, index: weighted_means(index, values[layer, :, part]),
                                                  range(layers), folds(labels), resamples=resamples, tie=rule)
                estimates += [CrossFit(float(point[0, s]), draws[:, s], (0, 0), n, "units", rule).estimate()
                              for s in range(point.shape[1])]
            rows.append(_row(name, setting, claims, peak, estimates, resamples, rule is not None))
    return rows


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread inside (restored after): the simulations' many small products run faster
    so, beside other work, and their sums do not depend on the machine's thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=4)
def calibration_table(simulations: int = SIMULATIONS, resamples: int = RESAMPLES, seed: int = 0,
                      cross_fit_simulations: int = CROSS_FIT_SIMULATIONS) -> tuple[Row, ...]:
    """Every scenario's rows (module docstring); deterministic for given arguments."""
    with one_thread():
        return tuple([*skewed_mean(simulations, resamples, seed), *ld_recovered(simulations, resamples, seed),
                      *paired(simulations, resamples, seed), *clustered(simulations, resamples, seed),
                      wilson_exact(300, 0.7, "G2's precondition (P0's rule, 300 items)"),
                      wilson_exact(872, 0.7, "P0 (872 sentences)"), wilson_exact(50, 0.5, "S1.strongest (50 samples)"),
                      *cross_fits(cross_fit_simulations, resamples, seed)])


def markdown(rows: Iterable[Row]) -> str:
    from tabulate import tabulate
    return tabulate([row.cells() for row in rows], headers=HEADERS, tablefmt="github")


if __name__ == "__main__":
    print(markdown(calibration_table()))
