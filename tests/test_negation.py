"""harness.experiments.negation: the tracked word's token, the §5.6 flip arithmetic, the control sentences, and the
experiment on a tiny model: each tracked word's column in the padded batch of negated and control
sentences, its projection at every layer equal to an unpadded forward, the early and late layers."""

from __future__ import annotations

import re

import pytest
import torch

from harness.experiments.correlation import cosine_projections
from harness.interventions.forward import residual_stream
from harness.experiments.negation import (
    CONTROL_SENTENCES, NegationFlips, NegationResults, negation_experiment, tracked_word_projections, word_positions, word_token_position,
)
from harness.datasets.prompts import paper_reference
from harness.measures.statistics import bootstrap, seeded
from harness.datasets.tokens import tokenize_padded

NEGATORS = re.compile(r"n't\b|\b(not|never|no|hardly|less than|nothing|failed)\b", re.IGNORECASE)


def test_word_token_position_is_the_words_last_token(tokenizer):
    text = "It's hardly a triumph in my eyes."
    position = word_token_position(tokenizer, text, "triumph")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids[:position + 1]).endswith("triumph")
    assert not tokenizer.decode(ids[:position]).endswith("triumph")


def test_word_token_position_matches_whole_words_only(tokenizer):
    text = "I likely like you."
    position = word_token_position(tokenizer, text, "like")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids[:position + 1]) == "I likely like"
    with pytest.raises(ValueError, match="does not occur"):
        word_token_position(tokenizer, "I dislike you.", "like")


def test_flip_arithmetic():
    # corpus mean 0: a positive word moving down flips, one moving up does not; a negative word moving up flips
    flips = NegationFlips(initial=torch.tensor([0.4, 0.4, -0.2]), final=torch.tensor([-0.4, 0.6, 0.0]),
                          corpus_mean=0.0, corpus_std=0.1)
    assert torch.allclose(flips.change, torch.tensor([-0.8, 0.2, 0.2]))
    assert torch.allclose(flips.flip_size, torch.tensor([1.0, -0.25, 0.5]))
    assert flips.flip_percent == pytest.approx(200 / 3)
    assert torch.allclose(flips.toward_opposite, torch.tensor([0.8, -0.2, 0.2]))
    assert torch.allclose(flips.z_scores, torch.tensor([8.0, 2.0, 2.0]))
    summary = flips.summary()
    assert summary["median_flip_size"] == pytest.approx(0.5)
    assert summary["mean_change"] == pytest.approx(-0.4 / 3)


def test_controls_keep_the_word_and_drop_the_negation():
    examples = paper_reference()["negation_examples"]
    assert set(CONTROL_SENTENCES) == set(examples)
    for sentence, word in examples.items():
        control = CONTROL_SENTENCES[sentence]
        assert re.search(rf"\b{word}\b", control), control
        assert NEGATORS.search(sentence), sentence
        assert not NEGATORS.search(control), control


def examples(n: int) -> dict[str, str]:
    return dict(list(paper_reference()["negation_examples"].items())[:n])


@pytest.mark.parametrize("prepend_bos", [True, False])
def test_word_positions_point_at_the_word_in_the_padded_batch(gpt2, prepend_bos):
    sentences = examples(6)
    texts, words = [*sentences, *sentences.values()], [*sentences.values(), *sentences.values()]
    tokens, mask = tokenize_padded(gpt2.bridge, texts, prepend_bos)
    positions = word_positions(gpt2.tokenizer, texts, words, mask, prepend_bos)
    for row, (text, word, position) in enumerate(zip(texts, words, positions.tolist())):
        own = gpt2.tokenizer(text, add_special_tokens=False)["input_ids"]
        index = word_token_position(gpt2.tokenizer, text, word)
        assert mask[row, position] == 1 and int(tokens[row, position]) == own[index]
        assert position == tokens.shape[1] - 1 - (len(own) - 1 - index)  # counted from the left-padded end


