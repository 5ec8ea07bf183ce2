"""§5.6: negation flips the sentiment projection of the negated word between an early and a late layer.

Setup as the authors' ``negation_experiment.py`` (docs/PAPER.md §5.6): for each of their 27 sentences
("Don't doubt it." → doubt), the tracked word's token (its last token if it has several) is projected,
as a cosine similarity, onto each method's early-layer direction, at the early layer and at a late
one: the paper's layers 1 and 10 of gpt2-small's 12, carried to the same fraction of depth (3 and 25
on SmolLM2's 30). The direction is the early layer's at both layers, as in the paper. The corpus mean
and std of the §5.6 formulas are those of the R1 corpus projections (SST-2 train instead of
OpenWebText; the early layer, where the authors' OWT activations were read).

Each sentence is paired with a control written for the suite (``harness/experiments/negation.py``): the same word
in the same frame with the negation removed. A word's movement toward the opposite sign is
toward_opposite = (late − early) · sign(corpus mean − early), in cosine units.

- N1 (one row per method): the mean of toward_opposite(negated) − toward_opposite(control), so that a
  drift every word undergoes between the two layers (the controls "flip" as often as the negated words
  on SmolLM2) is not counted as an effect of negation. The unit is the distinct (negated, control) pair
  of prefixes ending at the tracked word: a causal model reads nothing after it, so the five "You're
  nothing short of X." sentences (read at "short") and the two "I don't want …" ones are one measurement
  each, counted once (22 of the 27; issue 25, item 3). CI: studentized bootstrap over them (1,000
  resamples, seeded by ``suite_seed``; docs/calibration.md), n = 22. Replicates when the whole CI is
  above 0; the claim replicates if any method's row does, Holm across the five. The paper's flip_percent (the share of sentences with
  flip_size = 0.5·change/(corpus mean − initial) > 0) and the mean movement of the negated and the
  control sentences alone are in the details; flip_percent is no longer a claim, since controls
  without negation reach it too.
"""

from __future__ import annotations

import pytest

from harness.directions.registry import methods


def _mean(estimate) -> str:
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


@pytest.mark.claim("N1")
@pytest.mark.parametrize("method", methods(controls=False))
def test_n1_negation_moves_more_than_control(method, negation, claim):
    negated, control = negation.flips(method), negation.flips(method, "control")
    claim.check(
        negation.movement(method),
        description=f"{method}: movement toward the opposite sign, negated minus control (paired mean, cosine)",
        details=(f"layers {negation.early_layer} → {negation.late_layer}, {len(negation.sentences)} sentence pairs "
                 f"({len(negation.distinct())} distinct at the tracked word); "
                 f"movement negated {_mean(negation.movement(method, 'negated'))}, control "
                 f"{_mean(negation.movement(method, 'control'))}; flip_percent negated {negated.flip_percent:.1f}%, "
                 f"control {control.flip_percent:.1f}%; median flip size {float(negated.flip_size.median()):.2f}"),
    )
