"""The AUROC of clustered units under any cluster draw counts, as one bilinear form (R1.auroc, §5.4).

Every unit (a token) is positive or negative and belongs to a cluster (R1: its word type, which fixes
its label). When cluster c is drawn w_c times (a cluster bootstrap), each pair of a positive unit i and
a negative unit j counts w_c(i) · w_c(j) times in the Mann-Whitney statistic, so

    AUROC(w) = w_P · W · w_N / ((w_P · s_P) (w_N · s_N)),

with W[p, q] the pair count of positive cluster p over negative cluster q (pairs with x_i > x_j, ties
counted half) and s the units per cluster. ``pair_counts`` builds W once per scoring (a direction, a
simulated data set: leading batch axes); ``PairCounts.auroc`` then evaluates any rows of draw counts
with one matrix product, so that R1.auroc's null (100 random directions) is recomputed in each of 1,000
resamples of word types in seconds (``harness.experiments.corpus_projections``). With every count 1 it is
the units' AUROC (tests/test_cluster_auroc.py).

The studentized interval (``harness.measures.intervals``) needs, in every resample, the jackknife that
leaves each drawn cluster out in turn: n evaluations per resample done one by one. Here they are closed
forms of the same products (``PairCounts.left_out``: taking one draw of cluster c out removes W's row of c
weighted by the negative draws, or its column weighted by the positive ones), and ``jackknife_se`` weighs
each cluster's value by its draws; docs/calibration.md simulates the interval at R1.auroc's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

_ENTRIES = 4_000_000  # float64 entries per chunk of the products (memory ~32 MB)
_BLOCK = 64  # sorted units per block in ``_wins``


@dataclass(frozen=True)
class PairCounts:
    """W (module docstring) for a batch of scorings of the same units and clusters."""

    wins: Float[Tensor, "*batch P N"]  # half-integer pair counts: float32 (exact) where they stay below 2**22
    positive_clusters: Int[Tensor, "P"]  # the cluster id of each row of W
    negative_clusters: Int[Tensor, "N"]
    positive_sizes: Float[Tensor, "P"]  # positive units per cluster
    negative_sizes: Float[Tensor, "N"]

    def auroc(self, counts: Float[Tensor, "r clusters"]) -> Float[Tensor, "r *batch"]:
        """The AUROC of every scoring (trailing axes) for each row of ``counts`` (draws of each cluster id,
        columns indexed by id); NaN where a row draws no positive or no negative cluster."""
        wins, _, _ = self._products(counts, margins=False)
        return (wins / self._totals(counts)[:, None]).reshape(len(counts), *self.wins.shape[:-2])

    def left_out(self, counts: Float[Tensor, "r clusters"]) -> Float[Tensor, "r clusters *batch"]:
        """For each row of ``counts`` and each cluster id, the AUROC with one draw of that cluster taken
        out (the jackknife within a resample, ``jackknife_se``): w_P·W·w_N loses W's row (and column)
        of the cluster weighted by the other side's draws, the totals lose its units. Meaningful where the
        cluster was drawn; a cluster outside W leaves the AUROC as it is."""
        counts = counts.double()
        wins, by_positive, by_negative = self._products(counts, margins=True)  # [r, b], [r, b, P], [r, b, N]
        clusters = counts.shape[1]
        lost = torch.zeros(*wins.shape, clusters, dtype=torch.float64)
        lost[..., self.positive_clusters] += by_positive
        lost[..., self.negative_clusters] += by_negative
        both = self.positive_clusters[torch.isin(self.positive_clusters, self.negative_clusters)]
        if len(both):  # a cluster with units of both labels: its own pairs were taken out twice
            rows = torch.searchsorted(self.positive_clusters, both)
            columns = torch.searchsorted(self.negative_clusters, both)
            lost[..., both] -= self.wins.reshape(-1, *self.wins.shape[-2:])[:, rows, columns].double()
        positive_units = torch.zeros(clusters, dtype=torch.float64).index_add_(
            0, self.positive_clusters, self.positive_sizes.double())
        negative_units = torch.zeros(clusters, dtype=torch.float64).index_add_(
            0, self.negative_clusters, self.negative_sizes.double())
        positive, negative = counts @ positive_units, counts @ negative_units
        totals = (positive[:, None] - positive_units) * (negative[:, None] - negative_units)  # [r, clusters]
        out = (wins[..., None] - lost) / totals[:, None, :]
        return out.transpose(1, 2).reshape(len(counts), clusters, *self.wins.shape[:-2])

    def left_out_ceiling(self, counts: Float[Tensor, "r clusters"]) -> Float[Tensor, "r"]:
        """Per row, a factor f >= 1 with ``left_out(counts)[r, c] <= f · auroc(counts)[r]`` for every drawn
        cluster c and every scoring: taking a draw out can only lower w_P·W·w_N, and it lowers the positive
        (negative) total by at most the largest drawn positive (negative) cluster. Lets a caller skip
        leave-one-out values that cannot cross a threshold."""
        counts = counts.double()
        largest = lambda ids, sizes: torch.where(counts[:, ids] > 0, sizes.double(), 0.0).max(1).values
        positive = counts[:, self.positive_clusters] @ self.positive_sizes.double()
        negative = counts[:, self.negative_clusters] @ self.negative_sizes.double()
        return (positive / (positive - largest(self.positive_clusters, self.positive_sizes))
                * negative / (negative - largest(self.negative_clusters, self.negative_sizes)))

    def _totals(self, counts: Tensor) -> Tensor:
        counts = counts.double()
        return ((counts[:, self.positive_clusters] @ self.positive_sizes.double())
                * (counts[:, self.negative_clusters] @ self.negative_sizes.double()))

    def _products(self, counts: Tensor, margins: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """w_P·W·w_N per row and scoring ``[r, b]`` (the batch flattened) and, with ``margins``, W·w_N
        ``[r, b, P]`` and w_P·W ``[r, b, N]``."""
        counts = counts.double()
        positive, negative = counts[:, self.positive_clusters], counts[:, self.negative_clusters]
        wins = self.wins.reshape(-1, *self.wins.shape[-2:])
        b, p, q = wins.shape
        step = max(1, _ENTRIES // (p * q))
        rows = max(1, _ENTRIES // (min(step, b) * (p + q)))
        out = torch.empty(len(counts), b, dtype=torch.float64)
        by_positive = torch.empty(len(counts), b, p, dtype=torch.float64) if margins else None
        by_negative = torch.empty(len(counts), b, q, dtype=torch.float64) if margins else None
        for start in range(0, b, step):
            scorings = slice(start, start + step)
            block = wins[scorings].double()  # [b', P, N]
            flat = block.permute(1, 0, 2).reshape(p, -1)  # [P, b' × N]
            for first in range(0, len(counts), rows):
                drawn = slice(first, first + rows)
                over_negatives = (positive[drawn] @ flat).view(-1, len(block), q)  # w_P·W
                out[drawn, scorings] = (over_negatives * negative[drawn, None, :]).sum(-1)
                if margins:
                    by_negative[drawn, scorings] = over_negatives
                    by_positive[drawn, scorings] = torch.einsum("bpq,rq->rbp", block, negative[drawn])
        return out, by_positive, by_negative


def jackknife_se(left_out: Float[Tensor, "r clusters *rest"], counts: Float[Tensor, "r clusters"]) -> Tensor:
    """Each row's jackknife standard error (``intervals.jackknife_se``) over its m = Σ counts drawn units,
    leaving each out in turn: a cluster drawn c times gives c equal leave-one-out values (``left_out``).
    ``[r, *rest]``; NaN where a drawn cluster's value is undefined."""
    weights = counts.double().reshape(*counts.shape, *([1] * (left_out.dim() - 2)))
    m = weights.sum(1)
    values = torch.where(weights > 0, left_out.double(), torch.zeros((), dtype=torch.float64))
    mean = (weights * values).sum(1, keepdim=True) / m[:, None]
    return ((m - 1) / m * (weights * (values - mean) ** 2).sum(1)).sqrt()


