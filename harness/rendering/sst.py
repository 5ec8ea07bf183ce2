"""Renderers: the SST files (§2.3), directional patching onto SST (§5.2, §6.2 P3–P5, figure
``sst_layer_sweep.png``), the zero-shot set and the zero-shot ablations (§5.3, §6.1 A1–A5, figure
``sst_ablations.png``)."""

from __future__ import annotations

import torch
from tabulate import tabulate

from harness.rendering import render
from harness.sst import SSTFiles
from harness.sst_ablations import MAX_PROMPT_TOKENS, SSTAblations, ZeroShotSet
from harness.sst_patching import SSTPatching
from harness.sst_prompts import ZERO_SHOT

PATCHING_METRICS = {"ld_recovered": "% logit difference recovered", "logit_flip": "% logit flip"}
CLASSES = (("positive", 1), ("negative", 0))


@render.register(SSTFiles)
def _files(result: SSTFiles, report) -> None:
    report.data["sst_files"] = {name: {"path": str(split.path), "sentences": len(split),
                                       "positive": sum(split.labels)} for name, split in result.splits.items()}
    report.add_section("SST files (§2.3)", "\n".join(f"- {split.describe()}" for split in result.splits.values()))


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
        f"{' / '.join(scaffold.answers)}), split **{patching.split_name}** ({patching.split_file}); every layer "
        f"where the method has a direction (DAS only at its fitted layers). Prompts are left-padded with an "
        f"attention mask.\n\n" + "\n".join(f"- {name}: {value}" for name, value in counts.items())
        + "\n\nBest layer per method:\n\n"
        + tabulate(rows, headers=["method", "% LD recovered", "% logit flip"], tablefmt="github"),
    )

    def draw(figure) -> None:
        axes = figure.subplots(1, 2, sharey=True)
        for ax, metric in zip(axes, tables):
            for method, values in tables[metric].items():
                ax.plot(list(values), list(values.values()), marker="o", markersize=3, label=method)
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.set_xlim(0, patching.n_layers)
            ax.set_xlabel("residual layer")
            ax.set_title(PATCHING_METRICS[metric])
        axes[0].legend(fontsize=7)
        figure.suptitle(f"Directional patching, toy-fitted directions onto SST {patching.split_name} "
                        f"({len(results.labels)} pairs): {report.model_name}")

    report.add_figure("sst_layer_sweep.png", draw)


@render.register(ZeroShotSet)
def _zero_shot_set(zero_shot: ZeroShotSet, report) -> None:
    report.data["zero_shot_set"] = {"counts": zero_shot.counts, "raw_accuracy": zero_shot.raw_accuracy}


@render.register(SSTAblations)
def _ablations(results: SSTAblations, report) -> None:
    names, first = list(results.ld), results.first_position
    rows = []
    for name in names:
        low, high = results.ld_drop_ci(name)
        a_low, a_high = results.accuracy_ci(name)
        rows.append([name, f"{results.ld_drop(name):.1f} [{low:.1f}, {high:.1f}]",
                     f"{results.accuracy(name):.1f} [{a_low:.1f}, {a_high:.1f}]",
                     *(f"{results.ld_drop(name, label):.1f} / {results.accuracy(name, label):.0f}"
                       for _, label in CLASSES)])
    report.data["sst_ablations"] = {
        "site": results.site, "layers": list(results.layers), "counts": results.counts,
        "ld_orig_mean": float(results.ld_orig.mean()),
        "ablations": {name: {"ld_drop": results.ld_drop(name), "accuracy": results.accuracy(name),
                             **{f"{cls}_{metric}": getattr(results, metric)(name, label)
                                for cls, label in CLASSES for metric in ("ld_drop", "accuracy")}} for name in names},
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
        f"positive / negative; prompts over {MAX_PROMPT_TOKENS} tokens are dropped with the comma filter, "
        "which runs first so the model only classifies comma-holding prompts; the filters commute, so the set is "
        "the paper's):\n\n"
        + tabulate(count_rows, headers=["stage", "positive", "negative"], tablefmt="github")
        + f"\n\nAblation site (`--ablation-hook`): **{results.site}**, i.e. {hook}, at every layer where the "
        f"DAS direction exists: {list(results.layers)} (DAS is fitted only there; the random direction is ablated "
        "at the same layers). The comma mean ablation replaces the whole residual at comma positions in every "
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
        + tabulate(diag_rows, headers=["boundary", "‖x‖ first", "‖x‖ rest", "|x·d_random| first",
                                       "|x·d_random| rest", "|x·d_DAS| first", "|x·d_DAS| rest"], tablefmt="github"),
    )

    def draw(figure) -> None:
        axes = figure.subplots(1, 2)
        x = torch.arange(len(names)).float()
        for ax, metric, label in zip(axes, ("ld_drop", "accuracy"), ("Δ% logit difference", "accuracy %")):
            for offset, (cls, rows) in zip((-0.27, 0, 0.27), (("all", None), *CLASSES)):
                ax.bar(x + offset, [getattr(results, metric)(name, rows) for name in names], width=0.27, label=cls)
            ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel(label)
            ax.axhline(0, color="grey", linewidth=0.5)
        axes[0].legend(fontsize=7)
        figure.suptitle(f"SST zero-shot ablations ({len(results.labels)} prompts, {results.site}): {report.model_name}")

    report.add_figure("sst_ablations.png", draw)
