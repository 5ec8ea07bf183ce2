"""Renderer of the residual-anisotropy diagnostic (``harness.measures.anisotropy``)."""

from __future__ import annotations

import dataclasses

from tabulate import tabulate

from harness.measures.anisotropy import Anisotropy
from harness.reporting.rendering import render


@render.register(Anisotropy)
def _anisotropy(result: Anisotropy, report) -> None:
    worst = result.most_dominated()
    report.data["anisotropy"] = {"reading": result.reading, "d_model": result.d_model,
                                 "boundaries": [dataclasses.asdict(b) for b in result.boundaries]}
    rows = [[b.boundary, f"{b.mean_norm:.1f}", f"{b.top_coordinates[0]}, {b.top_coordinates[1]}",
             f"{b.top1_share:.1%}", f"{b.top2_share:.1%}", f"{b.effective_dims:.1f}"] for b in result.boundaries]
    report.add_section(
        "Residual anisotropy: outlier dimensions",
        f"Read on the {result.reading}. A coordinate's share of the squared norm is also its share of a random "
        "unit direction's projection variance: where one coordinate carries most of the norm, cosine and projection "
        "readings (R1, D1) and random-direction ablations (A2, G2) read mostly that coordinate. Largest: "
        f"boundary {worst.boundary}, coordinate {worst.top_coordinates[0]} with {worst.top1_share:.1%} of the squared "
        f"norm (an isotropic residual: about {1 / result.d_model:.2%} per coordinate, effective dimensions "
        f"≈ (d_model + 2) / 3 = {(result.d_model + 2) / 3:.0f}).\n\n"
        + tabulate(rows, headers=["boundary", "mean norm", "top coordinates", "top-1 share", "top-2 share",
                                  "effective dims"], tablefmt="github"))
