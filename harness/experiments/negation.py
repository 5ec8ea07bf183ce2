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
``NegationResults.movement`` is N1's statistic: the mean over sentence pairs of toward_opposite
(negated) − toward_opposite (control), with its studentized bootstrap CI (docs/calibration.md) under the
session's seed. The unit is the distinct pair of prefixes ending at the tracked word (``distinct``): a
causal model reads nothing after the tracked token, so the five "You're nothing short of X." sentences
(tracked at "short") are one measurement, as are "I don't want this." and "I don't want to be with you";
each is counted once (22 units of the 27 sentences).

``tracked_word_projections`` runs the negated and the control sentences in one left-padded batch
(``word_positions`` finds each tracked word's column there) and projects the tracked word's residual
at every layer; ``negation_experiment`` assembles the ``NegationResults`` the claims and the report read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.experiments.correlation import cosine_projections, layer_at_depth
from harness.interventions.forward import residual_stream
from harness.measures.intervals import interval
from harness.measures.statistics import Estimate, bootstrap, seeded
from harness.datasets.tokens import tokenize_padded
from harness.models.paper import LATE_PAPER_LAYER

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


def word_positions(tokenizer, texts: Sequence[str], words: Sequence[str], mask: Int[Tensor, "batch pos"],
                   prepend_bos: bool) -> Int[Tensor, "batch"]:
    """Per text, the column of its tracked word's (last) token in the left-padded batch ``mask`` marks."""
    return torch.tensor([mask.shape[1] - int(mask[i].sum()) + int(prepend_bos)
                         + word_token_position(tokenizer, text, word)
                         for i, (text, word) in enumerate(zip(texts, words))])


def tracked_word_projections(bridge, tokenizer, texts: Sequence[str], words: Sequence[str],
                             directions: Mapping[str, Tensor], prepend_bos: bool) -> dict[str, Float[Tensor, "n layer"]]:
    """Per direction, the cosine projection of each text's tracked word at every residual boundary
    (one padded batch, one forward)."""
    tokens, mask = tokenize_padded(bridge, texts, prepend_bos)
    positions = word_positions(tokenizer, texts, words, mask, prepend_bos)
    resid = residual_stream(bridge, tokens, mask)[:, torch.arange(len(texts)), positions]  # [layer, n, d]
    return {m: cosine_projections(resid.reshape(-1, resid.shape[-1]), d).reshape(resid.shape[:2]).T
            for m, d in directions.items()}  # [n, layer]


@dataclass(frozen=True)
class NegationResults:
    """Per method, the tracked words' projections at every layer, for negated and control sentences."""

    early_layer: int
    late_layer: int
    sentences: tuple[str, ...]
    words: tuple[str, ...]
    negated: dict[str, torch.Tensor]  # method -> [n_sentences, n_layers + 1]
    control: dict[str, torch.Tensor]
    corpus_mean: dict[str, float]
    corpus_std: dict[str, float]
    seed: int = 0  # the session's seed (the bootstraps)

    def flips(self, method: str, which: str = "negated") -> NegationFlips:
        values = getattr(self, which)[method]
        return NegationFlips(values[:, self.early_layer], values[:, self.late_layer],
                             self.corpus_mean[method], self.corpus_std[method])

    def distinct(self) -> Tensor:
        """The first sentence of each distinct (negated, control) pair of prefixes ending at the tracked
        word: what a causal model's reading at that token can differ on (module docstring)."""
        keys = [(_prefix(s, w), _prefix(CONTROL_SENTENCES[s], w)) for s, w in zip(self.sentences, self.words)]
        return torch.tensor(sorted({key: i for i, key in reversed(list(enumerate(keys)))}.values()))

    def movement(self, method: str, which: str = "paired") -> Estimate:
        """Mean movement toward the opposite sign over the distinct sentences, with its studentized
        bootstrap CI over them: ``paired`` = negated − control (N1's statistic), or ``negated`` /
        ``control`` alone."""
        negated, control = self.flips(method).toward_opposite, self.flips(method, "control").toward_opposite
        values = {"paired": negated - control, "negated": negated, "control": control}[which][self.distinct()]
        with seeded(self.seed):
            return interval(lambda v: v.mean(-1), values.double(), method="studentized",
                            unit="distinct sentence pairs" if which == "paired" else "distinct sentences")

    def oriented_mean(self, method: str, which: str) -> tuple[Tensor, Tensor, Tensor]:
        """Per layer, the mean over sentences of the tracked word's projection − corpus mean, signed by
        its side at the early layer, and its bootstrap CI over sentences (the figure's curves)."""
        values = getattr(self, which)[method].double()
        side = torch.sign(values[:, self.early_layer] - self.corpus_mean[method])[:, None]
        oriented = (side * (values - self.corpus_mean[method])).T  # [layer, sentence]
        with seeded(self.seed):
            bounds = [bootstrap(lambda v: v.mean(-1), row, unit="sentences") for row in oriented]
        return (oriented.mean(1), torch.tensor([b.ci_low for b in bounds]), torch.tensor([b.ci_high for b in bounds]))


def _prefix(sentence: str, word: str) -> str:
    """``sentence`` up to the end of the tracked ``word``'s first occurrence (as a word)."""
    found = re.search(rf"\b{re.escape(word)}\b", sentence)
    if found is None:
        raise ValueError(f"the tracked word {word!r} is not in {sentence!r}")
    return sentence[:found.end()]


def negation_experiment(bridge, tokenizer, examples: Mapping[str, str], directions: Mapping[str, Tensor],
                        early_layer: int, corpus_projections: Mapping[str, Tensor],
                        prepend_bos: bool, seed: int = 0) -> NegationResults:
    """§5.6 on ``examples`` (negated sentence -> tracked word) and their ``CONTROL_SENTENCES``, with the
    corpus statistics of ``corpus_projections`` (method -> the corpus's early-layer projections)."""
    sentences, words = tuple(examples), tuple(examples.values())
    texts = [*sentences, *(CONTROL_SENTENCES[s] for s in sentences)]  # negated and control in one batch
    projected = tracked_word_projections(bridge, tokenizer, texts, words + words, directions, prepend_bos)
    negated, control = ({m: p[rows] for m, p in projected.items()}
                        for rows in (slice(0, len(sentences)), slice(len(sentences), None)))
    return NegationResults(
        early_layer, layer_at_depth(LATE_PAPER_LAYER, bridge.cfg.n_layers), sentences, words, negated, control,
        {m: float(v.mean()) for m, v in corpus_projections.items()},
        {m: float(v.std()) for m, v in corpus_projections.items()}, seed,
    )
