"""The coverage of the suite's interval procedures, by simulation (issue "Intervals that mean what they say").

Each scenario draws data with a known true value at the suite's real sample sizes and shapes, makes the
95% CI of every simulated data set with the procedure under test (the library's own functions, seeded per
simulation) and reports:

- coverage: the share of CIs that contain the truth (nominal 95%);
- false "replicates" (above): with the truth exactly on a threshold, the share of CIs lying wholly above
  it, i.e. how often an "above" rule passes a claim that is not true (nominal 2.5%);
- below: the mirror rate for "below" rules (nominal 2.5%).

Rows with ``used`` are the procedures the suite is to decide claims with (tests/test_calibration.py
asserts coverage >= 93% and false "replicates" <= 5% for them); the others are recorded as the reason
they are replaced. ``python -m harness.measures.calibration`` prints the table in GitHub Markdown
(docs/calibration.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Iterable

import torch
from torch import Tensor

from harness.measures.intervals import bca, cluster_bootstrap, held_out_share, paired_difference
from harness.measures.metrics import logit_diff_recovered
from harness.measures.statistics import Estimate, TieRule, bootstrap, cross_fitted, seeded, wilson

SIMULATIONS = 2000
RESAMPLES = 1000
CROSS_FIT_SIMULATIONS = 1000  # a cross-fit scores every layer twice per fold: fewer simulations, same resamples


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


def _simulate(make: Callable[[int], object], simulations: int, seed: int) -> list:
    """``make(s)`` for every simulation s, its bootstrap seeded by (seed, s)."""
    estimates: list = []
    for s in range(simulations):
        with seeded(seed * 1_000_003 + s):
            estimates.append(make(s))
    return estimates


def _generator(seed: int, scenario: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 7919 + scenario)


def mean(values: Tensor) -> Tensor:
    return values.mean(-1)


def skewed_mean(simulations: int, resamples: int, seed: int) -> list[Row]:
    """The mean of 27 exponential values (truth 1): N1's paired mean over 27 sentence pairs, skewed."""
    data = torch.empty(simulations, 27, dtype=torch.float64).exponential_(generator=_generator(seed, 1))
    setting = "n = 27 units, exponential (skewed), mean 1"
    return [_row(name, setting, "N1 (and every mean over prompts)", 1.0,
                 _simulate(lambda s: procedure(mean, data[s], unit="pairs", resamples=resamples), simulations, seed),
                 resamples, used)
            for name, procedure, used in (("percentile bootstrap", bootstrap, False), ("BCa bootstrap", bca, True))]


def patching_runs(n: int, simulations: int, recovered: Tensor | float, generator: torch.Generator,
                  methods: int = 1) -> tuple[Tensor, ...]:
    """Per pair, sentiment scores of the clean, corrupted and ``methods`` patched runs (§5.1), clean labels
    balanced, each run with its own bias; pair i's patched LD recovers ``r_i`` of its clean − corrupted
    gap, r_i = ``recovered``/100 + a shared and a per-method part, independent of the (lognormal) gap, so
    the true % LD recovered is ``recovered``."""
    labels = torch.arange(n) % 2
    sign = labels.double() * 2 - 1
    normal = lambda *shape: torch.randn(*shape, dtype=torch.float64, generator=generator)
    corrupted = -1.0 + 0.5 * normal(simulations, n)
    gap = 3.0 * (0.6 * normal(simulations, n)).exp()
    shared = 0.5 * normal(simulations, n)
    truth = torch.as_tensor(recovered, dtype=torch.float64).reshape(-1, 1, 1) / 100
    patched_ld = corrupted + (truth + shared + 0.3 * normal(methods, simulations, n)) * gap
    score = lambda ld: ld * sign + 0.5 * normal(simulations, 1)
    return labels, score(corrupted + gap), score(corrupted), *(score(ld) for ld in patched_ld)


def ld_recovered(simulations: int, resamples: int, seed: int) -> list[Row]:
    """% LD recovered (a ratio of means, §5.1) over 24 pairs (P3's SST pairs, truth 20 = its threshold)
    and 136 pairs (P1's ToyMovieReview test pairs on the paper's models, truth 90 = its threshold)."""
    rows = []
    for n, truth, claims in ((24, 20.0, "P3"), (136, 90.0, "P1")):
        labels, clean, corrupted, patched = patching_runs(n, simulations, truth, _generator(seed, 2 + n))
        setting = f"n = {n} pairs, % LD recovered (ratio of means), truth {truth:g}"
        for name, procedure, used in (("percentile bootstrap", bootstrap, False), ("BCa bootstrap", bca, True)):
            make = lambda s: procedure(logit_diff_recovered, patched[s], clean[s], corrupted[s], labels,
                                       unit="pairs", resamples=resamples)
            rows.append(_row(name, setting, claims, truth, _simulate(make, simulations, seed), resamples, used))
    return rows


def paired(simulations: int, resamples: int, seed: int) -> list[Row]:
    """P5: two methods' % LD recovered on the same 24 pairs (shared clean and corrupted runs, correlated
    recoveries), the true difference 0 = the threshold."""
    labels, clean, corrupted, first, second = patching_runs(24, simulations, 30.0, _generator(seed, 3), methods=2)
    setting = "n = 24 pairs, difference of two % LD recovered, truth 0"
    rows = []
    for name, method, used in (("paired difference, percentile", "percentile", False),
                               ("paired difference, BCa", "bca", True)):
        make = lambda s: paired_difference(logit_diff_recovered, (first[s], clean[s], corrupted[s], labels),
                                           (second[s], clean[s], corrupted[s], labels), resamples=resamples,
                                           method=method)
        rows.append(_row(name, setting, "P5", 0.0, _simulate(make, simulations, seed), resamples, used))
    return rows