def test_tracked_word_projections_equal_an_unpadded_forward(gpt2):
    sentences = examples(4)
    texts, words = list(sentences), list(sentences.values())
    generator = torch.Generator().manual_seed(0)
    directions = {"a": torch.randn(gpt2.bridge.cfg.d_model, generator=generator),
                  "b": torch.randn(gpt2.bridge.cfg.d_model, generator=generator)}
    projected = tracked_word_projections(gpt2.bridge, gpt2.tokenizer, texts, words, directions, prepend_bos=True)
    for row, (text, word) in enumerate(zip(texts, words)):
        resid = residual_stream(gpt2.bridge, gpt2.bridge.to_tokens(text, prepend_bos=True))[:, 0]
        position = 1 + word_token_position(gpt2.tokenizer, text, word)
        for name, direction in directions.items():
            assert projected[name].shape == (len(texts), gpt2.n_layers + 1)
            assert torch.allclose(projected[name][row], cosine_projections(resid[:, position], direction), atol=1e-4)


def test_negation_experiment_splits_negated_and_control(gpt2):
    sentences = examples(5)
    generator = torch.Generator().manual_seed(1)
    directions = {"kmeans": torch.randn(gpt2.bridge.cfg.d_model, generator=generator)}
    corpus = {"kmeans": torch.tensor([0.1, 0.3, 0.2, 0.6])}
    results = negation_experiment(gpt2.bridge, gpt2.tokenizer, sentences, directions, 1, corpus, prepend_bos=True)
    assert (results.early_layer, results.late_layer) == (1, 2)  # layers 1 and 10 of 12 on a 2-layer model
    assert results.sentences == tuple(sentences) and results.words == tuple(sentences.values())
    controls = [CONTROL_SENTENCES[s] for s in sentences]
    expected = tracked_word_projections(gpt2.bridge, gpt2.tokenizer, controls, list(sentences.values()), directions,
                                        prepend_bos=True)["kmeans"]
    assert torch.allclose(results.control["kmeans"], expected, atol=1e-4)
    assert results.negated["kmeans"].shape == (5, 3)
    assert results.corpus_mean["kmeans"] == pytest.approx(0.3)
    assert results.corpus_std["kmeans"] == pytest.approx(float(corpus["kmeans"].std()))
    flips = results.flips("kmeans", "control")
    assert torch.equal(flips.initial, results.control["kmeans"][:, 1])
    assert torch.equal(flips.final, results.control["kmeans"][:, 2])


def test_movement_is_the_paired_mean_over_distinct_prefixes_with_a_studentized_ci():
    """N1's unit: a causal model reads nothing after the tracked word, so sentences sharing the
    (negated, control) prefixes up to it are one measurement, counted once (issue 25, item 3)."""
    examples = paper_reference()["negation_examples"]
    sentences, words = tuple(examples), tuple(examples.values())
    generator = torch.Generator().manual_seed(2)
    negated = {"kmeans": torch.randn(len(sentences), 5, generator=generator)}
    control = {"kmeans": torch.randn(len(sentences), 5, generator=generator)}
    results = NegationResults(1, 3, sentences, words, negated, control, {"kmeans": 0.1}, {"kmeans": 1.0}, seed=4)
    distinct = results.distinct()
    keys = {(s[:s.index(w) + len(w)], CONTROL_SENTENCES[s][:CONTROL_SENTENCES[s].index(w) + len(w)])
            for s, w in zip(sentences, words)}
    assert len(distinct) == len(keys) < len(sentences)
    paired = (results.flips("kmeans").toward_opposite - results.flips("kmeans", "control").toward_opposite)[distinct]
    movement = results.movement("kmeans")
    assert movement.value == pytest.approx(float(paired.mean()))
    assert (movement.n, movement.unit) == (len(keys), "distinct sentence pairs")
    assert movement.ci_low <= movement.value <= movement.ci_high and "studentized" in movement.method
    with seeded(0):
        assert results.movement("kmeans") == movement  # its own seed, whatever the caller's
    assert results.movement("kmeans", "control").value == pytest.approx(
        float(results.flips("kmeans", "control").toward_opposite[distinct].mean()))
    mean, low, high = results.oriented_mean("kmeans", "negated")
    side = torch.sign(negated["kmeans"][:, 1] - 0.1)[:, None]
    assert torch.allclose(mean, (side * (negated["kmeans"] - 0.1)).mean(0).double())
    assert bool((low <= mean).all() and (mean <= high).all()) and mean[1] > 0