def pair_counts(values: Float[Tensor, "*batch n"], positive: Bool[Tensor, "n"],
                clusters: Int[Tensor, "n"]) -> PairCounts:
    """W for every scoring ``values`` (leading batch axes) of the same units: ``positive`` marks the
    positive units (the others are negative), ``clusters`` gives each unit's cluster id (a cluster may
    hold both). One sort per scoring (``_wins``)."""
    if values.shape[-1] != len(positive) or len(positive) != len(clusters):
        raise ValueError(f"values {tuple(values.shape)}, positive {tuple(positive.shape)} and clusters "
                         f"{tuple(clusters.shape)} must describe the same units")
    if not torch.isfinite(values).all():
        raise ValueError("an AUROC needs finite values; got NaN or infinity")
    if positive.all() or not positive.any():
        raise ValueError("an AUROC needs positive and negative units")
    positive_ids, positive_rows = clusters[positive].unique(sorted=True, return_inverse=True)
    negative_ids, negative_rows = clusters[~positive].unique(sorted=True, return_inverse=True)
    sizes = torch.bincount(positive_rows, minlength=len(positive_ids))
    negative_sizes = torch.bincount(negative_rows, minlength=len(negative_ids))
    exact = float(sizes.max()) * float(negative_sizes.max()) < 2 ** 22
    row = torch.empty(len(positive), dtype=torch.long)  # each unit's row of W (positive) or column (negative)
    row[positive], row[~positive] = positive_rows, negative_rows
    flat = values.reshape(-1, values.shape[-1]).double()
    wins = torch.empty(len(flat), len(positive_ids), len(negative_ids), dtype=torch.float32 if exact else torch.float64)
    for b, scores in enumerate(flat):
        wins[b] = _wins(scores, positive, row, len(positive_ids), len(negative_ids))
    return PairCounts(wins.reshape(*values.shape[:-1], len(positive_ids), len(negative_ids)), positive_ids,
                      negative_ids, sizes.double(), negative_sizes.double())


