"""Renderers of the natural-text results (§5.4-§5.6): the correlational evaluation with
correlation_label_share.png, steering with steering_curve.png, negation with negation_layers.png."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
from tabulate import tabulate

from harness.corpus_projections import CorpusProjections
from harness.correlation import auroc, tail_score
from harness.direction_methods import methods
from harness.lexicon import LABEL_NAMES, NEGATIVE, NEUTRAL, POSITIVE, label_counts
from harness.negation import CONTROL_SENTENCES, NegationResults
from harness.rendering import render
from harness.steering import STEERING_NORM_FRACTION, SteeringSetup

LABEL_COLOURS = {NEGATIVE: "tab:red", NEUTRAL: "tab:grey", POSITIVE: "tab:green"}


def _panels(figure, titles, xlabel: str, ylabel: str, title: str) -> list:
    """One panel per title side by side (shared y), titled and labelled; the first carries the y label."""
    axes = figure.subplots(1, len(titles), sharey=True)
    for ax, name in zip(axes, titles):
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(ylabel)
    figure.suptitle(title)
    return list(axes)


@render.register(CorpusProjections)
def _correlation(corpus: CorpusProjections, report) -> None:
    early = corpus.early
    rows, data = [], {}
    for method, values in corpus.projections.items():
        tails = tail_score(values, corpus.labels)
        area = auroc(values, corpus.labels)
        data[method] = {"auroc": area, **asdict(tails)}
        rows.append([method, f"{tails.score:.3f}",
                     f"{LABEL_NAMES[tails.low_label]} {tails.low_share:.2f} (n={tails.low_count})",
                     f"{LABEL_NAMES[tails.high_label]} {tails.high_share:.2f} (n={tails.high_count})", f"{area:.3f}"])
    counts = label_counts(corpus.labels.tolist())
    null_low, null_median, null_high = torch.quantile(corpus.random_null_auroc.double(),
                                                      torch.tensor([0.025, 0.5, 0.975], dtype=torch.float64)).tolist()
    report.data["correlation"] = {"corpus": corpus.corpus, "labeller": corpus.labeller, "layer": early.layer,
                                  "direction_layers": early.source_layer, "label_counts": counts, "methods": data,
                                  "random_null_auroc": corpus.random_null_auroc.tolist()}
    report.add_section(
        "Correlational evaluation on natural text (§5.4)",
        f"Corpus: {corpus.corpus}; {len(corpus.labels)} tokens (BOS and padding left out). Labeller: "
        f"{corpus.labeller}. Token labels: {counts}. Projection: cosine of the residual at "
        f"`{early.hook}` "
        f"with each method's direction, {early.describe()}. Tails at the 0.1% / 99.9% quantiles; each tail's "
        "majority non-neutral label and its share (neutral counted in the denominator).\n\n"
        + tabulate(rows, headers=["method", "tail score", "low tail", "high tail", "AUROC (pos vs neg)"], tablefmt="github")
        + f"\n\nChance spread: the AUROC of {len(corpus.random_null_auroc)} seeded random directions has median "
        f"{null_median:.3f} and 2.5-97.5% range [{null_low:.3f}, {null_high:.3f}] (the tokens of one word share its "
        "label and most of its residual, so labelled tokens are far from independent samples and chance spreads "
        "wider than their count suggests).",
    )

    def draw(figure) -> None:
        axes = _panels(figure, corpus.projections, "cosine projection", "share of tokens in bin",
                       f"Lexicon label share by projection bin (20 equal-width bins), layer {early.layer}: "
                       f"{report.model_name}")
        for ax, values in zip(axes, corpus.projections.values()):
            edges = torch.linspace(float(values.min()), float(values.max()), 21)
            bins = torch.bucketize(values, edges[1:-1])
            centres = ((edges[1:] + edges[:-1]) / 2).numpy()
            for label in (POSITIVE, NEGATIVE):
                share = [float((corpus.labels[bins == b] == label).float().mean()) if (bins == b).any() else np.nan
                         for b in range(20)]
                ax.plot(centres, share, marker="o", markersize=3, color=LABEL_COLOURS[label], label=LABEL_NAMES[label])
        axes[0].legend(fontsize=7)

    report.add_figure("correlation_label_share.png", draw)


@render.register(SteeringSetup)
def _steering(setup: SteeringSetup, report) -> None:
    config = setup.settings
    scale = ("the paper's coefficients" if setup.paper_coefficients else
             f"strongest |coef| = {STEERING_NORM_FRACTION} × the median residual norm at the hook over the paper "
             f"prompt's tokens (BOS left out), {setup.residual_norm:.1f}")
    lines = [
        f"Activation addition of coef × unit K-means direction (fitted at ADJ on ToyMovieReview; cosine "
        f"{setup.cos_with_mean_diff:.2f} with the mean-difference direction there) at `{setup.hook}`, every "
        f"position, active for the whole generation; {scale}: the paper's grid 0…20 at every second value, "
        f"scaled to a strongest |coef| of {setup.strongest:.2f}. "
        f"{config.samples_per_coef} samples per coefficient in one batched `generate` (top-k {config.top_k}, "
        f"temperature {config.temperature}, {config.max_new_tokens} new tokens, seed {config.seed} for every "
        f"coefficient, BOS prepended: {setup.prepend_bos}, key/value cache on with the suite's fix, see "
        "harness/generation.py). "
        f"{setup.model_name} is used as it is: the prompts are plain text, no chat template. Continuations (without "
        f"the prompt) are labelled by {setup.labeller}.",
    ]
    data = {}
    for name, run in setup.runs.items():
        shares = {label: run.share(label) for label in (NEGATIVE, NEUTRAL, POSITIVE)}
        data[name] = {"prompt": run.prompt, "coefficients": run.coefficients,
                      "shares": {LABEL_NAMES[l]: s.tolist() for l, s in shares.items()},
                      "continuations": [list(row) for row in run.continuations]}
        rows = [[f"{c:+.2f}", *(f"{shares[l][i]:.2f}" for l in (NEGATIVE, NEUTRAL, POSITIVE)),
                 " / ".join(repr(t.strip()[:90]).replace("|", "\\|") for t in run.continuations[i][:3])]
                for i, c in enumerate(run.coefficients)]
        lines += [f"\n**{name}**: `{run.prompt}`\n",
                  tabulate(rows, headers=["coef", "negative", "neutral", "positive", "first 3 continuations"],
                           tablefmt="github")]
    report.data["steering"] = {"hook": setup.hook, "residual_norm": setup.residual_norm,
                               "strongest": setup.strongest, "runs": data}
    report.add_section("Activation addition, steering (§5.5)", "\n".join(lines))

    def draw(figure) -> None:
        axes = _panels(figure, setup.runs, f"coefficient at {setup.hook}", "share of continuations (VADER)",
                       f"Steering along the K-means direction: {report.model_name}")
        for ax, run in zip(axes, setup.runs.values()):
            for label, colour in LABEL_COLOURS.items():
                ax.plot(run.coefficients, run.share(label).numpy(), marker="o", color=colour, label=LABEL_NAMES[label])
        axes[0].legend(fontsize=7)

    report.add_figure("steering_curve.png", draw)


@render.register(NegationResults)
def _negation(results: NegationResults, report) -> None:
    rows, data = [], {}
    for method in methods(controls=False):
        summary = {which: results.flips(method, which).summary() for which in ("negated", "control")}
        data[method] = summary
        for which, values in summary.items():
            rows.append([method, which, *(f"{values[k]:.3f}" if k != "flip_percent" else f"{values[k]:.1f}"
                                          for k in ("mean_change", "mean_toward_opposite", "mean_z", "flip_percent",
                                                    "median_flip_size"))])
    kmeans = results.flips("kmeans")
    per_sentence = [[s, w, f"{a:.3f}", f"{b:.3f}", f"{f:.2f}"] for s, w, a, b, f in
                    zip(results.sentences, results.words, kmeans.initial.tolist(), kmeans.final.tolist(),
                        kmeans.flip_size.tolist())]
    report.data["negation"] = {"early_layer": results.early_layer, "late_layer": results.late_layer,
                               "controls": CONTROL_SENTENCES, "methods": data}
    report.add_section(
        "Negation (§5.6)",
        f"The tracked word's cosine projection onto each method's early-layer direction, at layer "
        f"{results.early_layer} and layer {results.late_layer} (the paper's 1 and 10 of 12 at the same depth), for "
        f"the paper's {len(results.sentences)} sentences and the suite's controls without negation (harness/negation.py). "
        "toward opposite: the change times sign(corpus mean − initial); z: |change| / corpus std; flip: "
        "0.5·change/(corpus mean − initial) > 0. Corpus statistics from the R1 corpus at the early layer.\n\n"
        + tabulate(rows, headers=["method", "sentences", "mean change", "mean toward opposite", "mean z",
                                  "flip %", "median flip size"], tablefmt="github")
        + "\n\nK-means, per sentence:\n\n"
        + tabulate(per_sentence, headers=["sentence", "word", f"L{results.early_layer}", f"L{results.late_layer}",
                                          "flip size"], tablefmt="github"),
    )

    def draw(figure) -> None:
        five = methods(controls=False)
        axes = _panels(figure, five, "residual layer",
                       "tracked word: projection − corpus mean,\nsigned by its side at the early layer",
                       f"Negation: the tracked word's projection across layers: {report.model_name}")
        layers = np.arange(results.negated["kmeans"].shape[1])
        for ax, method in zip(axes, five):
            for which, colour in (("negated", "tab:purple"), ("control", "tab:olive")):
                values = getattr(results, which)[method]
                side = torch.sign(values[:, results.early_layer] - results.corpus_mean[method])[:, None]
                oriented = (side * (values - results.corpus_mean[method])).numpy()
                ax.plot(layers, oriented.T, color=colour, alpha=0.15, linewidth=0.7)
                ax.plot(layers, oriented.mean(0), color=colour, linewidth=2, label=f"{which} (mean)")
            for layer in (results.early_layer, results.late_layer):
                ax.axvline(layer, color="grey", linewidth=0.5, linestyle="--")
            ax.axhline(0, color="black", linewidth=0.5)
        axes[0].legend(fontsize=7)

    report.add_figure("negation_layers.png", draw)
