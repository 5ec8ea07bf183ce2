"""Renderers of the transfer results (G1-G3): the datasets and their samples, the layer chosen on SST per
method, each dataset's AUROCs and G1 / G3 statistics with their CIs, the figure ``transfer_auroc_by_layer.png``
(the projection's AUROC by layer per dataset and method), and G2's competence gate and ablations."""

from __future__ import annotations

from tabulate import tabulate

from harness.reporting.rendering import render, shown_path
from harness.measures.statistics import Estimate
from harness.experiments.transfer import TransferResults
from harness.experiments.transfer_ablation import TransferAblations, TransferCompetence


def _ci(estimate: Estimate) -> str:
    return f"{estimate.value:+.3f} [{estimate.ci_low:+.3f}, {estimate.ci_high:+.3f}]"


@render.register(TransferResults)
def _transfer(result: TransferResults, report) -> None:
    datasets = result.datasets
    methods = list(result.chosen)
    sizes = [[name, "specificity control" if data.sample.dataset.specificity else "sentiment",
              shown_path(data.sample.dataset.path), len(data.sample.dataset), data.sample.describe()]
             for name, data in datasets.items()]
    sizes.append([result.sst.dataset.name, "layer choice (SST held-out)", shown_path(result.sst.dataset.path),
                  len(result.sst.dataset), result.sst.describe()])
    layers = [[m, c.layer, f"{c.sst_auroc[c.layer]:.3f}", "+" if c.sign > 0 else "−"] for m, c in result.chosen.items()]
    rows, data_out = [], {}
    for name, data in datasets.items():
        for method in methods:
            entry = {"layer": result.chosen[method].layer, "auroc_last": result.auroc(name, method),
                     "auroc_mean": result.auroc(name, method, "mean")}
            row = [name, method, entry["layer"], f"{entry['auroc_last']:.3f}", f"{entry['auroc_mean']:.3f}"]
            if data.sample.dataset.specificity:
                row += ["", "", f"{abs(entry['auroc_last'] - 0.5):.3f}"]
            else:
                entry["null_quantile"] = result.null_quantile(name, method)
                g1 = result.auroc_above_null(name, method)
                entry["g1"] = {"value": g1.value, "ci": [g1.ci_low, g1.ci_high]}
                row += [f"{entry['null_quantile']:.3f}", _ci(g1), f"{abs(entry['auroc_last'] - 0.5):.3f}"]
            entry["auroc_by_layer"] = {str(k): v for k, v in data.auroc_by_layer(method).items()}
            data_out.setdefault(name, {})[method] = entry
            rows.append(row)
    g3_rows = [[control, name, method, _ci(result.specificity_gap(control, name, method))]
               for control in result.specificity() for name in result.sentiment() for method in methods]
    report.data["transfer"] = {
        "samples": {name: {"path": shown_path(d.sample.dataset.path), "size": len(d.sample.dataset),
                           "sampled": d.sample.counts(), "seed": d.sample.seed} for name, d in datasets.items()},
        "sst_sample": {"path": shown_path(result.sst.dataset.path), "sampled": result.sst.counts()},
        "chosen_layers": {m: {"layer": c.layer, "sign": c.sign, "sst_auroc": {str(k): v for k, v in c.sst_auroc.items()}}
                          for m, c in result.chosen.items()},
        "datasets": data_out, "null_directions": result.null_count, "seed": result.seed,
    }
    report.add_section(
        "Transfer and specificity (G1-G3)",
        "Datasets and samples (seeded balanced samples; the SST sample chooses each method's layer and sign):\n\n"
        + tabulate(sizes, headers=["dataset", "role", "file", "items", "sample"], tablefmt="github")
        + "\n\nLayer chosen per method on the SST sample (highest AUROC of the oriented last-token projection among "
        "the method's layers):\n\n"
        + tabulate(layers, headers=["method", "layer", "SST-sample AUROC", "sign"], tablefmt="github")
        + f"\n\nAt the chosen layer (cosine projections; AUROC: class 1 vs class 0, i.e. positive vs negative, or "
        f"objective vs subjective on subj). G1 = AUROC (last token) − the {result.null_quantile_level:.1%} quantile of "
        f"{result.null_count} random directions oriented on the SST sample (seed {result.seed}); 95% CI: paired "
        "percentile bootstrap over items. The random direction is the suite's control, not a claim row.\n\n"
        + tabulate(rows, headers=["dataset", "method", "layer", "AUROC last token", "AUROC token mean",
                                  f"null {result.null_quantile_level:.1%}", "G1 [95% CI]", "|AUROC − 0.5|"],
                   tablefmt="github")
        + ("\n\nG3, separation on the sentiment dataset minus on the control (95% CI: each dataset resampled "
           "independently):\n\n" + tabulate(g3_rows, headers=["control", "sentiment dataset", "method", "G3 [95% CI]"],
                                             tablefmt="github") if g3_rows else ""),
    )

    def draw(figure) -> None:
        panels = [("SST sample (layer choice)", None)] + [(name, data) for name, data in datasets.items()]
        axes = figure.subplots(1, len(panels), sharey=True)
        for ax, (title, data) in zip(axes, panels):
            for method in methods:
                by_layer = result.chosen[method].sst_auroc if data is None else data.auroc_by_layer(method)
                line, = ax.plot(list(by_layer), list(by_layer.values()), marker="o", markersize=2, label=method,
                                linestyle=":" if method == "random" else "-")
                chosen = result.chosen[method].layer
                ax.plot([chosen], [by_layer[chosen]], marker="*", markersize=9, color=line.get_color())
            ax.axhline(0.5, color="black", linewidth=0.6)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("layer")
        axes[0].set_ylabel("AUROC of the last-token projection (class 1 vs 0)")
        axes[0].legend(fontsize=7)
        figure.suptitle(f"Toy-fitted directions on other data, by layer (each layer's sign set on the SST sample; "
                        f"star: the layer chosen on SST): {report.model_name}", fontsize=9)

    report.add_figure("transfer_auroc_by_layer.png", draw)


