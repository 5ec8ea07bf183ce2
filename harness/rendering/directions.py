"""Renderers: the fitted directions (§4), their agreement (§6.3) and the ToyMovieReview sweep (§5.2)."""

from __future__ import annotations

import numpy as np
from tabulate import tabulate

from harness.direction_fitting import DirectionAgreement, FittedDirections
from harness.direction_methods import REGISTRY
from harness.directions import cosine
from harness.rendering import render
from harness.sweep import ToySweep

METRIC_LABELS = {"ld_recovered": "% logit difference recovered", "logit_flip": "% logit flip"}


@render.register
def _fitted_directions(fitted: FittedDirections, report) -> None:
    """DAS training (every method fitted at some layers only, with a loss history)."""
    for method, by_layer in fitted.estimators.items():
        if REGISTRY[method].every_layer:
            continue
        history = {layer: e.loss_history_ for layer, e in by_layer.items()}
        best = {layer: e.best_epoch_ for layer, e in by_layer.items()}
        report.data["das_training"] = {"loss_history": history, "best_epoch": best}
        report.add_section(
            "DAS training (§4)",
            f"1-D DAS, {fitted.das.describe()}, fitted on {fitted.n_train_pairs} train pairs at ADJ. Final summed "
            "training loss per layer "
            "(0 = clean behaviour restored, 1 = corrupted): "
            + ", ".join(f"L{layer}: {min(h):.3f} (epoch {best[layer]})" for layer, h in history.items()),
        )


@render.register
def _toy_sweep(sweep: ToySweep, report) -> None:
    results = sweep.results
    tables = {metric: results.table(metric) for metric in METRIC_LABELS}
    report.data["toy_sweep"] = {metric: {m: {str(k): v for k, v in t.items()} for m, t in table.items()}
                                for metric, table in tables.items()}
    rows = [[layer] + [_cell(tables["ld_recovered"][m].get(layer)) for m in results.methods()]
            for layer in range(sweep.n_layers + 1)]
    report.add_section(
        "Directional patching layer sweep, ToyMovieReview test (§5.2)",
        "% logit difference recovered when every position of residual boundary L of the corrupted prompt is "
        "patched along the method's layer-L direction from the clean prompt (blank: no direction fitted there).\n\n"
        + tabulate(rows, headers=["layer", *results.methods()], tablefmt="github"),
    )

    def draw(figure) -> None:
        axes = figure.subplots(1, 2)
        for ax, metric in zip(axes, METRIC_LABELS):
            for method, values in tables[metric].items():
                ax.plot(list(values), list(values.values()), marker="o", markersize=3, label=method)
            ax.axhline(100, color="grey", linewidth=0.5)
            ax.set_xlabel("residual layer")
            ax.set_ylabel(METRIC_LABELS[metric])
        axes[0].legend(fontsize=7)
        figure.suptitle(f"Directional patching, ToyMovieReview test: {report.model_name}")

    report.add_figure("toy_layer_sweep.png", draw)


@render.register
def _agreement(agreement: DirectionAgreement, report) -> None:
    methods = list(agreement.vectors)

    def draw(figure) -> None:
        for ax, (label, layer) in zip(figure.subplots(1, 2), agreement.layers.items()):
            matrix = np.array([[abs(cosine(agreement.vectors[a][layer], agreement.vectors[b][layer]))
                                for b in methods] for a in methods])
            image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(methods)), methods, rotation=45, fontsize=7)
            ax.set_yticks(range(len(methods)), methods, fontsize=7)
            for i in range(len(methods)):
                for j in range(len(methods)):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if matrix[i, j] < 0.6 else "black")
            ax.set_title(f"|cos| at layer {layer} ({label})", fontsize=9)
        figure.colorbar(image, ax=figure.axes, shrink=0.7)

    report.add_figure("direction_cosines.png", draw)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
