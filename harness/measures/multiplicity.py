"""Combining one-sided p-values of several rows into one decision (issue 25 item 6, claim-level verdicts).

A claim with several rows (methods, pairs, cases) is decided once, from its rows' one-sided p-values
(``harness.measures.tails``): ``p_pass`` against "the row fails", ``p_fail`` against "the row holds".

- "every" (the claim holds where every row holds): intersection-union (Berger 1982): it passes where
  every row passes at level α, no correction needed (the claim's p is the largest row p); it fails
  where Holm's step-down procedure (Holm 1979) across the rows rejects "holds" for at least one row.
- "any" (the claim holds where some row holds): it passes where Holm across the rows rejects "fails" for
  at least one row; it fails only where every row fails at level α (intersection-union again).

Holm controls the familywise error at α under any dependence between the rows, so an "any" claim whose
rows all sit exactly on their thresholds passes at most ~α of the time (``harness.measures.calibration``).
The adjusted p-values are Holm's: p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1) p₍ⱼ₎) in increasing order; on the
intersection-union side the "adjusted" p is the row's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

HOW = ("every", "any")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the rows' order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Combined:
    """The decision on a set of rows: ``passes`` / ``fails`` at ``alpha``, with each row's p-values as the
    decision compares them to ``alpha`` (Holm-adjusted on the corrected side, the row's own on the other)."""

    passes: bool
    fails: bool
    p_pass: float  # the combined p-values: <= alpha exactly where the decision is made
    p_fail: float
    adjusted_pass: tuple[float, ...]
    adjusted_fail: tuple[float, ...]


def combine(how: str, p_pass: Sequence[float], p_fail: Sequence[float], alpha: float) -> Combined:
    """Combine the rows' one-sided p-values (module docstring); ``how`` is "every" or "any"."""
    if how not in HOW or len(p_pass) != len(p_fail) or not p_pass:
        raise ValueError(f"combine: how one of {HOW} and one pair of p-values per row (at least one row)")
    if how == "every":
        adjusted_pass, adjusted_fail = tuple(p_pass), tuple(holm(p_fail))
        combined_pass, combined_fail = max(adjusted_pass), min(adjusted_fail)
    else:
        adjusted_pass, adjusted_fail = tuple(holm(p_pass)), tuple(p_fail)
        combined_pass, combined_fail = min(adjusted_pass), max(adjusted_fail)
    passes = combined_pass <= alpha
    return Combined(passes, not passes and combined_fail <= alpha, combined_pass, combined_fail, adjusted_pass,
                    adjusted_fail)
