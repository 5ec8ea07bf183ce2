"""The natural-text corpus of §5.4, projected onto the early-layer directions and labelled per token.

The paper projected OpenWebText tokens and had GPT-4 label a sample; offline, the corpus is a seeded
subsample of the SST-2 train sentences (``sample_corpus``) and every token takes its word's VADER
label (``harness/datasets/lexicon.py``). ``project_corpus`` reads each sentence's residuals at the early layer
(BOS and padding left out), checks that the model's tokens are the tokenizer's (so each label sits on
its own token), projects them onto every direction as a cosine, and adds the chance spread: the AUROC
of ``null_directions`` seeded random directions (``random_null_aurocs``), unoriented like the
paper's random baseline (a random direction's sign is not fitted to the labels, so its AUROC spreads
around 0.5 on both sides), seeded by the session's seed. The corpus size and seed, the tail quantile,
the null's size and R1.auroc's floor and null quantile are R1's declared protocol
(``harness.verdicts.declared.NATURAL_TEXT_PROTOCOL``), passed in by the fixture.

``CorpusProjections`` holds every token's projection, label and sentence, and gives each method's
tail score and AUROC as estimates whose CI resamples sentences (``harness.experiments.correlation.by_sentence``),
under the session's seed, computed once and shared by the claims and the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.experiments.correlation import (
    auroc, auroc_of_counts, by_sentence, cosine_projections, residuals_at, tail_score_of_counts,
)
from harness.experiments.early_directions import EarlyDirections
from harness.datasets.lexicon import VaderLabeller
from harness.datasets.sst import SSTSplit
from harness.measures.statistics import SENTENCE_RESAMPLES, Estimate, seeded


@dataclass(frozen=True)
class CorpusSample:
    texts: list[str]
    description: str


def sample_corpus(split: SSTSplit, size: int, seed: int) -> CorpusSample:
    """``size`` sentences of ``split`` (all if it has fewer), drawn without replacement under ``seed``
    (the corpus is data: the same sentences under every ``--seeds`` seed) and kept in file order."""
    rng = np.random.default_rng(seed)
    count = min(size, len(split))
    texts = [split.sentences[i] for i in sorted(rng.choice(len(split), size=count, replace=False))]
    return CorpusSample(texts, f"SST-2 train ({split.path.name}), {count} of {len(split)} sentences (seed {seed})")


def aligned_token_labels(
    tokenizer, labeller: VaderLabeller, texts: Sequence[str], residuals: Sequence[Float[Tensor, "tokens d_model"]]
) -> Int[Tensor, "n_tokens"]:
    """Every token's lexicon label, text after text; raises where a text's residual rows are not its
    tokenizer tokens one for one (a label would land on another token)."""
    labels = []
    for text, rows in zip(texts, residuals):
        ids, text_labels = labeller.token_labels(tokenizer, text)
        if len(ids) != rows.shape[0]:
            raise ValueError(f"the bridge and the tokenizer disagree on the tokens of {text!r}")
        labels += text_labels
    return torch.tensor(labels)


def null_directions(count: int, d_model: int, seed: int = 0) -> Float[Tensor, "count d_model"]:
    """``count`` random Gaussian directions (not normalised; every projection here is a cosine), seeded."""
    return torch.randn(count, d_model, generator=torch.Generator().manual_seed(seed))


def random_null_aurocs(
    resid: Float[Tensor, "n d_model"], labels: Int[Tensor, "n"], count: int, seed: int = 0,
) -> Float[Tensor, "count"]:
    """The AUROC of each of ``count`` random Gaussian directions (seeded), each with the sign it was
    drawn with (unoriented): chance's spread on this corpus."""
    null = null_directions(count, resid.shape[1], seed)
    return torch.tensor([auroc(cosine_projections(resid, d), labels) for d in null])


def project_corpus(bridge, tokenizer, texts: Sequence[str], layer: int, directions: Mapping[str, Tensor],
                   labeller: VaderLabeller, prepend_bos: bool, null_directions: int, null_seed: int = 0) -> dict:
    """The cached payload: ``labels`` [n_tokens], ``sentence_lengths`` [n_texts] (tokens per text, in
    order), ``projections`` (method -> [n_tokens]) and ``random_null_auroc`` [null_directions]
    (seeded with ``null_seed``), over every token of ``texts`` at boundary ``layer``."""
    resid = residuals_at(bridge, texts, layer, prepend_bos)
    labels = aligned_token_labels(tokenizer, labeller, texts, resid)
    stacked = torch.cat(resid)
    return {"labels": labels, "sentence_lengths": torch.tensor([rows.shape[0] for rows in resid]),
            "projections": {m: cosine_projections(stacked, d) for m, d in directions.items()},
            "random_null_auroc": random_null_aurocs(stacked, labels, null_directions, seed=null_seed)}


@dataclass(frozen=True)
class CorpusProjections:
    """Cosine projections of every corpus token (BOS and padding left out) and its lexicon label."""

    corpus: str
    n_sentences: int
    labels: torch.Tensor  # [n_tokens] POSITIVE / NEUTRAL / NEGATIVE
    projections: dict[str, torch.Tensor]  # method -> [n_tokens]
    random_null_auroc: torch.Tensor  # AUROC of each of the protocol's seeded random directions
    early: EarlyDirections  # the directions projected onto
    labeller: str  # the labeller's description
    sentence_lengths: torch.Tensor  # [n_sentences] tokens per sentence, in the order of ``labels``
    tail_quantile: float  # R1's tails: at or below this quantile of the projections, at or above 1 − it
    auroc_floor: float  # R1.auroc's threshold: this floor, or the null's ``null_quantile`` quantile if higher
    null_quantile: float
    seed: int = 0  # the session's seed: the null's directions and the sentence bootstrap
    resamples: int = SENTENCE_RESAMPLES
    _estimates: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def sentence_ids(self) -> torch.Tensor:
        """Each token's sentence (the bootstrap's unit)."""
        return torch.repeat_interleave(torch.arange(len(self.sentence_lengths)), self.sentence_lengths)

    def _estimate(self, statistic: str, method: str) -> Estimate:
        if (statistic, method) not in self._estimates:
            projections, ids = self.projections[method], self.sentence_ids
            counts = (tail_score_of_counts(projections, self.labels, ids, self.tail_quantile) if statistic == "tail_score"
                      else auroc_of_counts(projections, self.labels, ids))
            with seeded(self.seed):
                self._estimates[statistic, method] = by_sentence(counts, len(self.sentence_lengths), self.resamples)
        return self._estimates[statistic, method]

    def tail_score(self, method: str) -> Estimate:
        """§5.4's tail score of ``method``'s projection, CI over sentences."""
        return self._estimate("tail_score", method)

    def auroc(self, method: str) -> Estimate:
        """The AUROC of ``method``'s projection, lexicon-positive vs -negative tokens, CI over sentences."""
        return self._estimate("auroc", method)

    def null_range(self) -> tuple[float, float, float]:
        """The random-direction null's 2.5%, 50% and 97.5% quantiles."""
        low, median, high = torch.quantile(self.random_null_auroc.double(),
                                           torch.tensor([0.025, 0.5, 0.975], dtype=torch.float64)).tolist()
        return low, median, high

    @property
    def auroc_threshold(self) -> float:
        """R1.auroc's threshold: ``auroc_floor``, or the null's ``null_quantile`` quantile where that is higher."""
        return max(self.auroc_floor, float(torch.quantile(self.random_null_auroc.double(), self.null_quantile)))
