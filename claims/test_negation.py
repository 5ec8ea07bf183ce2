"""§5.6: negation flips the sentiment projection of the negated word between an early and a late layer.

Setup as the authors' ``negation_experiment.py`` (PAPER.md §5.6): for each of their 27 sentences
("Don't doubt it." → doubt), the tracked word's token (its last token if it has several) is projected,
as a cosine similarity, onto each method's early-layer direction, at the early layer and at a late
one: the paper's layers 1 and 10 of gpt2-small's 12, carried to the same fraction of depth (3 and 25
on SmolLM2's 30). The direction is the early layer's at both layers, as in the paper. The corpus mean
and std of the §5.6 formulas are those of the R1 corpus projections (SST-2 train instead of
OpenWebText; the early layer, where the authors' OWT activations were read). flip_size =
0.5·change/(corpus mean − initial); a sentence flips when flip_size > 0 (it moves toward the other
side of the corpus mean, the opposite sign).

- N1 flip: flip_percent > 50% for every method. The paper's values are unknown; the report lists
  the measured ones (mean change, z, flip %, median flip size).
- N1 control: the movement toward the opposite side (change · sign(mean − initial)) is larger for
  the negated sentences than for the same words with the negation removed (control sentences
  written for the suite, ``harness/negation.py``), so the flip is not a drift every word undergoes
  between the two layers. "Larger" is read as: the mean over the 27 pairs of (negated − control) is
  positive and its 95% bootstrap CI over pairs lies above 0, so that resampling noise over 27
  sentences cannot pass it.
"""

from __future__ import annotations

import pytest

from harness.direction_methods import methods
from harness.metrics import bootstrap_ci


def _layers(negation) -> str:
    return f"layers {negation.early_layer} → {negation.late_layer}, {len(negation.sentences)} sentences"


@pytest.mark.claim("N1")
@pytest.mark.parametrize("method", methods(controls=False))
def test_n1_negation_flips_projection(method, negation, claim):
    flips = negation.flips(method)
    ci = bootstrap_ci(lambda size: 100 * (size > 0).float().mean(-1), flips.flip_size)
    claim.check(flips.flip_percent, ci=ci,
                description=f"{method}: flip_percent (projection moves toward the opposite sign)",
                details=f"{_layers(negation)}; median flip size {float(flips.flip_size.median()):.2f}")


@pytest.mark.claim("N1.control")
@pytest.mark.parametrize("method", methods(controls=False))
def test_n1_negation_moves_more_than_control(method, negation, claim):
    negated, control = negation.flips(method), negation.flips(method, "control")
    paired = negated.toward_opposite - control.toward_opposite
    low, high = bootstrap_ci(lambda d: d.mean(-1), paired)
    claim.check(float(paired.mean()), ci=(low, high), requires={"95% CI above 0": low > 0},
                description=f"{method}: movement toward the opposite sign, negated minus control (paired, mean)",
                details=(f"{_layers(negation)}; negated {float(negated.toward_opposite.mean()):.3f}, control "
                         f"{float(control.toward_opposite.mean()):.3f} (cosine units)"))
