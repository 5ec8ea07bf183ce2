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

from fixtures.directions import FIVE_METHODS
from harness.claim_record import ClaimRecord
from harness.metrics import bootstrap_ci

PAPER_VALUE = "unknown (gpt2-small, layers 1 → 10; PAPER.md §6.5)"


def _layers(negation) -> str:
    return f"layers {negation.early_layer} → {negation.late_layer}, {len(negation.sentences)} sentences"


@pytest.mark.claim("N1")
@pytest.mark.parametrize("method", FIVE_METHODS)
def test_n1_negation_flips_projection(method, negation, claim):
    flips = negation.flips(method)
    low, high = bootstrap_ci(lambda size: 100 * (size > 0).float().mean(-1), flips.flip_size)
    claim.check(ClaimRecord(
        claim="N1", section="§5.6", description=f"{method}: flip_percent (projection moves toward the opposite sign)",
        paper_value=PAPER_VALUE, measured=flips.flip_percent, ci_low=low, ci_high=high, unit="%", tolerance="> 50%",
        threshold_source="generic", passed=flips.flip_percent > 50,
        details=f"{_layers(negation)}; median flip size {float(flips.flip_size.median()):.2f}",
    ))


@pytest.mark.claim("N1")
@pytest.mark.parametrize("method", FIVE_METHODS)
def test_n1_negation_moves_more_than_control(method, negation, claim):
    negated, control = negation.flips(method), negation.flips(method, "control")
    paired = negated.toward_opposite - control.toward_opposite
    difference = float(paired.mean())
    low, high = bootstrap_ci(lambda d: d.mean(-1), paired)
    claim.check(ClaimRecord(
        claim="N1", section="§5.6",
        description=f"{method}: movement toward the opposite sign, negated minus control (paired, mean)",
        paper_value=PAPER_VALUE, measured=difference, ci_low=low, ci_high=high, tolerance="> 0, 95% CI above 0",
        threshold_source="generic", passed=difference > 0 and low > 0,
        details=(f"{_layers(negation)}; negated {float(negated.toward_opposite.mean()):.3f}, control "
                 f"{float(control.toward_opposite.mean()):.3f} (cosine units)"),
    ))
