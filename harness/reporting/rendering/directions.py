"""Renderers: the directions' agreement (§6.3) and the ToyMovieReview sweep (§5.2) with per-layer 95% CIs
(DAS training is ``harness/reporting/rendering/das.py``'s)."""

from __future__ import annotations

import numpy as np
from tabulate import tabulate

from harness.directions.fitting import DirectionAgreement
from harness.directions.finders import cosine
from harness.reporting.rendering import render
from harness.interventions.sweep import ToySweep

METRIC_LABELS = {"ld_recovered": "% logit difference recovered", "logit_flip": "% logit flip"}


@render.register
def _toy_sweep(sweep: ToySweep, report) -> None:
    results = sweep.results
    tables = {metric: results.table(metric) for metric in METRIC_LABELS}
    bands = {metric: {m: results.layer_cis(metric, m) for m in results.methods()} for metric in METRIC_LABELS}
    report.data["toy_sweep"] = {metric: {m: {str(k): v for k, v in t.items()} for m, t in table.items()}
                                for metric, table in tables.items()}
    report.data["toy_sweep_ci"] = {metric: {m: {str(k): list(v) for k, v in t.items()} for m, t in by_method.items()}
                                   for metric, by_method in bands.items()}
    rows = [[layer] + [_cell(tables["ld_recovered"][m].get(layer)) for m in results.methods()]
            for layer in range(sweep.n_layers + 1)]
    report.add_section(
        "Directional patching layer sweep, ToyMovieReview test (§5.2)",
        "% logit difference recovered when every position of residual boundary L of the corrupted prompt is "
        f"patched along the method's layer-L direction from the clean prompt ({len(results.labels)} test pairs; blank: "
        "no direction fitted there, or DAS did not train there). The maximum over layers is description: the claims "
        "choose the layer on other pairs than they score (P1, P2: cross-fitting). The figure's bands are each layer's "
        "95% percentile bootstrap CI over pairs.\n\n"
        + tabulate(rows, headers=["layer", *results.methods()], tablefmt="github"),
    )

    def draw(figure) -> None:
        axes = figure.subplots(1, 2)
        for ax, metric in zip(axes, METRIC_LABELS):
            for method, values in tables[metric].items():
                line, = ax.plot(list(values), list(values.values()), marker="o", markersize=3, label=method)
                band = bands[metric][method]
                if band:
                    layers = sorted(band)
                    ax.fill_between(layers, [band[l][0] for l in layers], [band[l][1] for l in layers],
                                    color=line.get_color(), alpha=0.15, linewidth=0)
            ax.axhline(100, color="grey", linewidth=0.5)
            ax.set_xlabel("residual layer")
            ax.set_ylabel(METRIC_LABELS[metric])
        axes[0].legend(fontsize=7)
        figure.suptitle(f"Directional patching, ToyMovieReview test (bands: 95% CI per layer): {report.model_name}")

    report.add_figure("toy_layer_sweep.png", draw)


@render.register
def _agreement(agreement: DirectionAgreement, report) -> None:
    methods = list(agreement.vectors)

    def draw(figure) -> None:
        for ax, (label, layer) in zip(figure.subplots(1, 2), agreement.layers.items()):
            at = lambda m: agreement.vectors[m].get(layer)  # None: not fitted, or DAS did not train there
            matrix = np.array([[abs(cosine(at(a), at(b))) if at(a) is not None and at(b) is not None else np.nan
                                for b in methods] for a in methods])
            image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(methods)), methods, rotation=45, fontsize=7)
            ax.set_yticks(range(len(methods)), methods, fontsize=7)
            for i in range(len(methods)):
                for j in range(len(methods)):
                    ax.text(j, i, "–" if np.isnan(matrix[i, j]) else f"{matrix[i, j]:.2f}", ha="center",
                            va="center", fontsize=6, color="white" if not matrix[i, j] >= 0.6 else "black")
            ax.set_title(f"|cos| at layer {layer} ({label}; D1's CIs: claims table)", fontsize=9)
        figure.colorbar(image, ax=figure.axes, shrink=0.7)

    report.add_figure("direction_cosines.png", draw)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
