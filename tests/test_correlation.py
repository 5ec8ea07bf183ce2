"""harness.experiments.correlation: §5.4's tail metric and AUROC, depth scaling, and corpus residuals.

- ``layer_at_depth`` carries the paper's gpt2-small layers (of 12) to other depths, half up, >= 1;
- ``tail_score`` is the paper's metric: per tail (0.1% / 99.9% quantiles) the share of the most
  frequent non-neutral label, neutral in the denominator, averaged over the two tails;
- ``auroc`` orders positive above negative tokens (1 perfect, 0 reversed), neutral ignored, and equals
  sklearn's ``roc_auc_score`` with ties;
- ``residuals_at`` equals an unpadded full forward at that layer for each text, BOS left out;
- the count-weighted tail score and AUROC equal the plain ones on the corpus with each sentence repeated
  as often as drawn (ties included); ``by_sentence`` resamples whole sentences, seeded by the session;
- ``of_drawn_units`` counts any number of drawn units (a jackknife's n − 1) and keeps trailing axes.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.experiments.correlation import (
    auroc, auroc_of_counts, by_sentence, cosine_projections, layer_at_depth, of_drawn_units, residuals_at, tail_score,
    tail_score_of_counts,
)
from harness.interventions.forward import residual_stream
from harness.datasets.lexicon import NEGATIVE, NEUTRAL, POSITIVE
from harness.measures.statistics import seeded
from harness.verdicts.declared import declared


@pytest.mark.parametrize("paper_layer, n_layers, expected", [
    (1, 12, 1), (10, 12, 10), (1, 30, 3), (10, 30, 25), (1, 24, 2), (10, 24, 20), (1, 2, 1), (0, 30, 0), (12, 30, 30),
])
def test_layer_at_depth(paper_layer, n_layers, expected):
    assert layer_at_depth(paper_layer, n_layers) == expected


def test_layer_at_depth_rejects_layers_outside_the_paper_model():
    with pytest.raises(ValueError, match="outside 0..12"):
        layer_at_depth(13, 30)


def test_tail_score_on_known_tails():
    projections = torch.arange(3000, dtype=torch.float32)  # each 0.1% tail holds 3 tokens
    labels = torch.full((3000,), NEUTRAL)
    labels[:2] = NEGATIVE
    labels[-3:] = torch.tensor([NEGATIVE, POSITIVE, POSITIVE])
    tails = tail_score(projections, labels, declared("R1").protocol["tail_quantile"])
    assert (tails.low_count, tails.high_count) == (3, 3)
    assert (tails.low_label, tails.low_share) == (NEGATIVE, pytest.approx(2 / 3))
    assert (tails.high_label, tails.high_share) == (POSITIVE, pytest.approx(2 / 3))
    assert tails.score == pytest.approx(2 / 3)


def test_tail_score_counts_neutral_tokens_and_ignores_tail_orientation():
    projections = torch.linspace(-1, 1, 1000)
    labels = torch.full((1000,), NEUTRAL)
    assert tail_score(projections, labels, 0.001).score == 0.0
    labels[0], labels[-1] = POSITIVE, POSITIVE  # the metric does not ask the low tail to be negative
    tails = tail_score(projections, labels, quantile=0.002)
    assert tails.low_label == tails.high_label == POSITIVE
    assert tails.score == pytest.approx(0.5)


def test_tail_score_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must be equal 1-D"):
        tail_score(torch.zeros(5), torch.zeros(4, dtype=torch.long), 0.001)


def test_auroc_orders_positive_above_negative():
    labels = torch.tensor([NEGATIVE, NEGATIVE, NEUTRAL, POSITIVE, POSITIVE])
    assert auroc(torch.tensor([0.0, 1.0, 99.0, 2.0, 3.0]), labels) == 1.0
    assert auroc(torch.tensor([3.0, 2.0, -99.0, 1.0, 0.0]), labels) == 0.0
    assert auroc(torch.tensor([0.0, 2.0, 5.0, 1.0, 3.0]), labels) == 0.75
    with pytest.raises(ValueError, match="both positive and negative"):
        auroc(torch.zeros(3), torch.tensor([POSITIVE, NEUTRAL, POSITIVE]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.sampled_from([NEGATIVE, NEUTRAL, POSITIVE])), min_size=2, max_size=40))
def test_auroc_equals_sklearns_roc_auc_with_ties(items):
    """The rank (Mann-Whitney) AUROC is sklearn's area under the ROC curve, ties included."""
    from sklearn.metrics import roc_auc_score

    values = torch.tensor([float(v) for v, _ in items])
    labels = torch.tensor([label for _, label in items])
    kept = labels != NEUTRAL
    assume(bool((labels[kept] == POSITIVE).any()) and bool((labels[kept] == NEGATIVE).any()))
    expected = roc_auc_score((labels[kept] == POSITIVE).numpy(), values[kept].double().numpy())
    assert auroc(values, labels) == pytest.approx(expected, abs=1e-12)


