"""The report's verdict figure (issue 26, item 8): a forest plot of every measured row of the first seed,
grouped by kind (paper claims first), coloured by verdict.

Rows measure different things (%, cosines, AUROCs, correlations), so each is drawn on one common scale:
its distance from the threshold in units of its own CI's half-width, oriented so that the passing side
is to the right. With half-width h = (ci_high − ci_low)/2 and the passing-side signed gaps
g(x) = x − threshold ("above"), threshold − x ("below"), threshold − |x − centre| ("abs_below"), a row is
drawn from g(ci_low)/h to g(ci_high)/h (reordered) with its point at g(value)/h. A row replicates
exactly when its whole bar lies right of 0, does not replicate when it lies left of it; the axis is
clipped at ±6 half-widths (an arrow marks a clipped end). A row whose CI has no width (a fixed value)
is drawn as a point at ±6 on its side; an unbounded CI (a ratio: ``harness.measures.ratio_interval``) runs to
the edge, scaled by its finite side."""

from __future__ import annotations

import math
from typing import Sequence

from harness.verdicts.declaration import Kind, Verdict
from harness.verdicts.record import ClaimRecord

COLOURS = {Verdict.REPLICATES.value: "#2e7d32", Verdict.DOES_NOT_REPLICATE.value: "#c62828",
           Verdict.INCONCLUSIVE.value: "#f9a825", Verdict.NOT_INTERPRETABLE.value: "#8e24aa"}
LIMIT = 6.0
FILENAME = "verdicts_forest.png"  # under reports/<model>/figures/ (REPORT.md and report.html show it first)


def gap(record: ClaimRecord, x: float) -> float:
    """How far ``x`` lies on the passing side of ``record``'s threshold (negative: the failing side)."""
    if record.passes_when == "above":
        return x - record.threshold
    if record.passes_when == "below":
        return record.threshold - x
    return record.threshold - abs(x - (record.centre or 0.0))


def scaled(record: ClaimRecord) -> tuple[float, float, float] | None:
    """(low, point, high) of the row on the common scale (module docstring); None when not measured."""
    if record.measured is None:
        return None
    ends = sorted((gap(record, record.ci_low), gap(record, record.ci_high)))
    if record.passes_when == "abs_below" and record.ci_low <= (record.centre or 0.0) <= record.ci_high:
        ends[1] = record.threshold  # the CI holds the centre: its best end is the threshold itself
    finite = [x for x in (record.ci_low, record.ci_high) if math.isfinite(x)]
    half = ((record.ci_high - record.ci_low) / 2 if len(finite) == 2  # unbounded: scaled by its finite side
            else max([abs(x - record.measured) for x in finite], default=1.0) or 1.0)
    clip = lambda value: max(-LIMIT, min(LIMIT, value))  # noqa: E731
    if half <= 0:
        side = LIMIT if gap(record, record.measured) > 0 else -LIMIT
        return side, side, side
    return clip(ends[0] / half), clip(gap(record, record.measured) / half), clip(ends[1] / half)


def draw_forest(figure, rows: Sequence[tuple[str, ClaimRecord]], kinds: dict[str, str]) -> None:
    """``rows``: (test id, record) of the first seed; ``kinds``: claim id -> its kind. One line per
    measured row, grouped by kind in ``Kind`` order, labelled "claim test-parameters"."""
    from matplotlib.lines import Line2D

    ordered = [(kind, test_id, record) for kind in Kind for test_id, record in rows
               if kinds.get(record.claim, Kind.PAPER.value) == kind.value and scaled(record) is not None]
    figure.set_size_inches(9.0, max(3.0, 0.17 * len(ordered) + 1.6))
    ax = figure.add_subplot()
    labels = []
    for y, (kind, test_id, record) in enumerate(ordered):
        low, point, high = scaled(record)
        colour = COLOURS.get(record.verdict, "#757575")
        ax.plot([low, high], [y, y], color=colour, linewidth=2.2, solid_capstyle="butt")
        ax.plot([point], [y], marker="o", color=colour, markersize=3.5)
        for end in (low, high):
            if abs(end) >= LIMIT:
                ax.annotate("", xy=(end, y), xytext=(end - 0.4 * (1 if end > 0 else -1), y),
                            arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.2})
        parameters = test_id.partition("[")[2].removesuffix("]")
        labels.append(f"{record.claim} {parameters}".strip())
    boundaries = [y for y in range(1, len(ordered)) if ordered[y][0] != ordered[y - 1][0]]
    for y in boundaries:
        ax.axhline(y - 0.5, color="#9e9e9e", linewidth=0.6)
    for kind in Kind:
        ys = [y for y, (k, _, _) in enumerate(ordered) if k == kind]
        if ys:
            ax.text(LIMIT + 0.3, (ys[0] + ys[-1]) / 2, kind.value, rotation=-90, va="center", fontsize=7,
                    color="#424242")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlim(-LIMIT - 0.5, LIMIT + 0.5)
    ax.set_ylim(len(ordered) - 0.5, -0.5)
    ax.set_yticks(range(len(ordered)), labels, fontsize=5.5)
    ax.set_xlabel("distance from the threshold in CI half-widths (passing side to the right; clipped at ±6)",
                  fontsize=8)
    ax.set_title("Every measured row: its 95% CI against its threshold (seed 0)", fontsize=9)
    ax.legend(handles=[Line2D([], [], color=c, linewidth=2.2, label=v) for v, c in COLOURS.items()],
              loc="lower right", fontsize=7, frameon=False)
