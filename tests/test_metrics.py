"""harness.measures.metrics on numbers small enough to compute by hand (paper §5.1 definitions).

The running example: four prompts with clean labels [1, 0, 1, 0] (signs +, −, +, −).

- clean scores     [3, −1, 2, 0]: bias 1, centred LDs [2, 2, 1, 1]     → mean 1.5, accuracy 1
- corrupted scores [−1, 2, 0, 3]: bias 1, centred LDs [−2, −1, −1, −2] → mean −1.5, accuracy 0
- patched scores   [2, 1, 0, 1]:  bias 1, centred LDs [1, 0, −1, 0]    → mean 0, accuracy 1/4
So % LD recovered = (0 − (−1.5)) / (1.5 − (−1.5)) × 100 = 50 and % logit flip = (1/4 − 0)/(1 − 0) × 100 = 25.
"""

from __future__ import annotations

import pytest
import torch

from harness.measures.metrics import (
    accuracy,
    centred_logit_diff,
    logit_diff,
    logit_diff_recovered,
    logit_flip,
    sentiment_score,
)
from harness.measures.statistics import bootstrap

LABELS = torch.tensor([1, 0, 1, 0])
CLEAN = torch.tensor([3.0, -1.0, 2.0, 0.0])
CORRUPTED = torch.tensor([-1.0, 2.0, 0.0, 3.0])
PATCHED = torch.tensor([2.0, 1.0, 0.0, 1.0])


def test_sentiment_score_averages_aligned_answer_pairs():
    """s = mean_k logit(pos_k) − logit(neg_k); answer_ids row 0 positives, row 1 negatives."""
    logits = torch.tensor([[5.0, 1.0, 2.0, 0.0, 9.0, 9.0],
                           [0.0, 0.0, 1.0, 3.0, 0.0, 0.0]])
    answer_ids = torch.tensor([[0, 1], [2, 3]])  # pairs (0 vs 2), (1 vs 3)
    # row 0: ((5−2) + (1−0))/2 = 2; row 1: ((0−1) + (0−3))/2 = −2
    torch.testing.assert_close(sentiment_score(logits, answer_ids), torch.tensor([2.0, -2.0]))


def test_logit_diff_signs_score_by_clean_label():
    torch.testing.assert_close(logit_diff(CLEAN, LABELS), torch.tensor([3.0, 1.0, 2.0, 0.0]))


def test_centred_logit_diff_subtracts_run_bias():
    """Centred LD = LD − bias for positive labels, LD + bias for negative ones (bias = mean score)."""
    torch.testing.assert_close(centred_logit_diff(CLEAN, LABELS), torch.tensor([2.0, 2.0, 1.0, 1.0]))
    torch.testing.assert_close(centred_logit_diff(CORRUPTED, LABELS), torch.tensor([-2.0, -1.0, -1.0, -2.0]))
    # a constant shift of every score is exactly the bias: centring removes it
    torch.testing.assert_close(centred_logit_diff(CLEAN + 7.0, LABELS), centred_logit_diff(CLEAN, LABELS))


def test_centred_logit_diff_centres_each_resample_separately():
    """With a leading (bootstrap) axis, each row is centred with its own mean."""
    scores = torch.stack([CLEAN, CLEAN + 4.0, CORRUPTED])
    expected = torch.tensor([[2.0, 2.0, 1.0, 1.0], [2.0, 2.0, 1.0, 1.0], [-2.0, -1.0, -1.0, -2.0]])
    torch.testing.assert_close(centred_logit_diff(scores, LABELS), expected)


def test_accuracy_counts_strictly_positive_centred_lds():
    assert accuracy(CLEAN, LABELS).item() == 1.0
    assert accuracy(CORRUPTED, LABELS).item() == 0.0
    assert accuracy(PATCHED, LABELS).item() == 0.25  # centred [1, 0, −1, 0]: a zero is not correct


def test_logit_diff_recovered_endpoints_and_midpoint():
    assert logit_diff_recovered(CLEAN, CLEAN, CORRUPTED, LABELS).item() == 100.0
    assert logit_diff_recovered(CORRUPTED, CLEAN, CORRUPTED, LABELS).item() == 0.0
    assert logit_diff_recovered(PATCHED, CLEAN, CORRUPTED, LABELS).item() == pytest.approx(50.0)


def test_logit_diff_recovered_is_not_clipped():
    """Overshooting the clean run gives more than 100% (the paper does not clip)."""
    overshoot = CLEAN * 2  # [6, −2, 4, 0]: bias 2, centred LDs [4, 4, 2, 2], mean 3 → (3 + 1.5)/3 × 100
    assert logit_diff_recovered(overshoot, CLEAN, CORRUPTED, LABELS).item() == pytest.approx(150.0)


def test_logit_flip_hand_computed():
    assert logit_flip(PATCHED, CLEAN, CORRUPTED, LABELS).item() == pytest.approx(25.0)
    assert logit_flip(CLEAN, CLEAN, CORRUPTED, LABELS).item() == 100.0
    assert logit_flip(CORRUPTED, CLEAN, CORRUPTED, LABELS).item() == 0.0


def test_bootstrap_ci_of_recovered_resamples_prompts_jointly():
    """All per-prompt tensors are resampled with the same indices: patched == clean stays 100%
    in every resample where the metric is defined."""
    estimate = bootstrap(logit_diff_recovered, CLEAN, CLEAN, CORRUPTED, LABELS)
    assert estimate.ci_low == pytest.approx(100.0) and estimate.ci_high == pytest.approx(100.0)


def test_bootstrap_refuses_a_statistic_undefined_everywhere():
    """clean == corrupted makes every resample 0/0: no CI can be made, and the bootstrap says so."""
    with pytest.raises(ValueError, match="undefined"):
        bootstrap(logit_diff_recovered, PATCHED, CLEAN, CLEAN, LABELS)


def test_patching_results_tabulates_the_same_metrics():
    """``harness.interventions.sweep.PatchingResults`` reads the metrics per (method, layer) from stored scores."""
    from harness.interventions.sweep import PatchingResults

    results = PatchingResults(labels=LABELS, clean=CLEAN, corrupted=CORRUPTED, patched={
        ("a", 0): CORRUPTED, ("a", 1): PATCHED, ("a", 2): CLEAN, ("b", 1): PATCHED})
    assert results.methods() == ["a", "b"] and results.layers("a") == [0, 1, 2] and results.layers("b") == [1]
    assert results.table("ld_recovered") == {"a": {0: 0.0, 1: pytest.approx(50.0), 2: 100.0}, "b": {1: pytest.approx(50.0)}}
    assert results.metric("logit_flip", "a", 1) == pytest.approx(25.0)
    assert results.best_layer("a") == 2
    estimate = results.estimate("ld_recovered", "a", 1)
    assert estimate == results.estimate("ld_recovered", "a", 1) and estimate.ci_low <= 50.0 <= estimate.ci_high
