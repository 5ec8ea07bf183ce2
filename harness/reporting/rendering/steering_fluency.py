"""Renderer of S1's fluency control (§5.5, ``harness.experiments.steering_fluency``): per run and coefficient,
the steered-to share, the fluent share of both draws and the median continuation NLL, the fluent range
(chosen on the selection draw) marked with S1's Spearman ρ on it (bootstrap under the result's seed), and
steering_fluency.png (steered-to share over all samples and over fluent samples, fluent share)."""

from __future__ import annotations

import torch
from tabulate import tabulate

from harness.datasets.lexicon import LABEL_NAMES
from harness.experiments.steering_fluency import SteeringFluency
from harness.reporting.rendering import render


@render.register(SteeringFluency)
def _steering_fluency(fluency: SteeringFluency, report) -> None:
    lines = [f"S1's fluency control (its protocol): {fluency.describe()}. S1 and S1.strongest are read on each run's "
             "fluent range; the coefficients after it are shown as degenerate."]
    data = {}
    for name, run in fluency.runs.items():
        k, fluent, nll = fluency.fluent_range(name), fluency.main.fluent(name, fluency.threshold), fluency.main.nll[name]
        hits = run.labels == run.target
        rows = []
        for i, c in enumerate(run.coefficients):
            among_fluent = hits[i][fluent[i]].double().mean() * 100 if fluent[i].any() else float("nan")
            finite = nll[i][torch.isfinite(nll[i])]
            rows.append([f"{c:+.2f}", f"{hits[i].double().mean() * 100:.0f}", f"{among_fluent:.0f}",
                         f"{fluency.fluent_share(name)[i] * 100:.0f}", f"{fluent[i].double().mean() * 100:.0f}",
                         f"{finite.median():.2f}" if len(finite) else "n/a", "fluent" if i < k else "degenerate"])
        data[name] = {"fluent_range": k, "fluent_share_selection": fluency.fluent_share(name).tolist(),
                      "fluent_share_main": fluency.fluent_share(name, "main").tolist(), "nll_main": nll.tolist(),
                      "nll_selection": fluency.selection.nll[name].tolist()}
        rho = fluency.trend(name, report.rendering_seed) if k >= 2 else None  # S1's statistic, its seed
        trend = (f"S1's Spearman ρ on it {rho.value:.3f} [{rho.ci_low:.3f}, {rho.ci_high:.3f}]" if rho else
                 "S1 is not applicable: no steered coefficient is fluent")
        data[name]["fluent_range_trend"] = [rho.value, rho.ci_low, rho.ci_high] if rho else None
        lines += [f"\n**{name}**: fluent range: the first {k} of {len(run.coefficients)} coefficients; {trend}\n",
                  tabulate(rows, headers=["coef", f"{LABEL_NAMES[run.target]} %", f"{LABEL_NAMES[run.target]} % "
                                          "of fluent samples", "fluent % (selection draw)", "fluent % (main draw)",
                                          "median NLL (nats/token)", "range"], tablefmt="github")]
    report.data["steering_fluency"] = {"threshold": fluency.threshold, "quantile": fluency.quantile,
                                       "min_fluent_share": fluency.min_fluent_share, "runs": data}
    report.add_section("Steering fluency control (§5.5, S1)", "\n".join(lines))

    def draw(figure) -> None:
        axes = figure.subplots(1, len(fluency.runs), sharey=True, squeeze=False)[0]
        for ax, (name, run) in zip(axes, fluency.runs.items()):
            fluent, hits = fluency.main.fluent(name, fluency.threshold), (run.labels == run.target).double()
            ax.plot(run.coefficients, hits.mean(-1) * 100, "o-", label=f"{LABEL_NAMES[run.target]} %, all samples")
            ax.plot(run.coefficients, [float(h[f].mean() * 100) if f.any() else float("nan")
                                       for h, f in zip(hits, fluent)], "s--", label=f"{LABEL_NAMES[run.target]} %, fluent samples")
            ax.plot(run.coefficients, fluency.fluent_share(name) * 100, "^:", color="tab:grey",
                    label="fluent %, selection draw")
            k = fluency.fluent_range(name)
            if k < len(run.coefficients):
                ax.axvspan(run.coefficients[max(k, 1) - 1], run.coefficients[-1], color="tab:red", alpha=0.08,
                           label="after the fluent range")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("coefficient")
        axes[0].set_ylabel("%")
        axes[0].legend(fontsize=7)
        figure.suptitle(f"Steering and fluency (S1's control): {report.model_name}", fontsize=10)

    report.add_figure("steering_fluency.png", draw)
