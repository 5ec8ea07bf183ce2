"""The offline stand-in for the paper's GPT-4 labeller (§5.4, §5.5): VADER's human-rated lexicon.

The paper asked GPT-4 to label tokens (in context) and steered continuations as Positive, Neutral or
Negative. Offline, the suite labels them with VADER (Hutto & Gilbert 2014, package ``vaderSentiment``):
a lexicon of ~7,500 words whose valence is the mean of ten human ratings on a −4..+4 scale, and a
rule-based sentence score, ``compound`` in [−1, 1].

- Token label: the valence of the whitespace-delimited word the token belongs to (lower-cased,
  surrounding punctuation stripped): positive if valence >= +1, negative if <= −1, neutral
  otherwise or when the word is not in the lexicon. A threshold of 1 keeps words the raters found
  at least mildly sentimental ("fine" 0.8 and "ok"-like weak words fall to neutral). A token has no
  context beyond its word, unlike the paper's GPT-4 prompt.
- Text label (continuations): VADER's documented thresholds on ``compound``: positive if >= 0.05,
  negative if <= −0.05, neutral in between. The compound score handles negation and intensifiers.
"""

from __future__ import annotations

import string
from typing import Sequence

POSITIVE, NEUTRAL, NEGATIVE = 1, 0, -1
LABEL_NAMES = {POSITIVE: "positive", NEUTRAL: "neutral", NEGATIVE: "negative"}
WORD_VALENCE_THRESHOLD = 1.0  # |mean human valence| on VADER's −4..+4 scale
COMPOUND_THRESHOLD = 0.05  # VADER's documented sentence-level cut-off


class VaderLabeller:
    """Positive / neutral / negative labels for words, tokens and texts from VADER."""

    name = "VADER (vaderSentiment 3.3.2 lexicon and compound score)"

    def __init__(self, word_threshold: float = WORD_VALENCE_THRESHOLD, compound_threshold: float = COMPOUND_THRESHOLD):
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.word_threshold = word_threshold
        self.compound_threshold = compound_threshold
        self._analyzer = SentimentIntensityAnalyzer()

    def describe(self) -> str:
        return (f"{self.name}; token label from its word's lexicon valence (positive >= +{self.word_threshold:g}, "
                f"negative <= -{self.word_threshold:g}, else or absent neutral); text label from the compound score "
                f"(positive >= {self.compound_threshold:g}, negative <= -{self.compound_threshold:g})")

    def word_valence(self, word: str) -> float:
        """The lexicon valence of ``word`` (0.0 if it is not in the lexicon)."""
        cleaned = word.lower().strip(string.punctuation) or word.lower()
        return self._analyzer.lexicon.get(cleaned, 0.0)

    def word_label(self, word: str) -> int:
        return _threshold(self.word_valence(word), self.word_threshold)

    def compound(self, text: str) -> float:
        return self._analyzer.polarity_scores(text)["compound"]

    def text_label(self, text: str) -> int:
        return _threshold(self.compound(text), self.compound_threshold)

    def token_labels(self, tokenizer, text: str) -> tuple[list[int], list[int]]:
        """``text``'s token ids (no special tokens) and each token's label, from the word it belongs to."""
        ids, words = token_words(tokenizer, text)
        return ids, [self.word_label(word) for word in words]


def _threshold(score: float, threshold: float) -> int:
    return POSITIVE if score >= threshold else NEGATIVE if score <= -threshold else NEUTRAL


def token_words(tokenizer, text: str) -> tuple[list[int], list[str]]:
    """Token ids of ``text`` (no special tokens) and, per token, the whitespace-delimited word holding
    its first non-space character (a token of pure whitespace gets the empty word)."""
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    spans = _word_spans(text)
    words = []
    for start, end in encoding["offset_mapping"]:
        while start < end and text[start].isspace():
            start += 1
        words.append(next((text[a:b] for a, b in spans if a <= start < b), ""))
    return list(encoding["input_ids"]), words


def _word_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, char in enumerate(text + " "):
        if char.isspace() and start is not None:
            spans.append((start, i))
            start = None
        elif not char.isspace() and start is None:
            start = i
    return spans


def label_counts(labels: Sequence[int]) -> dict[str, int]:
    return {LABEL_NAMES[label]: sum(1 for x in labels if x == label) for label in (POSITIVE, NEUTRAL, NEGATIVE)}
