"""§5.3 and §6.1 (A1–A5): ablating the sentiment direction on zero-shot SST reviews, and the comma effect.

Zero-shot set (§2.3, ``harness.experiments.sst_ablations``): prompt ``{TEXT} Review Sentiment:`` (answers
` Positive`/` Negative`) over sentences of the held-out split (dev) holding a comma, classified correctly
(uncentred LD > 0) with the answer in the top 10, classes balanced by a subsample seeded with
``suite_seed`` (the larger class to the smaller's size, at most the protocol's cap per class). Where that
leaves < 10 per class the top-10 filter is dropped: a recorded DEVIATION (every row's details and the
report say so). Gate (the protocol's ``gate``, ``ablation_gate``), checked on the very prompts ablated:
each class's mean clean LD on the set is at least the protocol's ``min_class_logit_diff`` (1 logit),
since Δ% LD divides by it. The ablations always run: where the gate fails every row still shows its
value and CI, with the verdict "not applicable" and the margins named (issue 26: a gate shows its
numbers). P0.zero_shot, the whole split's accuracy, is reported but does not gate: it is a floor on a
different set. Each
ablation acts at every layer where DAS has a trained direction, all at once, each layer with its own
ToyMovieReview DAS direction d_ℓ: x' = x − (x·d_ℓ) d_ℓ at the selected positions. The null: the
protocol's ``random_ablations`` (50) seeded random directions (one Gaussian vector per ablated layer),
each ablated exactly like DAS (same layers, positions and prompts). Metrics are the paper's, uncentred:
Δ% LD = (mean LD_orig − mean LD_abl)/mean LD_orig × 100 (positive = LD fell) and accuracy = % of
prompts with LD > 0 (100% before, by construction); "drop" is Δ% LD or accuracy points lost. Unit: the
prompt; every CI is a studentized (bootstrap-t) bootstrap over prompts, or a test inversion built on it
(A3–A5's ratios), or a two-way bootstrap (A2) (1,000 resamples, seeded; docs/calibration.md), paired (every ablation and every null
direction of a statistic recomputed on the same resampled prompts), undefined resamples counted.

- A1 (metric × positions "all" / "all_but_first"): DAS drop minus the null's 97.5% quantile (the
  protocol's ``null_quantile``) of the random directions' drops, ablated the same way on the same
  prompts (points): DAS beats random when this clears the threshold. Rules: accuracy >= 15 points,
  Δ% LD >= 30 points (pythia-2.8b: 38 ± 6 and 71 ± 8). "all" is the paper's setup (BOS included);
  "all_but_first" leaves each prompt's first position alone (on SmolLM2 BOS is an attention sink with a
  residual norm ~100× the others, so even a random direction removed there moves the output; the
  report tabulates it).
- A2 (positions): the median (the protocol's ``spread_quantile``) of the random directions' |Δ% LD| (what
  a random direction does), its CI the two-way percentile bootstrap (prompts and directions resampled), as
  P2.random's and P5.random's; the upper quantiles are in the details. Rule: < 2.
- A3 (DAS at commas only) and A4 (whole residual mean-ablated at commas, every layer, the layer's mean
  comma activation over the set), per metric: on pythia-2.8b the value itself against the paper (A3
  accuracy 82 ± 6, Δ% LD 17.5 ± 5; A4 81 ± 5, 17 ± 5); elsewhere the paired ratio (comma-only drop −
  the null's mean comma-only drop) / (all-positions DAS drop − the null's mean all-positions drop) (a
  ratio of effects nets out the expected random effect; an upper quantile in its denominator would
  inflate it), its CI the Fieller-type interval (the values ρ where the paired studentized test of
  N − ρD = 0 does not reject; unbounded where the denominator is unresolved; the ratio itself is never
  resampled). Rule: >= 0.25. Also gated on that denominator being > 0 on the data.
- A5: comma-only Δ% LD with every layer's attention frozen to the clean run / unfrozen (ratio, paired,
  Fieller-type CI as A3's). Rule: <= 0.40. Gated also on the unfrozen comma-only
  drop's 95% CI lying above 0 (there must be a comma effect to shrink).

``--ablation-hook`` picks the site: ``resid_post`` (default) reproduces the authors' off-by-one (fitted
at resid_pre ℓ, applied at resid_post ℓ); ``resid_pre`` applies each direction where it was fitted. The
report states which, and the per-class breakdown (the paper found the comma effect in negative prompts).
"""

from __future__ import annotations

import pytest

from harness.verdicts.declaration import ThresholdKind
from harness.verdicts.declared import declared

POSITIONS = ["all", "all_but_first"]


def _details(results, zero_shot_set, name: str) -> str:
    per_class = "; ".join(f"{cls}: Δ% LD {results.ld_drop(name, label):.1f}, accuracy {results.accuracy(name, label):.0f}%"
                          for cls, label in (("positive", 1), ("negative", 0)))
    return (f"{len(results.labels)} prompts, site {results.site}, layers {list(results.layers)}; {per_class}; "
            f"{zero_shot_set.deviation()}")


def _null(results, metric: str, positions: str) -> str:
    drops = results.null_drops(metric, positions)
    return (f"null ({results.null_count} random directions at {positions.replace('_', ' ')}): mean drop "
            f"{float(drops.mean()):.1f}, {results.null_quantile:.1%} quantile "
            f"{results.null_quantile_drop(metric, positions):.1f}, range [{float(drops.min()):.1f}, {float(drops.max()):.1f}]")


