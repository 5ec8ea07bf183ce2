"""§5.2 and §6.2 P3–P5 (P7 in docs/PAPER.md): toy-fitted sentiment directions patched onto real reviews (SST).

Setup: directions fitted on ToyMovieReview train at ADJ (§4) are patched at every position of residual
boundary L of the corrupted SST prompt, x' = x_corr + (d·x_clean − d·x_corr) d, with the CLASSIFICATION
scaffold ``Review Text: {TEXT} Review Sentiment:`` (answers ` Positive`/` Negative`), and scored with the
§5.1 metrics on the clean prompt's answers. Pairs (``harness.experiments.sst_patching``): sentences of the held-out
split (dev; the directions never see SST) of at most 20 tokens, classified correctly (centred LD > 0, §5.1),
length-matched (§2.3, cycled within a length group), every eligible pair drawn in ``suite_seed``'s order (the
length, and no cap on the number: P3-P5's declared protocol, ``SST_PATCHING_PROTOCOL``; issue 25, item 7) so
that no sentence is in two pairs and clean labels are balanced: 80 pairs on SmolLM2-135M (24 before; n and
the counts are in the report).
Centring (§5.1): per run, over all pairs of the set or of the bootstrap resample; with balanced pairs the
bias cancels from % LD recovered, which then equals the authors'. Every method is swept at the layers where
DAS has a trained direction (the declared grid: one set of candidate layers for every method). Unit: the pair; every CI is a percentile
bootstrap over pairs (1,000 resamples, seeded by ``suite_seed``).

- P3 (per metric: % LD recovered, % logit flip): DAS at the layer chosen on the other half of the pairs
  (2-fold cross-fitting, folds stratified by label, the choice redone in every resample). Rule: >= 20%
  (pythia-1.4b: the paper's 47.0% / 53.5% ± 15).
- P4 (per method): relative depth (layer / n_layers) of the method's best layer of the grid by % LD recovered on all
  pairs; the CI redoes the choice in every resample. Rule: |depth − 0.5| < 0.35.
- P5 (per method other than DAS): DAS minus the method, % LD recovered (points), each cross-fitted over
  the layers DAS was fitted at (the same candidate layers and folds for both; paired bootstrap). Rule:
  > 0 (the paper's ordering).
- P5.random: the null of 50 seeded random directions (the count, layer grid and quantile: the declared
  protocol), each patched exactly like a method's direction on the same pairs; each direction's largest
  |% LD recovered| over the grid (the DAS layers at relative depth >= 0.5: declared, for the time
  budget), and the row is their median. CI: two-way percentile bootstrap (pairs and directions
  resampled independently; ``harness.measures.null_quantile``). Rule: |value| <= 5%.

Gate: every claim here is "not applicable" unless P0.classification replicates (the model classifies
SST with this scaffold; ``claims/test_sst_competence.py``); then the patching is not run (``claim.applies``).
The paper's "maximum over layers" per method stays in the report's sweep table as description.
"""

from __future__ import annotations

import pytest

from harness.directions.registry import methods
from harness.measures.null_quantile import null_quantile
from harness.measures.statistics import TieRule, selected
from harness.verdicts.declared import declared

GATE = "classification"
TIE = TieRule.from_protocol(declared("P3").protocol)  # P3-P5 declare the same layer choice


def _patching(request: pytest.FixtureRequest):
    """The SST sweep's results, computed on first use (only once the gate holds)."""
    return request.getfixturevalue("sst_patching").results


def _pairs(results) -> str:
    positive = int(results.labels.sum())
    return f"{len(results.labels)} SST pairs ({positive} positive / {len(results.labels) - positive} negative clean)"


@pytest.mark.claim("P3")
@pytest.mark.parametrize("metric", ["ld_recovered", "logit_flip"])
def test_p3_das_patching_transfers_to_sst(metric, request, sst_gate, claim):
    description = f"DAS patched onto SST pairs, {metric} at the cross-fitted layer"
    if not claim.applies(sst_gate[GATE], case=metric, description=description):
        return
    results = _patching(request)
    fit = results.cross_fitted(metric, "das", tie=TIE, select_by="ld_recovered")
    claim.check(
        fit.estimate(), case=metric, preconditions=sst_gate[GATE], description=description,
        details=f"layers chosen per fold {list(fit.layers)} of {results.layers('das')}; {_pairs(results)}",
    )


@pytest.mark.claim("P4")
@pytest.mark.parametrize("method", methods(controls=False))
def test_p4_best_sst_layer_is_intermediate(method, request, sst_gate, model, claim):
    description = f"{method}: relative depth of the best SST patching layer (% LD recovered)"
    if not claim.applies(sst_gate[GATE], description=description):
        return
    results = _patching(request)
    layers = results.layers(method)
    estimate = selected(results.at_layer("ld_recovered", method), layers, len(results.labels),
                        value_of=lambda layer: layer / model.n_layers, tie=TIE)
    best = round(estimate.value * model.n_layers)
    claim.check(
        estimate, preconditions=sst_gate[GATE], description=description,
        details=f"layer {best} of {model.n_layers} ({results.metric('ld_recovered', method, best):.1f}% recovered "
                f"there); layers swept {layers[0]}..{layers[-1]} ({len(layers)}); {_pairs(results)}",
    )


@pytest.mark.claim("P5")
@pytest.mark.parametrize("method", [m for m in methods(controls=False) if m != "das"])
def test_p5_das_at_least_as_good_as_other_methods(method, request, sst_gate, claim):
    description = f"DAS minus {method}, cross-fitted % LD recovered on the same SST pairs (points)"
    if not claim.applies(sst_gate[GATE], description=description):
        return
    results = _patching(request)
    das_layers = results.layers("das")
    das = results.cross_fitted("ld_recovered", "das", layers=das_layers, tie=TIE, select_by="ld_recovered")
    other = results.cross_fitted("ld_recovered", method, layers=das_layers, tie=TIE, select_by="ld_recovered")
    claim.check(
        das.minus(other), preconditions=sst_gate[GATE], description=description,
        details=f"DAS {das.value:.1f}% (fold layers {list(das.layers)}); {method} {other.value:.1f}% (fold layers "
                f"{list(other.layers)}); candidate layers {das_layers}; {_pairs(results)}",
    )


@pytest.mark.claim("P5.random")
def test_p5_random_direction_recovers_nothing_on_sst(request, sst_gate, claim):
    description = "random directions on SST: the median of each one's largest |% LD recovered| over the null's layers"
    if not claim.applies(sst_gate[GATE], description=description):
        return
    patching = request.getfixturevalue("sst_patching")
    results, null = patching.results, patching.null
    quantile = declared("P5.random").protocol["null_quantile"]
    estimate = null_quantile(null.largest_abs, len(null.labels), quantile, unit="pairs")
    layers = results.layers("random")
    worst = max(layers, key=lambda layer: abs(results.metric("ld_recovered", "random", layer)))
    claim.check(
        estimate, preconditions=sst_gate[GATE], description=description,
        details=f"{null.describe((quantile, 0.975))}; the paper's single random direction (the registry's 'random'): "
                f"{abs(results.metric('ld_recovered', 'random', worst)):.2f} at layer {worst} of all {len(layers)}; "
                f"{_pairs(results)}",
    )
