"""harness.negation: the tracked word's token, the §5.6 flip arithmetic, and the control sentences."""

from __future__ import annotations

import re

import pytest
import torch

from harness.negation import CONTROL_SENTENCES, NegationFlips, word_token_position
from harness.toy_movie_review import paper_reference

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
