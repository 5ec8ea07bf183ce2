"""Negation flips the sentiment projection of the negated word (paper §5.6, ``negation_experiment.py``).

For each of the authors' 27 sentences ("Don't doubt it." → doubt), the tracked word's token is
projected (cosine) onto the early-layer direction at an early and a late residual layer (paper:
layers 1 and 10 of gpt2-small's 12). With ``initial`` the early projection, ``change`` = late −
early and ``mean`` the natural-text corpus mean of the projection (the paper: OpenWebText):

- flip_size = 0.5 · change / (mean − initial); a sentence flips when flip_size > 0, i.e. when the
  projection moves from its side of the corpus mean toward the other side (the opposite sign);
  flip_percent is the share that flip. A flip_size of 1 reflects the word across the mean.
- toward_opposite = change · sign(mean − initial): the signed movement toward the opposite side.
- z = |change| / std of the corpus projections.

A multi-token word is tracked at its last token (the paper's placeholder rule, §3). The suite adds
control sentences: the same words in the same frames with the negation removed, so that a drift
every word undergoes between the two layers is not mistaken for an effect of negation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

# Negated sentence (paper) → the same tracked word with the negation removed (written for the suite).
CONTROL_SENTENCES: dict[str, str] = {
    "Don't doubt it.": "I doubt it.",
    "Don't hesitate.": "I hesitate.",
    "He was less than honorable in his actions.": "He was honorable in his actions.",
    "He's no stranger to success.": "He's a stranger to success.",
    "I am not uncertain.": "I am uncertain.",
    "I am not unclear.": "I am unclear.",
    "I don't find it amusing at all.": "I find it amusing.",
    "I don't like you.": "I like you.",
    "I don't respect that.": "I respect that.",
    "It's hardly a success from my perspective.": "It's a success from my perspective.",
    "It's hardly a triumph in my eyes.": "It's a triumph in my eyes.",
    "It's hardly a victory in my eyes.": "It's a victory in my eyes.",
    "She failed to show any kindness.": "She managed to show kindness.",
    "She was less than truthful in her account.": "She was truthful in her account.",
    "She's no amateur.": "She's an amateur.",
    "She's no novice.": "She's a novice.",
    "That was not a wise choice.": "That was a wise choice.",
    "You never disappoint.": "You always disappoint.",
    "You never fail.": "You always fail.",
    "You're nothing short of a genius.": "You're short of a genius.",
    "You're nothing short of amazing.": "You're short of amazing.",
    "You're nothing short of brilliant.": "You're short of brilliant.",
    "You're nothing short of exceptional.": "You're short of exceptional.",
    "You're nothing short of incredible.": "You're short of incredible.",
    "I don't enjoy this.": "I enjoy this.",
    "I don't want to be with you": "I want to be with you",
    "I don't want this.": "I want this.",
}


def word_token_position(tokenizer, text: str, word: str) -> int:
    """Index, among ``text``'s tokens without special tokens, of the token holding the last character
    of the first whole-word occurrence of ``word``; raises if the word does not occur."""
    match = re.search(rf"\b{re.escape(word)}\b", text)
    if match is None:
        raise ValueError(f"tracked word {word!r} does not occur in {text!r}")
    last_char = match.end() - 1
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return next(i for i, (start, end) in enumerate(offsets) if start <= last_char < end)


@dataclass(frozen=True)
class NegationFlips:
    initial: Float[Tensor, "n"]
    final: Float[Tensor, "n"]
    corpus_mean: float
    corpus_std: float

    @property
    def change(self) -> Float[Tensor, "n"]:
        return self.final - self.initial

    @property
    def flip_size(self) -> Float[Tensor, "n"]:
        return 0.5 * self.change / (self.corpus_mean - self.initial)

    @property
    def flip_percent(self) -> float:
        return 100 * float((self.flip_size > 0).float().mean())

    @property
    def toward_opposite(self) -> Float[Tensor, "n"]:
        return self.change * torch.sign(self.corpus_mean - self.initial)

    @property
    def z_scores(self) -> Float[Tensor, "n"]:
        return self.change.abs() / self.corpus_std

    def summary(self) -> dict[str, float]:
        """The §5.6 numbers: mean raw change, mean |change| z-score, flip_percent, median flip size."""
        return {
            "mean_change": float(self.change.mean()),
            "mean_toward_opposite": float(self.toward_opposite.mean()),
            "mean_z": float(self.z_scores.mean()),
            "flip_percent": self.flip_percent,
            "median_flip_size": float(self.flip_size.median()),
        }
