"""Which of a model report's figures a claim's rows are read from (``reports/<model>/figures/<name>.png``):
the row's details on the HTML page show it. A claim id not listed here, or whose figure this run did
not draw, shows none."""

from __future__ import annotations

from typing import Collection

FIGURE_OF_CLAIM = {
    "D1": "direction_cosines", "D1.random": "direction_cosines", "D3": "direction_cosines",
    "P1": "toy_layer_sweep", "P2": "toy_layer_sweep", "P2.random": "toy_layer_sweep",
    "P3": "sst_layer_sweep", "P4": "sst_layer_sweep", "P5": "sst_layer_sweep", "P5.random": "sst_layer_sweep",
    "A1": "sst_ablations", "A2": "sst_ablations", "A3": "sst_ablations", "A4": "sst_ablations",
    "A5": "sst_ablations",
    "M2": "summarization_distance", "M2.ratio": "summarization_distance", "M3": "summarization_distance",
    "M3.distance": "summarization_distance",
    "K1": "circuit_path_patching_heads", "K1.paper_heads": "circuit_path_patching_heads",
    "K2": "circuit_path_patching_heads", "K2.direction": "circuit_path_patching_heads",
    "R1": "correlation_label_share", "R1.auroc": "correlation_auroc",
    "S1": "steering_curve", "S1.strongest": "steering_curve", "S1.unsteered": "steering_curve",
    "N1": "negation_layers",
    "G1": "transfer_auroc_by_layer", "G3": "transfer_auroc_by_layer",
}


def figure_of(claim: str, drawn: Collection[str]) -> str | None:
    """The name (file stem) of ``claim``'s figure when this run drew it (``drawn``: the stems present)."""
    name = FIGURE_OF_CLAIM.get(claim)
    return name if name in drawn else None
