"""Correlational evaluation of a direction on natural text (paper §5.4).

Every token of a corpus is projected onto a direction as a cosine similarity (the residual vector is
normalised too, as in the authors' ``utils/neuroscope.py``) and compared with token sentiment labels:

- ``tail_score``: the paper's metric. The tails are the tokens at or below the ``quantile`` quantile
  (the paper's 0.1%: R1's declared protocol) and at or above the 1 − ``quantile`` quantile of all projections; in each tail, the share of its most frequent
  non-neutral label (neutral tokens stay in the denominator); the score averages the two tails. The
  paper labelled a 20-bin stratified sample with GPT-4; with a lexicon every token is labelled, so
  the tails are used whole. The metric does not ask which label each tail holds; ``TailScore``
  records it so that a reader can check that the low tail is negative and the high tail positive.
- ``auroc``: the area under the ROC curve separating positive from negative tokens by projection
  (neutral tokens left out); 0.5 is chance, 1 a perfect + = positive ordering.

Their CIs resample *word types* (``harness.experiments.corpus_projections``): a lexicon label is a
property of the word, and the tokens of one word type share most of their early-layer residual, so the
word type, not the token or the sentence, is the independent unit. Resampling units (word types,
sentences, items) with replacement and keeping all their tokens is the same as giving every token its
unit's draw count as a weight: ``tail_score_of_counts`` and ``auroc_of_counts`` evaluate the statistics
under such weights for many resamples at once (the order of the tokens by projection is the same in
every resample, so each is a sort done once and cumulative sums; with weights 1 they equal
``tail_score`` and ``auroc``), ``of_drawn_units`` turns drawn unit indices into those counts, and
``by_sentence`` is the percentile bootstrap over units through them (G1 and G3 resample items with it).

``residuals_at`` reads a corpus's residuals at one layer running only the blocks before it, batched by
length. Layers are given for gpt2-small's 12 in the paper; ``layer_at_depth`` carries one to another
model at the same fraction of depth.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.forward import activations
from harness.interventions.edit import unit
from harness.datasets.lexicon import NEGATIVE, NEUTRAL, POSITIVE
from harness.measures.statistics import SENTENCE_RESAMPLES, Estimate, bootstrap
from harness.datasets.tokens import tokenize_padded
from harness.models.paper import NATURAL_TEXT_N_LAYERS

_CHUNK = 50  # resamples evaluated together (memory: chunk × tokens doubles)


def layer_at_depth(paper_layer: int, n_layers: int, paper_n_layers: int = NATURAL_TEXT_N_LAYERS) -> int:
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
    projections: Float[Tensor, "n"], labels: Int[Tensor, "n"], quantile: float
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
    """AUROC of projections separating POSITIVE (score high) from NEGATIVE tokens; neutral ignored: the
    Mann-Whitney statistic of ``auroc_of_counts`` with every token counted once (sklearn's ``roc_auc_score``
    to float rounding, without its validation overhead: the transfer claims compute it thousands of times)."""
    keep = labels != NEUTRAL
    target = labels[keep] == POSITIVE
    if target.all() or not target.any():
        raise ValueError("AUROC needs both positive and negative tokens")
    if not torch.isfinite(projections[keep]).all():
        raise ValueError("AUROC needs finite projections; got NaN or infinity")
    n = len(projections)
    return float(auroc_of_counts(projections, labels, torch.arange(n))(torch.ones(1, n))[0])



def _group_sums(sorted_weights: Float[Tensor, "r m"], ends: Int[Tensor, "g"]) -> Float[Tensor, "r g"]:
    """Per row, the sums of consecutive runs of columns (a run ends at each of ``ends``, inclusive)."""
    running = sorted_weights.cumsum(1)[:, ends]
    return torch.diff(running, dim=1, prepend=torch.zeros_like(running[:, :1]))


def _run_ends(sorted_values: Tensor) -> Tensor:
    """The last index of each run of equal values in a sorted 1-D tensor."""
    _, counts = torch.unique_consecutive(sorted_values, return_counts=True)
    return counts.cumsum(0) - 1


def _low_tail(ascending: Tensor, tokens_in_order: Tensor, labels: Tensor, unit_ids: Tensor, counts: Tensor,
              rank: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(tokens, positive, negative) weight of every token up to the order statistic at ``rank`` (per row)
    and its ties, tokens taken in ``ascending`` order of value; only a prefix of the tokens is read
    (doubled until it holds the rank in every row)."""
    length = min(len(tokens_in_order), int(4 * float(rank.max())) + 64)
    while True:
        length = int(torch.searchsorted(ascending, ascending[length - 1], right=True))  # whole tie runs
        ends = _run_ends(ascending[:length])
        tokens = tokens_in_order[:length]
        weights = counts[:, unit_ids[tokens]]
        total = _group_sums(weights, ends).cumsum(1)
        if length == len(tokens_in_order) or bool((total[:, -1] > rank).all()):
            break
        length = min(len(tokens_in_order), 2 * length)
    group = torch.searchsorted(total, rank[:, None].contiguous(), right=True).clamp(max=len(ends) - 1)

    def up_to_rank(label: int) -> Tensor:
        return _group_sums(weights * (labels[tokens] == label), ends).cumsum(1).gather(1, group).squeeze(1)

    return total.gather(1, group).squeeze(1), up_to_rank(POSITIVE), up_to_rank(NEGATIVE)


