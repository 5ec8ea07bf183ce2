"""The matrix's figures: the heatmap of claim-level verdicts (claims by models) and the sweep's % logit
difference recovered against relative depth; ``render_figure`` draws one into a PNG file."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from harness.reporting.matrix.build import Matrix
from harness.reporting.matrix.cells import CRASHED, DECIDED, FAILED, MIXED, NO_ROWS, SKIPPED, ClaimCell
from harness.reporting.matrix.sweep import Sweep
from harness.verdicts.declaration import Verdict

COLOURS = {Verdict.REPLICATES: "#4caf50", Verdict.DOES_NOT_REPLICATE: "#e53935", Verdict.INCONCLUSIVE: "#fdd835",
           MIXED: "#fb8c00", Verdict.NOT_APPLICABLE: "#d9d9d9", Verdict.NOT_INTERPRETABLE: "#8e24aa",
           SKIPPED: "#ffffff", CRASHED: "#757575", NO_ROWS: "#ffffff", FAILED: "#000000"}
LEGEND = (Verdict.REPLICATES, Verdict.DOES_NOT_REPLICATE, Verdict.INCONCLUSIVE, MIXED, Verdict.NOT_APPLICABLE,
          Verdict.NOT_INTERPRETABLE, SKIPPED, CRASHED, FAILED)


def draw_heatmap(figure, matrix: Matrix) -> None:
    """Claims (rows) by models (columns), coloured by the claim-level verdict, annotated with the tally."""
    from matplotlib.patches import Patch, Rectangle

    claims, columns = matrix.claims, matrix.columns
    figure.set_size_inches(max(6.0, 1.6 * len(columns) + 3.5), max(3.0, 0.32 * len(claims) + 1.8))
    ax = figure.add_subplot()
    for y, line in enumerate(claims):
        for x, column in enumerate(columns):
            cell = line.cells[column.model]
            verdict = FAILED if column.failure else cell.verdict
            ax.add_patch(Rectangle((x, y), 1, 1, facecolor=COLOURS[verdict], edgecolor="white",
                                   hatch="//" if verdict == FAILED else None))
            ax.text(x + 0.5, y + 0.5, _annotation(cell, verdict), ha="center", va="center", fontsize=7,
                    color="white" if verdict in (FAILED, CRASHED, Verdict.DOES_NOT_REPLICATE,
                                                 Verdict.NOT_INTERPRETABLE) else "black")
    ax.set_xlim(0, len(columns))
    ax.set_ylim(len(claims), 0)
    ax.set_xticks([x + 0.5 for x in range(len(columns))],
                  [c.model + ("\n(failed)" if c.failure else "") for c in columns], rotation=20, ha="right")
    ax.set_yticks([y + 0.5 for y in range(len(claims))], [f"{l.claim} {l.section}" for l in claims], fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.legend(handles=[Patch(facecolor=COLOURS[v], edgecolor="grey", hatch="//" if v == FAILED else None, label=v)
                       for v in LEGEND], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)
    ax.set_title("Claim-level verdict per model (its declared combine rule; cell: replicating rows / rows)",
                 fontsize=9)


def _annotation(cell: ClaimCell, verdict: str) -> str:
    """Several decided rows: "replicating / rows"; else the verdict, abbreviated."""
    total = sum(cell.tally.values())
    if verdict in (*DECIDED, MIXED) and total > 1:
        return f"{cell.tally.get(Verdict.REPLICATES, 0)}/{total}"
    return {Verdict.REPLICATES: "rep", Verdict.DOES_NOT_REPLICATE: "not", Verdict.INCONCLUSIVE: "inc",
            Verdict.NOT_APPLICABLE: "n/a", Verdict.NOT_INTERPRETABLE: "n/i"}.get(verdict, verdict)


def draw_sweep(figure, sweep: Sweep) -> None:
    """One panel per method, one line per model: % LD recovered against layer / n_layers (95% CI shaded)."""
    methods = list(sweep.curves)
    if not methods:
        ax = figure.add_subplot()
        ax.text(0.5, 0.5, "no model has ToyMovieReview sweep data", ha="center", va="center")
        ax.set_axis_off()
        return
    n_cols = min(3, len(methods))
    n_rows = math.ceil(len(methods) / n_cols)
    figure.set_size_inches(4.2 * n_cols, 3.2 * n_rows)
    axes = figure.subplots(n_rows, n_cols, squeeze=False, sharex=True)
    for ax, method in zip(axes.flat, methods):
        for model, points in sweep.curves[method].items():
            depth, value = [p[0] for p in points], [p[1] for p in points]
            (line,) = ax.plot(depth, value, marker=".", label=model)
            if all(p[2] is not None for p in points):
                ax.fill_between(depth, [p[2] for p in points], [p[3] for p in points], color=line.get_color(),
                                alpha=0.15, linewidth=0)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.axhline(100, color="grey", linewidth=0.6, linestyle="--")
        ax.set_title(method, fontsize=9)
        ax.set_xlabel("relative depth (layer / n_layers)", fontsize=8)
        ax.set_ylabel("% logit difference recovered", fontsize=8)
    for ax in list(axes.flat)[len(methods):]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)


def render_figure(path: Path, draw) -> Path | None:
    """Render one figure; a figure that fails is named and skipped (the tables are still written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(dpi=110, layout="constrained")
    try:
        draw(figure)
        figure.savefig(path)
    except Exception as error:  # noqa: BLE001  a broken figure must not lose the matrix
        print(f"figure {path.name} could not be drawn: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    finally:
        plt.close(figure)
    return path