def test_auroc_rejects_non_finite_projections():
    with pytest.raises(ValueError, match="finite"):
        auroc(torch.tensor([0.0, float("nan")]), torch.tensor([NEGATIVE, POSITIVE]))


def test_cosine_projections_ignore_scale():
    generator = torch.Generator().manual_seed(0)
    resid, direction = torch.randn(7, 16, generator=generator), torch.randn(16, generator=generator)
    cosines = cosine_projections(resid, direction)
    assert torch.allclose(cosines, torch.nn.functional.cosine_similarity(resid, direction[None], dim=-1), atol=1e-6)
    assert torch.allclose(cosine_projections(3 * resid, 0.1 * direction), cosines, atol=1e-6)


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_residuals_at_match_an_unpadded_forward(tiny, layer):
    texts = ["a truly wonderful film", "bad", "it 's not the worst movie , but it is close"]
    residuals = residuals_at(tiny.bridge, texts, layer, prepend_bos=True, batch_size=2)
    for text, rows in zip(texts, residuals):
        tokens = tiny.bridge.to_tokens(text, prepend_bos=True)
        expected = residual_stream(tiny.bridge, tokens)[layer, 0, 1:]
        assert rows.shape == expected.shape
        assert torch.allclose(rows, expected, atol=1e-4)


def _corpus(n_sentences: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 12, (n_sentences,), generator=generator)
    ids = torch.repeat_interleave(torch.arange(n_sentences), lengths)
    projections = torch.randn(len(ids), generator=generator)
    projections[:30] = projections[0]  # a run of ties at one value, as repeated contexts give
    projections[-20:] = projections[-1]
    labels = torch.randint(-1, 2, (len(ids),), generator=generator)
    return projections, labels, ids


@pytest.mark.parametrize("quantile", [0.001, 0.01, 0.05])
def test_count_weighted_statistics_equal_the_resampled_corpus(quantile):
    projections, labels, ids = _corpus(300)
    counts = torch.randint(0, 3, (5, 300), generator=torch.Generator().manual_seed(1)).double()
    counts[0] = 1
    tails = tail_score_of_counts(projections, labels, ids, quantile)(counts)
    areas = auroc_of_counts(projections, labels, ids)(counts)
    for row in range(5):
        tokens = torch.repeat_interleave(torch.arange(len(ids)), counts[row].long()[ids])  # sentences drawn whole
        assert float(tails[row]) == pytest.approx(tail_score(projections[tokens], labels[tokens], quantile).score, abs=1e-12)
        assert float(areas[row]) == pytest.approx(auroc(projections[tokens], labels[tokens]), abs=1e-12)


def test_by_sentence_resamples_whole_sentences():
    projections, labels, ids = _corpus(200)
    estimate = by_sentence(auroc_of_counts(projections, labels, ids), 200, resamples=300)
    assert estimate.value == pytest.approx(auroc(projections, labels))
    assert estimate.ci_low < estimate.value < estimate.ci_high
    assert (estimate.n, estimate.unit, estimate.resamples) == (200, "sentences", 300)
    # sentences of equal length: every resample of whole sentences has the corpus's token count
    equal = torch.repeat_interleave(torch.arange(50), 4)
    size = by_sentence(lambda counts: counts @ torch.bincount(equal).double(), 50, resamples=100)
    assert size.value == size.ci_low == size.ci_high == 200


def test_by_sentence_is_seeded_by_the_session():
    projections, labels, ids = _corpus(100)
    statistic = tail_score_of_counts(projections, labels, ids, 0.02)
    with seeded(3):
        first = by_sentence(statistic, 100, resamples=200)
    with seeded(3):
        assert by_sentence(statistic, 100, resamples=200) == first
    with seeded(4):
        assert by_sentence(statistic, 100, resamples=200) != first
    assert first.value == pytest.approx(tail_score(projections, labels, 0.02).score)


def test_of_drawn_units_counts_any_draws_and_keeps_trailing_axes():
    weights = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]], dtype=torch.float64)
    of_index = of_drawn_units(lambda counts: counts @ weights, 4)  # [r, 2]: two statistics at once
    assert of_index(torch.arange(4)).tolist() == [10.0, 100.0]  # the data: [trailing]
    leave_one_out = torch.tensor([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])  # a jackknife: n − 1 drawn
    assert of_index(leave_one_out).tolist() == [[9.0, 90.0], [8.0, 80.0], [7.0, 70.0], [6.0, 60.0]]
    drawn = torch.randint(0, 4, (3, 60, 4), generator=torch.Generator().manual_seed(0))  # more rows than a chunk
    assert torch.equal(of_index(drawn), weights[drawn].sum(-2))
    assert of_drawn_units(lambda counts: counts.sum(1), 4)(torch.arange(4)).shape == ()