@pytest.mark.claim("A1")
@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("metric", ["accuracy", "ld_drop"])
def test_a1_direction_ablation_everywhere(metric, positions, sst_ablations, zero_shot_set, ablation_gate, claim):
    description = (f"DAS ablated at {positions.replace('_', ' ')} positions, every layer, minus the random null's "
                   f"upper quantile: {metric} drop (points)")
    das = f"das_{positions}"
    claim.check(
        sst_ablations.above_null(metric, das, positions), case=metric, preconditions=ablation_gate,
        description=description,
        details=f"DAS drop {sst_ablations.drop(metric, das):.1f}; {_null(sst_ablations, metric, positions)}; "
                + _details(sst_ablations, zero_shot_set, das),
    )


@pytest.mark.claim("A2")
@pytest.mark.parametrize("positions", POSITIONS)
def test_a2_random_direction_ablation_does_little(positions, sst_ablations, zero_shot_set, ablation_gate, claim):
    setup = "the paper's setup (BOS included)" if positions == "all" else "first position (BOS) left alone"
    description = f"random directions ablated like A1, {setup}: the median of their |Δ% LD|"
    accuracy = sst_ablations.null_drops("accuracy", positions)
    claim.check(
        sst_ablations.null_spread(positions, declared("A2").protocol["spread_quantile"]), preconditions=ablation_gate,
        description=description,
        details=f"{_null(sst_ablations, 'ld_drop', positions)}; accuracy lost: mean {float(accuracy.mean()):.1f} "
                f"points; DAS the same way: Δ% LD {sst_ablations.ld_drop(f'das_{positions}'):.1f}; "
                + _details(sst_ablations, zero_shot_set, f"das_{positions}"),
    )


def _check_comma_ablation(claim, name: str, metric: str, results, zero_shot_set, gate: dict[str, bool]) -> None:
    """A3/A4 (module docstring): the raw value on the paper's model, else the paired net ratio."""
    if claim.rule(metric).kind is ThresholdKind.PAPER:
        estimate, preconditions = results.estimate(metric, name), gate
        what = f"{metric} (the paper's number)"
    else:
        net_all = results.drop(metric, "das_all") - float(results.null_drops(metric, "all").mean())
        preconditions = gate | {"the all-positions DAS drop exceeds the null's mean (the ratio's denominator > 0)":
                                net_all > 0}
        estimate = (results.net_ratio(metric, name, "comma", "das_all", "all") if net_all > 0
                    else results.net_drop(metric, name, "comma"))
        what = (f"({metric} drop − the null's mean comma-only drop) / (all-positions DAS drop − the null's mean)"
                if net_all > 0 else f"ratio undefined (denominator {net_all:.2f} <= 0): the numerator, {metric} drop "
                                    "− the null's mean comma-only drop, is shown")
    claim.check(
        estimate, case=metric, preconditions=preconditions, description=f"{name.replace('_', ' ')} ablation: {what}",
        details=f"{name} drop {results.drop(metric, name):.1f}, DAS all {results.drop(metric, 'das_all'):.1f}; "
                f"{_null(results, metric, 'comma')}; {_null(results, metric, 'all')}; "
                + _details(results, zero_shot_set, name),
    )


@pytest.mark.claim("A3")
@pytest.mark.parametrize("metric", ["accuracy", "ld_drop"])
def test_a3_direction_ablation_at_commas(metric, sst_ablations, zero_shot_set, ablation_gate, claim):
    _check_comma_ablation(claim, "das_comma", metric, sst_ablations, zero_shot_set, ablation_gate)


@pytest.mark.claim("A4")
@pytest.mark.parametrize("metric", ["accuracy", "ld_drop"])
def test_a4_mean_ablation_at_commas(metric, sst_ablations, zero_shot_set, ablation_gate, claim):
    _check_comma_ablation(claim, "mean_comma", metric, sst_ablations, zero_shot_set, ablation_gate)


@pytest.mark.claim("A5")
def test_a5_frozen_attention_removes_comma_effect(sst_ablations, zero_shot_set, ablation_gate, claim):
    description = "comma-only DAS ablation, Δ% LD with attention frozen / unfrozen"
    unfrozen = sst_ablations.estimate("ld_drop", "das_comma")
    frozen = sst_ablations.drop("ld_drop", "das_comma_frozen")
    effect = {"the unfrozen comma-only drop's 95% CI lies above 0": unfrozen.ci_low > 0}
    if unfrozen.value > 0:
        estimate, what = sst_ablations.ratio("das_comma_frozen", "das_comma"), "frozen / unfrozen"
    else:
        estimate, what = sst_ablations.estimate("ld_drop", "das_comma_frozen"), "ratio undefined: frozen Δ% LD shown"
    claim.check(
        estimate, preconditions=ablation_gate | effect, description=f"{description} ({what})",
        details=f"unfrozen Δ% LD {unfrozen.value:.2f} [{unfrozen.ci_low:.2f}, {unfrozen.ci_high:.2f}], frozen {frozen:.2f}; "
                f"all positions frozen: Δ% LD {sst_ablations.ld_drop('das_all_frozen'):.1f}, accuracy "
                f"{sst_ablations.accuracy('das_all_frozen'):.1f}%; {zero_shot_set.deviation()}",
    )