CountsStatistic = Callable[[Tensor], Tensor]  # counts [r, units] (each unit's draws) -> [r]


def tail_score_of_counts(projections: Float[Tensor, "n"], labels: Int[Tensor, "n"], unit_ids: Int[Tensor, "n"],
                         quantile: float) -> CountsStatistic:
    """``counts -> tail_score(...).score`` of the corpus where unit u (a word type, a sentence) appears
    ``counts[r, u]`` times (all its tokens), for each row r. As ``torch.quantile`` places the cuts, the low tail holds every
    token up to the order statistic at floor(q·(N−1)) and its ties, the high tail every token from the
    order statistic at ceil((1−q)·(N−1)) and its ties (N the resampled corpus's token count)."""
    values = projections.double()
    order = values.argsort()
    ascending, descending = values[order], -values[order.flip(0)]
    reversed_order = order.flip(0)
    lengths = torch.bincount(unit_ids).double()

    def statistic(counts: Tensor) -> Tensor:
        counts = counts.double()
        size = counts @ lengths
        ranks = torch.tensor([quantile, 1 - quantile], dtype=torch.float64)[None] * (size[:, None] - 1)
        low = _low_tail(ascending, order, labels, unit_ids, counts, ranks[:, 0].floor())
        high = _low_tail(descending, reversed_order, labels, unit_ids, counts,
                         size - 1 - ranks[:, 1].ceil())  # the high tail is the low tail of the reversed order
        # each tail: the share of its majority non-neutral label, neutral tokens in the denominator
        return sum(torch.maximum(positive, negative) / total for total, positive, negative in (low, high)) / 2

    return statistic


def auroc_of_counts(projections: Float[Tensor, "n"], labels: Int[Tensor, "n"],
                    unit_ids: Int[Tensor, "n"]) -> CountsStatistic:
    """``counts -> auroc`` of the corpus where unit u appears ``counts[r, u]`` times, for each row r (the
    Mann-Whitney statistic, ties counted half); NaN where a row has no positive or no negative token. With
    many null directions on the same units, ``harness.measures.cluster_auroc`` is faster."""
    keep = (labels != NEUTRAL).nonzero().flatten()
    values = projections[keep].double()
    order = values.argsort()
    tokens = keep[order]
    ends = _run_ends(values[order])
    group = torch.repeat_interleave(torch.arange(len(ends)), torch.diff(ends, prepend=torch.tensor([-1])))
    positive = labels[tokens] == POSITIVE
    positive_sentences, negative_sentences = unit_ids[tokens[positive]], unit_ids[tokens]
    positive_group, negative_mask = group[positive], (~positive).double()

    def statistic(counts: Tensor) -> Tensor:
        counts = counts.double()
        negative_weights = counts[:, negative_sentences] * negative_mask
        negative_by_group = _group_sums(negative_weights, ends)
        below = negative_by_group.cumsum(1) - 0.5 * negative_by_group  # negative weight below, ties half
        positive_weights = counts[:, positive_sentences]
        wins = (positive_weights * below[:, positive_group]).sum(1)
        return wins / (positive_weights.sum(1) * negative_weights.sum(1))

    return statistic


def of_drawn_units(statistic: CountsStatistic, n_units: int) -> Callable[[Tensor], Tensor]:
    """``index -> statistic``: ``index`` [..., m] holds the units drawn in each resample (a row of
    ``harness.measures.statistics.resample_indices``, or a jackknife's m = n_units − 1); each row becomes
    its draw counts over the ``n_units``, in chunks of rows. Trailing axes of the statistic's
    output (several statistics at once) are kept: ``[..., *trailing]``."""
    def of_indices(index: Tensor) -> Tensor:
        draws = []
        for rows in index.reshape(-1, index.shape[-1]).split(_CHUNK):
            counts = torch.zeros(len(rows), n_units, dtype=torch.float64).scatter_add_(
                1, rows, torch.ones_like(rows, dtype=torch.float64))
            draws.append(statistic(counts))
        out = torch.cat(draws)
        return out.reshape(tuple(index.shape[:-1]) + tuple(out.shape[1:]))

    return of_indices


def by_sentence(statistic: CountsStatistic, n_sentences: int, resamples: int = SENTENCE_RESAMPLES,
                unit: str = "sentences") -> Estimate:
    """``statistic`` of the corpus (every count 1), with its percentile CI over sentences (or other
    ``unit``s) resampled with replacement, all tokens of a drawn sentence kept
    (``harness.measures.statistics.bootstrap`` over sentence indices: seeded by the session's seed)."""
    return bootstrap(of_drawn_units(statistic, n_sentences), torch.arange(n_sentences), unit=unit,
                     resamples=resamples)