@render.register(TransferCompetence)
def _competence(result: TransferCompetence, report) -> None:
    estimate = result.competence.estimate
    report.data.setdefault("transfer_competence", {})[result.dataset] = {
        "centred_accuracy": estimate.value, "ci": [estimate.ci_low, estimate.ci_high], "n": estimate.n,
        "uncentred_accuracy": result.competence.uncentred_accuracy, "bias": result.competence.bias,
        "applies": result.applies}
    report.add_section(
        f"Transfer: competence on {result.dataset} (G2's gate)",
        f"Every sampled {result.dataset} item ({estimate.n}) in `{result.competence.scaffold.template}`: centred accuracy "
        f"{estimate.value:.1f}% [{estimate.ci_low:.1f}, {estimate.ci_high:.1f}] (Wilson), uncentred "
        f"{result.competence.uncentred_accuracy:.1f}%, bias {result.competence.bias:+.2f}. P0's classification rule "
        f"{'holds: G2 applies' if result.applies else 'does not hold: G2 is not applicable and not run'}.",
    )


@render.register(TransferAblations)
def _ablations(result: TransferAblations, report) -> None:
    rows, data = [], {}
    for method, layer in result.layers.items():
        for positions in result.positions:
            g2 = result.ablation_margin_drop(method, positions)
            data[f"{method}:{positions}"] = {"layer": layer, "g2": g2.value, "ci": [g2.ci_low, g2.ci_high],
                                             "drop": result.mean_drop(method, positions),
                                             "random_drop": result.mean_drop(method, positions, random=True),
                                             "random_quantile_drop": result.null_quantile_drop(method, positions)}
            rows.append([method, layer, positions, f"{result.mean_drop(method, positions):.3f}",
                         f"{result.mean_drop(method, positions, random=True):.3f}",
                         f"{result.null_quantile_drop(method, positions):.3f}", _ci(g2),
                         f"{result.accuracy(method, positions):.1f}", f"{result.accuracy(method, positions, True):.1f}"])
    report.data.setdefault("transfer_ablations", {})[result.dataset] = data
    report.add_section(
        f"Transfer: ablations on {result.dataset} (G2)",
        f"{len(result.labels)} items in the SST CLASSIFICATION scaffold; each direction projected out at its SST-chosen "
        f"layer at `{result.site}`; the null: {result.random_count} seeded random directions at the same layer, the "
        f"same positions, on {int(result.null_items.sum())} of the items. Margin = answer logit difference signed by "
        f"the label; clean accuracy (margin > 0) {result.accuracy():.1f}%. G2 = the direction's mean drop − the "
        f"null's {result.null_quantile:.1%} quantile of mean drops; 95% CI: paired studentized bootstrap over items "
        "(both recomputed in every resample).\n\n"
        + tabulate(rows, headers=["method", "layer", "positions", "margin drop", "random drop (mean)",
                                  f"random drop ({result.null_quantile:.1%} q.)", "G2 [95% CI]",
                                  "accuracy ablated %", "accuracy random %"], tablefmt="github"),
    )
