"""Outlier dimensions of the residual stream (issue 26, item 5): how much of each residual boundary's
squared norm its largest coordinates carry.

The share of the squared norm in a set of coordinates is also the share of a random unit direction's
projection variance that comes from them (E[(x·d)²] = ‖x‖²/d_model, coordinate by coordinate), so where one
coordinate holds most of the norm (Gemma-3 from layer 2 on), cosine and projection readings (R1, D1) and
random-direction ablations (A2, G2) read mostly that coordinate. The report shows this per model, beside
those claims; it decides nothing by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class BoundaryAnisotropy:
    boundary: int
    mean_norm: float
    top_coordinates: tuple[int, int]  # the two coordinates with the largest mean square, largest first
    top1_share: float  # mean over items of x_top1² / ‖x‖²
    top2_share: float  # the same for the two largest coordinates together
    effective_dims: float  # mean over items of (Σ x²)² / Σ x⁴ (about (d_model + 2) / 3 for an isotropic Gaussian)


@dataclass(frozen=True)
class Anisotropy:
    """Per residual boundary, what the largest coordinates carry (``outlier_dimensions``)."""

    reading: str  # which residuals were read (e.g. the last token of the transfer claims' SST sample)
    d_model: int
    boundaries: tuple[BoundaryAnisotropy, ...]

    def most_dominated(self) -> BoundaryAnisotropy:
        return max(self.boundaries, key=lambda b: b.top1_share)


def outlier_dimensions(resid: Float[Tensor, "boundary n d_model"], reading: str) -> Anisotropy:
    """The diagnostic of ``resid`` (one residual vector per item at each boundary)."""
    squares = resid.double() ** 2
    norms2 = squares.sum(-1)  # [boundary, n]
    rows = []
    for boundary in range(len(resid)):
        top = squares[boundary].mean(0).topk(2).indices
        shares = squares[boundary][:, top] / norms2[boundary, :, None]
        rows.append(BoundaryAnisotropy(
            boundary, float(norms2[boundary].sqrt().mean()), (int(top[0]), int(top[1])),
            float(shares[:, 0].mean()), float(shares.sum(-1).mean()),
            float((norms2[boundary] ** 2 / (squares[boundary] ** 2).sum(-1)).mean())))
    return Anisotropy(reading, resid.shape[-1], tuple(rows))
