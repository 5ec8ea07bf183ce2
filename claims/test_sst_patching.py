"""§5.2 and §6.2 P3–P5 (P7 in PAPER.md): toy-fitted sentiment directions patched onto real reviews (SST).

Directions fitted on ToyMovieReview train at ADJ (§4) are patched at every position of residual
boundary L of the corrupted SST prompt, x' = x_corr + (d·x_clean − d·x_corr) d, with the CLASSIFICATION
scaffold ``Review Text: {TEXT} Review Sentiment:`` (answers ` Positive`/` Negative`), and scored with
the §5.1 metrics (centred) on the clean prompt's answers. Pairs are length-matched as in §2.3
(``harness.sst_prompts``; cycled within each length group, so that no pair mixes lengths), from
correctly classified sentences (as for the paper's pythia-1.4b table; ``harness.sst_patching``).
Every layer where a method has a direction is swept: the cheap methods at every boundary, DAS only at
its fitted layers (every 3rd on the embedded model). A method's value is its maximum over layers.

- P3: DAS at its best layer: % LD recovered and % logit flip (paper, pythia-1.4b: 47.0% and 53.5%
  [3P, REV], ± 15 points); other models: >= 20% and >= 5× the largest |random| value over layers
  (the floor is computed here from the data).
- P4 (paper §6.2 P7): each method's best SST layer is intermediate, strictly inside the first and last
  15% of the depth (|layer − n_layers/2| < 0.35 n_layers).
- P5: DAS recovers at least as much % LD as each other method, within 5 points; P5.random: the random
  direction recovers |% LD| <= 5% at every layer.

Choices: the shipped data has no SST test file, so the dev split is the held-out set (the directions
never see SST); the paper's layer-sweep figure used the CONTINUATION scaffold, the suite's SST figure
shows the CLASSIFICATION sweep that the claims use. Counts (sentences, pairs) are in the report.
"""

from __future__ import annotations

import pytest

from harness.direction_methods import methods

GENERIC_MINIMUM, RANDOM_MULTIPLE = 20.0, 5.0
INTERMEDIATE_MARGIN = 0.15


def _largest_random(results, metric: str) -> float:
    return max(abs(results.metric(metric, "random", layer)) for layer in results.layers("random"))


@pytest.mark.claim("P3")
@pytest.mark.parametrize("metric", ["ld_recovered", "logit_flip"])
def test_p3_das_patching_transfers_to_sst(metric, sst_patching, claim):
    results = sst_patching.results
    layer = results.best_layer("das", metric)
    random = _largest_random(results, metric)
    floor = max(GENERIC_MINIMUM, RANDOM_MULTIPLE * random)
    claim.check(
        results.metric(metric, "das", layer), case=metric, ci=results.metric_ci(metric, "das", layer),
        threshold=floor if claim.rule(metric).data_dependent else None,
        description=f"DAS patched onto SST pairs, {metric} at best layer",
        details=f"best layer {layer}; {len(results.labels)} SST pairs; largest |random| over layers {random:.1f}%",
    )


@pytest.mark.claim("P4")
@pytest.mark.parametrize("method", methods(controls=False))
def test_p4_best_sst_layer_is_intermediate(method, sst_patching, model, claim):
    results = sst_patching.results
    layer = results.best_layer(method, "ld_recovered")
    claim.check(
        layer, centre=model.n_layers / 2, threshold=(0.5 - INTERMEDIATE_MARGIN) * model.n_layers,
        description=f"{method}: best SST patching layer (% LD recovered)",
        details=f"{results.metric('ld_recovered', method, layer):.1f}% recovered there; "
                f"layers swept: {results.layers(method)[0]}..{results.layers(method)[-1]} of {model.n_layers}",
    )


@pytest.mark.claim("P5")
@pytest.mark.parametrize("method", [m for m in methods(controls=False) if m != "das"])
def test_p5_das_at_least_as_good_as_other_methods(method, sst_patching, claim):
    results = sst_patching.results
    das_layer, other_layer = results.best_layer("das"), results.best_layer(method)
    das, other = results.metric("ld_recovered", "das", das_layer), results.metric("ld_recovered", method, other_layer)
    claim.check(
        das - other, description=f"DAS minus {method}, best-layer % LD recovered on SST",
        details=f"DAS {das:.1f}% (L{das_layer}); {method} {other:.1f}% (L{other_layer})",
    )


@pytest.mark.claim("P5.random")
def test_p5_random_direction_recovers_nothing_on_sst(sst_patching, claim):
    results = sst_patching.results
    layer = max(results.layers("random"), key=lambda l: abs(results.metric("ld_recovered", "random", l)))
    claim.check(
        results.metric("ld_recovered", "random", layer), ci=results.metric_ci("ld_recovered", "random", layer),
        description="random direction on SST, largest |% LD recovered| over layers", details=f"worst layer {layer}",
    )
