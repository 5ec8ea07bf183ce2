"""Renderers: the SST files (§2.3), the model's competence on them (P0), directional patching onto SST
(§5.2, §6.2 P3–P5, figure ``sst_layer_sweep.png`` with per-layer 95% bootstrap bands over pairs), the
zero-shot set and the zero-shot ablations (§5.3, §6.1 A1–A5, figure ``sst_ablations.png`` with 95%
bootstrap error bars over prompts)."""

from __future__ import annotations

import torch
from tabulate import tabulate

from harness.reporting.rendering import render, shown_path
from harness.datasets.sst import SSTFiles
from harness.experiments.sst_ablations import SSTAblations, ZeroShotSet
from harness.experiments.sst_patching import SSTPatching
from harness.datasets.sst_prompts import ZERO_SHOT, SSTCompetence

PATCHING_METRICS = {"ld_recovered": "% logit difference recovered", "logit_flip": "% logit flip"}
CLASSES = (("positive", 1), ("negative", 0))


@render.register(SSTFiles)
def _files(result: SSTFiles, report) -> None:
    report.data["sst_files"] = {name: {"path": shown_path(split.path), "sentences": len(split),
                                       "positive": sum(split.labels)} for name, split in result.splits.items()}
    report.add_section("SST files (§2.3)", "\n".join(
        f"- {name}: {shown_path(split.path)} ({len(split)} sentences, {sum(split.labels)} positive, "
        f"{len(split) - sum(split.labels)} negative)" for name, split in result.splits.items()))


@render.register(SSTCompetence)
def _competence(result: SSTCompetence, report) -> None:
    estimate = result.estimate
    report.data.setdefault("sst_competence", {})[result.case] = {
        "scaffold": result.scaffold.template, "split": result.split_name, "centred_accuracy": estimate.value,
        "ci_low": estimate.ci_low, "ci_high": estimate.ci_high, "n": estimate.n,
        "uncentred_accuracy": result.uncentred_accuracy, "bias": result.bias}
    report.add_section(
        f"SST competence, {result.case} scaffold (P0, §5.1)",
        f"Every {result.split_name} sentence ({estimate.n}) in `{result.scaffold.template}`: centred accuracy "
        f"{estimate.value:.1f}% [{estimate.ci_low:.1f}, {estimate.ci_high:.1f}] (Wilson), uncentred "
        f"{result.uncentred_accuracy:.1f}%, bias (mean ` Positive` − ` Negative` logit) {result.bias:+.2f}. "
        f"{'P3–P5' if result.case == 'classification' else 'A1–A5'} apply only when P0.{result.case} replicates.",
    )


@render.register(SSTPatching)
def _patching(patching: SSTPatching, report) -> None:
    results, counts, scaffold = patching.results, patching.counts, patching.scaffold
    tables = {metric: results.table(metric) for metric in PATCHING_METRICS}
    report.data["sst_patching"] = {"counts": counts, **{
        metric: {m: {str(k): v for k, v in t.items()} for m, t in table.items()} for metric, table in tables.items()}}
    rows = [[method, *(f"{tables[metric][method][layer]:.1f} (L{layer})"
                       for metric in tables for layer in [results.best_layer(method, metric)])]
            for method in results.methods()]
    report.add_section(
        "Directional patching onto SST (§5.2, §6.2 P3–P5)",
        f"Toy-fitted directions (ToyMovieReview train, ADJ) patched at every position of residual boundary L "
        f"of the corrupted SST prompt, CLASSIFICATION scaffold `{scaffold.template}` (answers "
        f"{' / '.join(scaffold.answers)}), split **{patching.split_name}** ({patching.split_file}); every method "
        f"at the layers where DAS has a trained direction ({', '.join(map(str, results.layers('das'))) or 'none: every layer'}; "
        f"P3's declared grid). Each pair's prompts run unpadded, by prompt length, the positions before the first "
        f"token where clean and corrupted differ computed once.\n\n" + "\n".join(f"- {name}: {value}" for name, value in counts.items())
        + "\n\nBest layer per method:\n\n"
        + tabulate(rows, headers=["method", "% LD recovered", "% logit flip"], tablefmt="github"),
    )

    bands = {metric: {method: [results.estimate(metric, method, layer) for layer in results.layers(method)]
                      for method in results.methods()} for metric in tables}

    def draw(figure) -> None:
        axes = figure.subplots(1, 2, sharey=True)
        for ax, metric in zip(axes, tables):
            for method, values in tables[metric].items():
                line, = ax.plot(list(values), list(values.values()), marker="o", markersize=3, label=method)
                ax.fill_between(list(values), [e.ci_low for e in bands[metric][method]],
                                [e.ci_high for e in bands[metric][method]], color=line.get_color(), alpha=0.15,
                                linewidth=0)
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.set_xlim(0, patching.n_layers)
            ax.set_xlabel("residual layer")
            ax.set_title(PATCHING_METRICS[metric])
        axes[0].legend(fontsize=7)
        figure.suptitle(f"Directional patching, toy-fitted directions onto SST {patching.split_name} "
                        f"({len(results.labels)} pairs; bands: 95% bootstrap CI over pairs): {report.model_name}")

    report.add_figure("sst_layer_sweep.png", draw)