def clustered(simulations: int, resamples: int, seed: int) -> list[Row]:
    """A mean over 30 clusters × 40 tokens (word types and their occurrences, R1): token value = cluster
    effect + token noise, both N(0, 1) (intra-cluster correlation 0.5), truth 0."""
    generator = _generator(seed, 4)
    effect = torch.randn(simulations, 30, 1, dtype=torch.float64, generator=generator)
    values = (effect + torch.randn(simulations, 30, 40, dtype=torch.float64, generator=generator)).flatten(1)
    clusters = torch.arange(30).repeat_interleave(40)
    setting = "30 clusters × 40 tokens, mean, cluster ICC 0.5, truth 0"
    rows = [_row("percentile bootstrap over tokens", setting, "R1, R1.auroc (as tokens)", 0.0,
                 _simulate(lambda s: bootstrap(mean, values[s], unit="tokens", resamples=resamples), simulations,
                           seed), resamples, False)]
    for name, method in (("cluster bootstrap, percentile", "percentile"), ("cluster bootstrap, BCa", "bca")):
        make = lambda s: cluster_bootstrap(mean, values[s], clusters=clusters, unit="word types",
                                           resamples=resamples, method=method)
        rows.append(_row(name, setting, "R1, R1.auroc", 0.0, _simulate(make, simulations, seed), resamples, True))
    return rows


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
    """``[simulations, layers, n]`` per-unit values whose true mean is ``peak`` on the ``plateau`` layers
    (tied) and ``step`` lower per layer away from it; a unit effect shared by every layer (correlation 0.7).
    ``binary``: 0/1 correctness (a thresholded latent, accuracy ``peak`` on the plateau)."""
    distance = torch.tensor([max(plateau.start - l, l - plateau.stop + 1, 0) for l in range(layers)], dtype=torch.float64)
    level = peak - step * distance
    latent = (0.7 * torch.randn(simulations, 1, n, dtype=torch.float64, generator=generator)
              + math.sqrt(1 - 0.49) * torch.randn(simulations, layers, n, dtype=torch.float64, generator=generator))
    if binary:
        cut = torch.tensor([NormalDist().inv_cdf(float(p)) for p in level], dtype=torch.float64)
        return (latent < cut[:, None]).double()
    return level[:, None] + latent


def cross_fits(simulations: int, resamples: int, seed: int) -> list[Row]:
    """2-fold cross-fitted layer choice (D2, P1–P3, K3): the value at the layer chosen on the other fold,
    a plateau of tied best layers whose common value is the truth and the threshold. D2: accuracy of 27
    test prompts at 30 layers (plateau 0.9 = D2's threshold; its CI also as ``held_out_share``'s Wilson
    interval); P3: a mean over 24 pairs at 12 layers."""
    rows = []
    for scenario, (n, layers, plateau, peak, step, binary, claims, tie) in enumerate((
            (27, 30, range(12, 18), 0.9, 0.05, True, "D2", TieRule(0.0, "median")),
            (24, 12, range(5, 9), 0.0, 0.25, False, "P1–P3, K3", TieRule(0.1, "median")))):
        values = layer_values(n, layers, plateau, peak, step, simulations, _generator(seed, 5 + scenario), binary)
        labels = torch.arange(n) % 2
        what = "accuracy (0/1 per unit)" if binary else "mean (unit effect shared by layers)"
        setting = f"n = {n}, {layers} layers, {what}, {len(plateau)} tied best layers, truth {peak:g}"
        for name, rule in (("cross-fitted, argmax", None), (f"cross-fitted, {tie.describe()}", tie)):
            fits = _simulate(lambda s: cross_fitted(lambda layer, index: values[s, layer][index].mean(-1),
                                                    range(layers), labels, resamples=resamples, tie=rule),
                             simulations, seed)
            rows.append(_row(f"{name}, percentile", setting, claims, peak, [fit.estimate() for fit in fits],
                             resamples, rule is not None and not binary))
            if binary:
                rows.append(_row(f"{name}, Wilson of the held-out count", setting, claims, peak,
                                 [held_out_share(fit) for fit in fits], 0, rule is not None))
    return rows


@functools.lru_cache(maxsize=4)
def calibration_table(simulations: int = SIMULATIONS, resamples: int = RESAMPLES, seed: int = 0,
                      cross_fit_simulations: int = CROSS_FIT_SIMULATIONS) -> tuple[Row, ...]:
    """Every scenario's rows (module docstring); deterministic for given arguments."""
    rows: list[Row] = []
    rows += skewed_mean(simulations, resamples, seed)
    rows += ld_recovered(simulations, resamples, seed)
    rows += paired(simulations, resamples, seed)
    rows += clustered(simulations, resamples, seed)
    rows += [wilson_exact(300, 0.7, "G2's precondition (P0's rule, 300 items)"), wilson_exact(872, 0.7, "P0 (872 sentences, 70%)"),
             wilson_exact(50, 0.5, "S1.strongest (50 samples, 50%)")]
    rows += cross_fits(cross_fit_simulations, resamples, seed)
    return tuple(rows)


def markdown(rows: Iterable[Row]) -> str:
    from tabulate import tabulate
    return tabulate([row.cells() for row in rows], headers=HEADERS, tablefmt="github")


if __name__ == "__main__":
    print(markdown(calibration_table()))
