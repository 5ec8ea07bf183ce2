"""A row's one-sided p-values agree with its 95% CI's verdict, for every interval procedure
(``harness.measures.tails``, ``Rule.p_values``; issue 25 item 6).

For every rule kind (above, below, abs_below; strict or not) and thresholds on, between and beyond the CI's
edges and the draws themselves: replicates ⟺ p_replicates <= 0.025 and does not replicate ⟺
p_not_replicates <= 0.025, by the inversion alone wherever the threshold is not within float rounding of a
CI edge (there ``Rule.p_values`` lets the CI decide, and the test checks that it always agrees).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.measures.intervals import bca, estimate_from, resampled, studentized
from harness.measures.statistics import Estimate, bootstrap, draws_estimate, fixed, selected, wilson
from harness.measures.tails import BCa, Percentile, Point, Score, Studentized
from harness.verdicts.declaration import ALPHA, Rule, ThresholdKind, Verdict

MEAN = lambda x: x.mean(-1)  # noqa: E731


def rules(edges: list[float]) -> list[Rule]:
    """Every rule kind at every edge, and abs_below bands between pairs of edges."""
    out = [Rule(t, way, ThresholdKind.GENERIC, strict=strict) for t in edges for way in ("above", "below")
           for strict in (False, True)]
    ordered = sorted(set(edges))
    for a, b in zip(ordered, ordered[1:] + ordered[:1]):
        low, high = min(a, b), max(a, b)
        for strict in (False, True):
            out.append(Rule((high - low) / 2, "abs_below", ThresholdKind.GENERIC, strict=strict, centre=(low + high) / 2))
    return out


def _edges_of(rule: Rule) -> list[float]:
    if rule.passes_when == "abs_below":
        return [rule.centre - rule.threshold, rule.centre + rule.threshold]
    return [rule.threshold]


def assert_agreement(estimate: Estimate, thresholds: list[float], exact: bool = False) -> int:
    """Checks every rule at ``thresholds``; returns how many decisions the inversion alone was checked on.
    ``exact``: no tolerance at the CI's edges (ties: the thresholds are draw values)."""
    low, high = estimate.ci_low, estimate.ci_high
    checked = 0
    for rule in rules([float(t) for t in thresholds if math.isfinite(t)]):
        verdict = rule.decide(low, high)
        p_pass, p_fail = rule.p_values(estimate.tail, low, high)
        assert 0 <= p_pass <= 1 and 0 <= p_fail <= 1
        assert (p_pass <= ALPHA) == (verdict is Verdict.REPLICATES), (rule, low, high, p_pass)
        assert (p_fail <= ALPHA) == (verdict is Verdict.DOES_NOT_REPLICATE), (rule, low, high, p_fail)
        near = any(abs(edge - bound) <= 1e-9 * (1 + abs(bound)) for edge in _edges_of(rule) for bound in (low, high))
        if (exact and rule.passes_when != "abs_below") or not near:  # |x − c| <= w rounds at the band's edges
            raw_pass, raw_fail = rule.inverted(estimate.tail)
            assert (raw_pass <= ALPHA) == (verdict is Verdict.REPLICATES), (rule, low, high, raw_pass)
            assert (raw_fail <= ALPHA) == (verdict is Verdict.DOES_NOT_REPLICATE), (rule, low, high, raw_fail)
            checked += 1
    return checked


def thresholds_around(estimate: Estimate, extra: list[float] = ()) -> list[float]:
    low, high, width = estimate.ci_low, estimate.ci_high, max(estimate.ci_high - estimate.ci_low, 1e-3)
    return [low, high, estimate.value, (low + high) / 2, low - width, high + width, low - 1e-6 * width,
            low + 1e-6 * width, high - 1e-6 * width, high + 1e-6 * width, *extra]


def data(seed: int, n: int, shape: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if shape == "normal":
        return torch.randn(n, dtype=torch.float64, generator=generator)
    if shape == "skewed":
        return torch.empty(n, dtype=torch.float64).exponential_(generator=generator)
    return torch.randint(0, 3, (n,), generator=generator).double()  # discrete: tied draws


SHAPES = st.sampled_from(["normal", "skewed", "discrete"])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(2, 30), shape=SHAPES)
def test_percentile_bootstrap_p_values_agree_with_its_ci(seed, n, shape):
    estimate = bootstrap(MEAN, data(seed, n, shape), resamples=400)
    assert isinstance(estimate.tail, (Percentile, Point))
    draws = estimate.tail.draws.tolist() if isinstance(estimate.tail, Percentile) else []
    assert_agreement(estimate, thresholds_around(estimate, draws[::37]))
    if shape == "discrete":
        assert_agreement(estimate, sorted(set(draws))[:12], exact=True)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(3, 30), shape=SHAPES)
def test_bca_p_values_agree_with_its_ci(seed, n, shape):
    estimate = bca(MEAN, data(seed, n, shape), resamples=400)
    draws = estimate.tail.draws.tolist() if isinstance(estimate.tail, BCa) else []
    assert_agreement(estimate, thresholds_around(estimate, draws[::37]))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(3, 25), shape=SHAPES)