def _wins(scores: Tensor, positive: Tensor, row: Tensor, p: int, q: int) -> Tensor:
    """W of one scoring. In sorted order the units fall into blocks of about ``_BLOCK`` (a run of tied
    values never split): a positive unit in a later block than a negative one is above it, so those pairs
    are one product of per-block counts; pairs within a block are compared directly."""
    order = scores.argsort()
    ordered = scores[order]
    _, tied = torch.unique_consecutive(ordered, return_counts=True)
    run_start = torch.repeat_interleave(tied.cumsum(0) - tied, tied)
    block = torch.unique_consecutive(run_start // _BLOCK, return_inverse=True)[1]
    blocks = int(block[-1]) + 1
    is_positive, rows = positive[order], row[order]
    per_block = lambda mask, width: torch.zeros(width, blocks, dtype=torch.float64).index_put_(
        (rows[mask], block[mask]), torch.ones(int(mask.sum()), dtype=torch.float64), accumulate=True)
    positives, negatives = per_block(is_positive, p), per_block(~is_positive, q)
    later = positives.flip(1).cumsum(1).flip(1) - positives  # positive units in strictly later blocks
    wins = later @ negatives.T
    # pairs within a block: padded [blocks, width] layout of the sorted units
    size = torch.bincount(block, minlength=blocks)
    column = torch.arange(len(order)) - (size.cumsum(0) - size)[block]
    width = int(size.max())
    value = torch.full((blocks, width), torch.nan, dtype=torch.float64)
    value[block, column] = ordered
    is_pos = torch.zeros(blocks, width, dtype=torch.bool)
    is_pos[block, column] = is_positive
    is_neg = torch.zeros(blocks, width, dtype=torch.bool)
    is_neg[block, column] = ~is_positive
    slot = torch.zeros(blocks, width, dtype=torch.long)
    slot[block, column] = rows
    above = (value[:, :, None] > value[:, None, :]).double() + 0.5 * (value[:, :, None] == value[:, None, :]).double()
    pair = is_pos[:, :, None] & is_neg[:, None, :] & (above > 0)
    index = pair.nonzero(as_tuple=True)
    wins.index_put_((slot[index[0], index[1]], slot[index[0], index[2]]), above[pair], accumulate=True)
    return wins
