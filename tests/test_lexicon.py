"""harness.datasets.lexicon: the VADER labeller pinned on words, tokens and sentences (§5.4-§5.5 offline labels).

Word valences are VADER's human ratings (good 1.9, bad -2.5, fine 0.8); a word is positive at >= +1,
negative at <= -1. Texts use VADER's compound score with its documented +-0.05 cut-offs, which sees
negation ("not good") and intensifiers.
"""

from __future__ import annotations

import pytest

from harness.datasets.lexicon import NEGATIVE, NEUTRAL, POSITIVE, VaderLabeller, label_counts, token_words


@pytest.fixture(scope="module")
def labeller() -> VaderLabeller:
    return VaderLabeller()


@pytest.mark.parametrize("word, label", [
    ("good", POSITIVE), ("Wonderful", POSITIVE), ("love", POSITIVE), ("great,", POSITIVE),
    ("bad", NEGATIVE), ("terrible", NEGATIVE), ("boring", NEGATIVE), ("(awful)", NEGATIVE),
    ("movie", NEUTRAL), ("the", NEUTRAL), ("fine", NEUTRAL), (",", NEUTRAL), ("", NEUTRAL),
])
def test_word_labels(labeller, word, label):
    assert labeller.word_label(word) == label


def test_word_valence_is_the_lexicon_rating(labeller):
    assert labeller.word_valence("good") == pytest.approx(1.9)
    assert labeller.word_valence("bad") == pytest.approx(-2.5)
    assert labeller.word_valence("fine") == pytest.approx(0.8)
    assert labeller.word_valence("movie") == 0.0


@pytest.mark.parametrize("text, label", [
    ("I loved this movie, it was wonderful.", POSITIVE),
    ("It was awful and boring.", NEGATIVE),
    ("The movie is two hours long.", NEUTRAL),
    ("The movie was not good.", NEGATIVE),
    ("", NEUTRAL),
])
def test_text_labels(labeller, text, label):
    assert labeller.text_label(text) == label


def test_thresholds_are_configurable(labeller):
    strict = VaderLabeller(word_threshold=2.0, compound_threshold=0.9)
    assert labeller.word_label("good") == POSITIVE and strict.word_label("good") == NEUTRAL
    assert strict.text_label("It was good.") == NEUTRAL


def test_token_words_map_every_token_to_its_word(tokenizer):
    text = "it 's an unbearably boring , wonderful film"
    ids, words = token_words(tokenizer, text)
    assert ids == tokenizer.encode(text, add_special_tokens=False)
    assert len(words) == len(ids)
    assert set(words) == set(text.split())
    pieces = [tokenizer.decode([i]).strip() for i in ids]
    for piece, word in zip(pieces, words):
        assert piece in word


def test_token_labels_follow_the_word(labeller, tokenizer):
    text = "a wonderfully terrible film"
    ids, labels = labeller.token_labels(tokenizer, text)
    _, words = token_words(tokenizer, text)
    assert labels == [labeller.word_label(word) for word in words]
    assert POSITIVE in labels and NEGATIVE in labels
    assert label_counts(labels)["neutral"] == words.count("a") + words.count("film")