@render.register(ZeroShotSet)
def _zero_shot_set(zero_shot: ZeroShotSet, report) -> None:
    report.data["zero_shot_set"] = {"counts": zero_shot.counts, "raw_accuracy": zero_shot.raw_accuracy,
                                    "fallback": zero_shot.fallback, "deviation": zero_shot.deviation(),
                                    "class_mean_clean_ld": zero_shot.class_margins()}
    if zero_shot.fallback:
        report.add_section("Deviation: the zero-shot ablation set (§2.3)",
                           f"{zero_shot.deviation()}. A1–A5 are measured on this set and gated on it: each class's mean "
                           "clean LD (" + ", ".join(f"{cls} {v:.2f}" for cls, v in zero_shot.class_margins().items())
                           + ") must reach the protocol's margin; the counts are in the ablation section.")


@render.register(SSTAblations)
def _ablations(results: SSTAblations, report) -> None:
    names, first = list(results.ld), results.first_position
    rows = []
    estimates = {metric: {name: results.estimate(metric, name) for name in names} for metric in ("ld_drop", "accuracy")}
    for name in names:
        ld, acc = estimates["ld_drop"][name], estimates["accuracy"][name]
        rows.append([name, f"{ld.value:.1f} [{ld.ci_low:.1f}, {ld.ci_high:.1f}]",
                     f"{acc.value:.1f} [{acc.ci_low:.1f}, {acc.ci_high:.1f}]",
                     *(f"{results.ld_drop(name, label):.1f} / {results.accuracy(name, label):.0f}"
                       for _, label in CLASSES)])
    for where in results.null:  # the null: each random direction's drop, summarised over the directions
        ld, acc = (results.null_drops(metric, where) for metric in ("ld_drop", "accuracy"))
        rows.append([f"null ({results.null_count} random, {where})",
                     f"mean {float(ld.mean()):.1f}; {results.null_quantile:.1%} q. {results.null_quantile_drop('ld_drop', where):.1f}",
                     f"lost: mean {float(acc.mean()):.1f}", "", ""])
    report.data["sst_ablations"] = {
        "site": results.site, "layers": list(results.layers), "counts": results.counts,
        "ld_orig_mean": float(results.ld_orig.mean()),
        "ablations": {name: {"ld_drop": results.ld_drop(name), "accuracy": results.accuracy(name),
                             **{f"{cls}_{metric}": getattr(results, metric)(name, label)
                                for cls, label in CLASSES for metric in ("ld_drop", "accuracy")}} for name in names},
        "null": {where: {metric: results.null_drops(metric, where).tolist() for metric in ("ld_drop", "accuracy")}
                 for where in results.null},
        "first_position": first,
    }
    count_rows = [[stage, c["positive"], c["negative"]] for stage, c in results.counts.items()]
    diag_rows = [[layer, f"{d['norm_first']:.0f}", f"{d['norm_rest']:.0f}", f"{d['random_first']:.1f}",
                  f"{d['random_rest']:.2f}", f"{d['das_first']:.1f}", f"{d['das_rest']:.2f}"] for layer, d in first.items()]
    hook = ("`blocks.ℓ.hook_resid_post` (the authors' off-by-one: fitted at resid_pre ℓ)"
            if results.site == "resid_post" else "the boundary each direction was fitted at (`resid_pre ℓ`)")
    report.add_section(
        "SST zero-shot ablations (§5.3, §6.1 A1–A5)",
        f"Prompt `{ZERO_SHOT.template}`, answers {' / '.join(ZERO_SHOT.answers)}. Set construction (each count "
        f"positive / negative; prompts over {results.max_prompt_tokens} tokens are dropped with the comma filter, "
        "which runs first so the model only classifies comma-holding prompts; the filters commute, so the set is "
        "the paper's):\n\n"
        + tabulate(count_rows, headers=["stage", "positive", "negative"], tablefmt="github")
        + f"\n\nAblation site (`--ablation-hook`): **{results.site}**, i.e. {hook}, at every layer where the "
        f"DAS direction exists: {list(results.layers)} (DAS is fitted only there; the null's {results.null_count} seeded "
        "random directions are ablated at the same layers and positions; its rows give each direction's drop, "
        "summarised over the directions). The comma mean ablation replaces the whole residual at comma positions in every "
        "layer with that layer's mean comma activation over this set. Δ% LD = (mean LD_orig − mean LD_abl) / "
        f"mean LD_orig (positive = LD fell); accuracy = % with uncentred LD > 0 (100% before). Mean LD before: "
        f"{float(results.ld_orig.mean()):.2f}.\n\n"
        + tabulate(rows, headers=["ablation", "Δ% LD [95% CI]", "accuracy % [95% CI]",
                                  "positive: Δ% LD / acc", "negative: Δ% LD / acc"], tablefmt="github")
        + "\n\nFirst position (BOS, prepended as in the paper's TransformerLens): mean residual norm and mean "
        "|x·d| at the first real position against all other real positions, at each ablated boundary. "
        "Projecting a direction out of a vector with a very large norm (an attention sink) removes a large "
        "component even for a random direction, which is why the random control is shown with and without "
        "the first position; the paper ablated every non-pad position, BOS included.\n\n"
        + tabulate(diag_rows, headers=["boundary", "‖x‖ first", "‖x‖ rest", "|x·d_random| first (null mean)",
                                       "|x·d_random| rest", "|x·d_DAS| first", "|x·d_DAS| rest"], tablefmt="github"),
    )

    def draw(figure) -> None:
        axes = figure.subplots(1, 2)
        x = torch.arange(len(names)).float()
        for ax, metric, label in zip(axes, ("ld_drop", "accuracy"), ("Δ% logit difference", "accuracy %")):
            for offset, (cls, rows) in zip((-0.27, 0, 0.27), (("all", None), *CLASSES)):
                heights = [getattr(results, metric)(name, rows) for name in names]
                errors = None
                if rows is None:  # the 95% bootstrap CI over prompts of the whole set
                    errors = [[max(0.0, h - estimates[metric][n].ci_low) for h, n in zip(heights, names)],
                              [max(0.0, estimates[metric][n].ci_high - h) for h, n in zip(heights, names)]]
                ax.bar(x + offset, heights, width=0.27, label=cls, yerr=errors, capsize=2)
            ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel(label)
            ax.axhline(0, color="grey", linewidth=0.5)
        axes[0].legend(fontsize=7)
        figure.suptitle(f"SST zero-shot ablations ({len(results.labels)} prompts, {results.site}; error bars: 95% "
                        f"studentized bootstrap CI over prompts): {report.model_name}")

    report.add_figure("sst_ablations.png", draw)