def test_studentized_p_values_agree_with_its_ci(seed, n, shape):
    estimate = studentized(MEAN, data(seed, n, shape), resamples=400)
    assert isinstance(estimate.tail, (Studentized, Point))
    assert_agreement(estimate, thresholds_around(estimate))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 1000), share=st.floats(0, 1), threshold=st.floats(-10, 110), scale=st.sampled_from([1.0, 100.0]))
def test_wilson_p_values_are_the_score_tests_and_agree_with_its_ci(n, share, threshold, scale):
    estimate = wilson(round(share * n), n, scale=scale)
    assert isinstance(estimate.tail, Score)
    assert_agreement(estimate, thresholds_around(estimate, [threshold * scale / 100, 0.0, scale]))


def test_wilson_p_value_is_the_one_sided_score_test():
    estimate = wilson(30, 50)  # p̂ = 0.6; H0: π <= 0.5: z = 0.1 / √(0.25/50) = 1.414
    z = 0.1 / math.sqrt(0.25 / 50)
    assert estimate.tail.p_at_least(50.0) == pytest.approx(1 - 0.5 * math.erfc(-z / math.sqrt(2)))
    assert estimate.tail.p_at_least(50.0) + estimate.tail.p_at_most(50.0) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), undefined=st.integers(0, 300), levels=st.integers(1, 6))
def test_draws_with_undefined_and_tied_values_agree(seed, undefined, levels):
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, levels, (1000,), generator=generator).double() / levels
    draws[:undefined] = math.nan
    estimate = draws_estimate(0.5, draws, 24, "pairs", "test draws")
    assert estimate.undefined == undefined
    values = sorted(set(draws[torch.isfinite(draws)].tolist()))
    assert_agreement(estimate, values + [v + 1e-3 for v in values] + [v - 1e-3 for v in values], exact=True)


def test_selected_layer_depths_tie_at_the_threshold():
    # P4: the chosen layer's relative depth, strictly inside (0.15, 0.85); a plateau makes draws tie
    values = torch.stack([torch.zeros(20), torch.ones(20) + 0.3 * torch.randn(20, generator=torch.Generator().manual_seed(0)),
                          torch.ones(20) + 0.3 * torch.randn(20, generator=torch.Generator().manual_seed(1))])
    estimate = selected(lambda layer, index: values[layer][index].mean(-1), [0, 1, 2], 20, value_of=lambda l: 0.25 * l)
    rule = Rule(0.125, "abs_below", ThresholdKind.GENERIC, strict=True, centre=0.375)  # strictly in (0.25, 0.5)
    verdict = rule.decide(estimate.ci_low, estimate.ci_high)
    p_pass, p_fail = rule.inverted(estimate.tail)
    assert (p_pass <= ALPHA) == (verdict is Verdict.REPLICATES) and (p_fail <= ALPHA) == (verdict is Verdict.DOES_NOT_REPLICATE)
    assert_agreement(estimate, [0.0, 0.25, 0.5, 0.75], exact=True)


def test_point_estimates_and_hand_made_ones():
    point = fixed(0.7, "direction pairs", "one fit")
    assert isinstance(point.tail, Point)
    assert Rule(0.7, "above", ThresholdKind.GENERIC).p_values(point.tail, 0.7, 0.7) == (0.0, 1.0)
    assert Rule(0.7, "above", ThresholdKind.GENERIC, strict=True).p_values(point.tail, 0.7, 0.7) == (1.0, 0.0)
    assert Estimate(0.0, 0.0, 0.0, 5, "samples", "constant").tail == Point(0.0)
    assert Estimate(0.5, 0.0, 1.0, 5, "samples", "by hand").tail is None  # no p-values: a CI of unknown origin


@pytest.mark.parametrize("factor", [3.0, -2.0, 0.0])
def test_scaled_estimates_keep_agreeing(factor):
    estimate = bootstrap(MEAN, data(3, 20, "skewed"), resamples=300).scaled(factor)
    assert_agreement(estimate, thresholds_around(estimate))


def test_every_procedure_of_estimate_from_carries_its_tail():
    values = data(5, 15, "skewed")
    draws = resampled(MEAN, values, resamples=200, method="studentized")
    kinds = {method: type(draws.estimate(method, "prompts", "test").tail) for method in ("percentile", "bca", "studentized")}
    assert kinds == {"percentile": Percentile, "bca": BCa, "studentized": Studentized}
    for method in kinds:
        estimate = estimate_from(method, float(draws.value), draws.draws, 15, "prompts", "test",
                                 jackknife=draws.jackknife, draw_se=draws.draw_se)
        assert_agreement(estimate, thresholds_around(estimate))


def test_bca_level_map_inverts():
    family = BCa(torch.linspace(0, 1, 101, dtype=torch.float64), z0=0.3, a=0.08)
    for u in (1e-6, 0.01, 0.025, 0.3, 0.9, 0.975):
        assert family.alpha_for(family.level(u)) == pytest.approx(u, rel=1e-9, abs=1e-12)
    negative = BCa(family.draws, z0=-0.2, a=-0.1)
    for u in (0.001, 0.025, 0.5, 0.975):
        assert negative.alpha_for(negative.level(u)) == pytest.approx(u, rel=1e-9, abs=1e-12)
