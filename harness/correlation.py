"""Correlational evaluation of a direction on natural text (paper §5.4).

Every token of a corpus is projected onto a direction as a cosine similarity (the residual vector is
normalised too, as in the authors' ``utils/neuroscope.py``) and compared with token sentiment labels:

- ``tail_score``: the paper's metric. The tails are the tokens at or below the 0.1% quantile and at
  or above the 99.9% quantile of all projections; in each tail, the share of its most frequent
  non-neutral label (neutral tokens stay in the denominator); the score averages the two tails. The
  paper labelled a 20-bin stratified sample with GPT-4; with a lexicon every token is labelled, so
  the tails are used whole. The metric does not ask which label each tail holds; ``TailScore``
  records it so that a reader can check that the low tail is negative and the high tail positive.
- ``auroc``: the area under the ROC curve separating positive from negative tokens by projection
  (neutral tokens left out); 0.5 is chance, 1 a perfect + = positive ordering.

``residuals_at`` reads a corpus's residuals at one layer running only the blocks before it, batched by
length. Layers are given for gpt2-small's 12 in the paper; ``layer_at_depth`` carries one to another
model at the same fraction of depth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness import hook_names
from harness.forward import activations
from harness.interventions import unit
from harness.lexicon import NEUTRAL, POSITIVE
from harness.tokens import tokenize_padded

PAPER_N_LAYERS = 12  # gpt2-small, where the paper ran §5.4-§5.6
TAIL_QUANTILE = 0.001


def layer_at_depth(paper_layer: int, n_layers: int, paper_n_layers: int = PAPER_N_LAYERS) -> int:
    """The residual boundary at the same fraction of depth as ``paper_layer`` of ``paper_n_layers``
    (rounded half up, at least 1 when the paper's layer is): layer 1 of 12 is layer 3 of 30."""
    if not 0 <= paper_layer <= paper_n_layers:
        raise ValueError(f"paper layer {paper_layer} is outside 0..{paper_n_layers}")
    layer = int(paper_layer * n_layers / paper_n_layers + 0.5)
    return max(layer, 1) if paper_layer >= 1 else layer


def residuals_at(
    bridge, texts: Sequence[str], layer: int, prepend_bos: bool, batch_size: int = 64
) -> list[Float[Tensor, "tokens d_model"]]:
    """Per text, the residual stream at boundary ``layer`` of each of its tokens, BOS left out.
    Only blocks before the layer run; texts are batched by token length (left-padded, masked)."""
    n_layers = bridge.cfg.n_layers
    name = hook_names.resid(n_layers, layer)
    lengths = [bridge.to_tokens(text, prepend_bos=prepend_bos, truncate=False).shape[-1] for text in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    out: list[Tensor | None] = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        tokens, mask = tokenize_padded(bridge, [texts[i] for i in batch], prepend_bos)
        resid = activations(bridge, tokens, [name], mask, stop_at_layer=layer + 1 if layer < n_layers else None)[name]
        for row, i in enumerate(batch):
            out[i] = resid[row, tokens.shape[1] - lengths[i] + int(prepend_bos):]
    return out


def cosine_projections(
    resid: Float[Tensor, "n d_model"], direction: Float[Tensor, "d_model"]
) -> Float[Tensor, "n"]:
    """cos(x, d) for every row x: the paper's "activation" for natural-text tokens."""
    return unit(resid.float()) @ unit(direction.float())


@dataclass(frozen=True)
class TailScore:
    score: float  # mean of the two tails' majority non-neutral shares
    low_share: float
    high_share: float
    low_label: int  # the majority non-neutral label of each tail (NEUTRAL if a tail has none)
    high_label: int
    low_count: int
    high_count: int


def tail_score(
    projections: Float[Tensor, "n"], labels: Int[Tensor, "n"], quantile: float = TAIL_QUANTILE
) -> TailScore:
    """§5.4's metric over the tails at ``quantile`` and ``1 - quantile`` of ``projections``."""
    if projections.shape != labels.shape or projections.dim() != 1:
        raise ValueError(f"projections {tuple(projections.shape)} and labels {tuple(labels.shape)} must be equal 1-D")
    values = projections.double()
    low_cut, high_cut = torch.quantile(values, torch.tensor([quantile, 1 - quantile], dtype=values.dtype))
    low = _majority_share(labels[values <= low_cut])
    high = _majority_share(labels[values >= high_cut])
    return TailScore((low[0] + high[0]) / 2, low[0], high[0], low[1], high[1], low[2], high[2])


def _majority_share(labels: Int[Tensor, "k"]) -> tuple[float, int, int]:
    counts = Counter(int(x) for x in labels if int(x) != NEUTRAL)
    if not counts:
        return 0.0, NEUTRAL, len(labels)
    label, count = max(sorted(counts.items()), key=lambda item: item[1])
    return count / len(labels), label, len(labels)


def auroc(projections: Float[Tensor, "n"], labels: Int[Tensor, "n"]) -> float:
    """AUROC of projections separating POSITIVE (score high) from NEGATIVE tokens; neutral ignored."""
    from sklearn.metrics import roc_auc_score

    keep = labels != NEUTRAL
    target = (labels[keep] == POSITIVE).numpy()
    if target.all() or not target.any():
        raise ValueError("AUROC needs both positive and negative tokens")
    return float(roc_auc_score(target, projections[keep].double().numpy()))

