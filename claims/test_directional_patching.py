"""§5.2 and §6.2: patching one direction moves the model's sentiment (ToyMovieReview test).

Every position of residual boundary L of the corrupted prompt is patched along the method's layer-L
direction from the clean prompt, x' = x_corr + (d·x_clean − d·x_corr) d, and scored with the §5.1
metrics on the clean prompt's answers. A method's value is its maximum over layers (the paper's table
took the maximum over layers per method); the report shows the whole layer sweep.

- P1: DAS at its best layer, % logit flip and % logit difference recovered.
- P2: the other methods at their best layers flip it too; P2.random: the random direction recovers
  nothing at any layer. Thresholds and paper values: ``harness/claims_declared.py``.
"""

from __future__ import annotations

import pytest

from harness.direction_methods import methods


def _best(results, method: str, metric: str) -> tuple[int, float, tuple[float, float]]:
    layer = results.best_layer(method, metric)
    return layer, results.metric(metric, method, layer), results.metric_ci(metric, method, layer)


@pytest.mark.claim("P1")
@pytest.mark.parametrize("metric", ["logit_flip", "ld_recovered"])
def test_p1_das_patching_flips_sentiment(metric, toy_patching, claim):
    layer, value, ci = _best(toy_patching, "das", metric)
    claim.check(value, case=metric, ci=ci, description=f"DAS directional patching, {metric} at best layer",
                details=f"best layer {layer}; {len(toy_patching.labels)} test pairs; CI at that layer")


@pytest.mark.claim("P2")
@pytest.mark.parametrize("method", [m for m in methods(controls=False) if m != "das"])
def test_p2_other_methods_flip_sentiment(method, toy_patching, claim):
    layer, value, ci = _best(toy_patching, method, "logit_flip")
    claim.check(value, ci=ci, description=f"{method} directional patching, logit_flip at best layer",
                details=f"best layer {layer}")


@pytest.mark.claim("P2.random")
def test_p2_random_direction_recovers_nothing(toy_patching, claim):
    layer = max(toy_patching.layers("random"), key=lambda l: abs(toy_patching.metric("ld_recovered", "random", l)))
    claim.check(toy_patching.metric("ld_recovered", "random", layer),
                ci=toy_patching.metric_ci("ld_recovered", "random", layer),
                description="random direction, largest |% LD recovered| over layers", details=f"worst layer {layer}")
