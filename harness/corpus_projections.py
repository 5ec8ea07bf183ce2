"""The natural-text corpus of §5.4, projected onto the early-layer directions and labelled per token.

The paper projected OpenWebText tokens and had GPT-4 label a sample; offline, the corpus is a seeded
subsample of the SST-2 train sentences (``sample_corpus``) and every token takes its word's VADER
label (``harness/lexicon.py``). ``project_corpus`` reads each sentence's residuals at the early layer
(BOS and padding left out), checks that the model's tokens are the tokenizer's (so each label sits on
its own token), projects them onto every direction as a cosine, and adds the chance spread: the AUROC
of ``RANDOM_NULL_DIRECTIONS`` seeded random directions (``random_null_aurocs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.correlation import auroc, cosine_projections, residuals_at
from harness.early_directions import EarlyDirections
from harness.lexicon import VaderLabeller
from harness.sst import SSTSplit

CORPUS_SENTENCES = 3000  # SST-2 train sentences projected (a seeded subsample, for the time budget)
CORPUS_SEED = 0
RANDOM_NULL_DIRECTIONS = 100  # seeded random directions whose AUROCs show the chance spread


@dataclass(frozen=True)
class CorpusSample:
    texts: list[str]
    description: str


def sample_corpus(split: SSTSplit, size: int = CORPUS_SENTENCES, seed: int = CORPUS_SEED) -> CorpusSample:
    """``size`` sentences of ``split`` (all if it has fewer), drawn without replacement under ``seed``
    and kept in file order."""
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


def random_null_aurocs(
    resid: Float[Tensor, "n d_model"], labels: Int[Tensor, "n"], count: int = RANDOM_NULL_DIRECTIONS,
    seed: int = CORPUS_SEED,
) -> Float[Tensor, "count"]:
    """The AUROC of each of ``count`` random Gaussian directions (seeded): chance's spread on this corpus."""
    null = torch.randn(count, resid.shape[1], generator=torch.Generator().manual_seed(seed))
    return torch.tensor([auroc(cosine_projections(resid, d), labels) for d in null])


def project_corpus(bridge, tokenizer, texts: Sequence[str], layer: int, directions: Mapping[str, Tensor],
                   labeller: VaderLabeller, prepend_bos: bool) -> dict:
    """The cached payload: ``labels`` [n_tokens], ``projections`` (method -> [n_tokens]) and
    ``random_null_auroc`` [RANDOM_NULL_DIRECTIONS], over every token of ``texts`` at boundary ``layer``."""
    resid = residuals_at(bridge, texts, layer, prepend_bos)
    labels = aligned_token_labels(tokenizer, labeller, texts, resid)
    stacked = torch.cat(resid)
    return {"labels": labels,
            "projections": {m: cosine_projections(stacked, d) for m, d in directions.items()},
            "random_null_auroc": random_null_aurocs(stacked, labels)}


@dataclass(frozen=True)
class CorpusProjections:
    """Cosine projections of every corpus token (BOS and padding left out) and its lexicon label."""

    corpus: str
    n_sentences: int
    labels: torch.Tensor  # [n_tokens] POSITIVE / NEUTRAL / NEGATIVE
    projections: dict[str, torch.Tensor]  # method -> [n_tokens]
    random_null_auroc: torch.Tensor  # AUROC of each of RANDOM_NULL_DIRECTIONS seeded random directions
    early: EarlyDirections  # the directions projected onto
    labeller: str  # the labeller's description
