"""Renderers of the natural-text results (§5.4-§5.6): the correlational evaluation with
correlation_label_share.png (bands: 95% CI over word types) and correlation_auroc.png (AUROC with its CI
against the random-direction null), again with the suffix _standardized for R1's robust reading; steering
with steering_curve.png (Wilson 95% bars); negation with negation_layers.png (bands: 95% CI of the mean over
sentences)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
from tabulate import tabulate

from harness.experiments.corpus_projections import STANDARDIZED, CorpusProjections
from harness.experiments.correlation import tail_score
from harness.directions.registry import methods
from harness.datasets.lexicon import LABEL_NAMES, NEGATIVE, NEUTRAL, POSITIVE, label_counts
from harness.experiments.negation import CONTROL_SENTENCES, NegationResults
from harness.reporting.rendering import render
from harness.measures.statistics import Estimate, binned_share_bands
from harness.experiments.steering import SteeringSetup

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


def _with_ci(estimate: Estimate) -> str:
    return f"{estimate.value:.3f} [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]"


def _interval(estimate: Estimate) -> list[float]:
    return [estimate.value, estimate.ci_low, estimate.ci_high]


def _bin_share_bands(corpus: CorpusProjections, bins: torch.Tensor, label: int, n_bins: int) -> tuple[np.ndarray, ...]:
    """Per projection bin, the share of ``label`` among its tokens and its 95% CI over word types
    (``harness.measures.statistics.binned_share_bands``, the session's seed); an empty bin is drawn as a gap."""
    return binned_share_bands(corpus.word_ids, corpus.n_word_types, bins, n_bins, corpus.labels == label, corpus.seed)


@render.register(CorpusProjections)
def _correlation(corpus: CorpusProjections, report) -> None:
    early = corpus.early
    rows, data = [], {}
    for method, values in corpus.projections.items():
        tails = tail_score(values, corpus.labels, corpus.tail_quantile)
        score, area = corpus.tail_score(method), corpus.auroc(method)
        data[method] = {"auroc": area.value, "auroc_ci": [area.ci_low, area.ci_high], **asdict(tails),
                        "score_ci": [score.ci_low, score.ci_high]}
        rows.append([method, _with_ci(score),
                     f"{LABEL_NAMES[tails.low_label]} {tails.low_share:.2f} (n={tails.low_count})",
                     f"{LABEL_NAMES[tails.high_label]} {tails.high_share:.2f} (n={tails.high_count})", _with_ci(area)])
    counts = label_counts(corpus.labels.tolist())
    null_low, null_median, null_high = corpus.null_range()
    resamples = corpus.auroc(next(iter(corpus.projections))).resamples
    robust = corpus.reading == STANDARDIZED
    suffix = "_standardized" if robust else ""
    report.data["correlation" + suffix] = {
        "corpus": corpus.corpus, "labeller": corpus.labeller, "layer": early.layer, "reading": corpus.reading,
        "direction_layers": early.source_layer, "label_counts": counts, "methods": data,
        "n_sentences": len(corpus.sentence_lengths), "seed": corpus.seed,
        "random_null_auroc": corpus.random_null_auroc.tolist(), "auroc_threshold": corpus.auroc_threshold,
        **({} if robust or corpus.top_share is None else {"top_coordinate": corpus.top_coordinate,
                                                          "top_share": _interval(corpus.top_coordinate_share())})}
    reading = (f"standardized cosine cos(z, d) of the residual at `{early.hook}`, z = (x − mean) / std coordinate "
               "by coordinate over the corpus's tokens (R1's robust reading: R1.standardized, R1.auroc.standardized)"
               if robust else f"cosine of the residual at `{early.hook}`")
    isotropy = ("" if robust or corpus.top_share is None else
                f" Isotropy control (R1.isotropy): coordinate {corpus.top_coordinate} carries "
                f"{_with_ci(corpus.top_coordinate_share())} of a token's squared norm on average (mean over tokens, "
                "CI over word types).")
    report.add_section(
        "Correlational evaluation on natural text (§5.4)" + (", standardized reading" if robust else ""),
        f"Corpus: {corpus.corpus}; {len(corpus.labels)} tokens in {len(corpus.sentence_lengths)} sentences (BOS and "
        f"padding left out). Labeller: {corpus.labeller}. Token labels: {counts}. Projection: {reading} with each "
        f"method's direction, {early.describe()}.{isotropy} Tails at the "
        f"{corpus.tail_quantile:.1%} / {1 - corpus.tail_quantile:.1%} quantiles; "
        "each tail's majority non-neutral label and its share (neutral counted in the denominator). 95% CIs: "
        f"cluster bootstrap over word types ({resamples} resamples, seed {corpus.seed}; a drawn word type keeps "
        f"all its tokens, which share its label and most of their residual): percentile over the "
        f"{corpus.n_word_types} word types for the tail score, studentized over the {corpus.labelled_word_types} "
        "labelled ones for the AUROC.\n\n"
        + tabulate(rows, headers=["method", "tail score [95% CI]", "low tail", "high tail",
                                  "AUROC pos vs neg [95% CI]"], tablefmt="github")
        + f"\n\nChance spread: the AUROC of {len(corpus.random_null_auroc)} random directions (seed {corpus.seed}), "
        f"unoriented as the paper's random baseline, has median {null_median:.3f} and 2.5-97.5% range "
        f"[{null_low:.3f}, {null_high:.3f}]. R1.auroc's threshold is max({corpus.auroc_floor:g}, that "
        f"{corpus.null_quantile:.1%} quantile) = "
        f"{corpus.auroc_threshold:.3f}, recomputed in every resample (R1.auroc: AUROC minus it, paired; the null's "
        f"quantile is above the floor in {corpus.null_binds():.1%} of the resamples). The tokens of one word share "
        "its label and most of its residual, so chance spreads wider than the token count suggests.",
    )

    def draw(figure) -> None:
        axes = _panels(figure, corpus.projections, corpus.reading, "share of tokens in bin",
                       f"Lexicon label share by projection bin (20 equal-width bins; bands: 95% CI over word types), "
                       f"layer {early.layer}: {report.model_name}")
        for ax, values in zip(axes, corpus.projections.values()):
            edges = torch.linspace(float(values.min()), float(values.max()), 21)
            bins = torch.bucketize(values, edges[1:-1])
            centres = ((edges[1:] + edges[:-1]) / 2).numpy()
            for label in (POSITIVE, NEGATIVE):
                share, low, high = _bin_share_bands(corpus, bins, label, 20)
                ax.plot(centres, share, marker="o", markersize=3, color=LABEL_COLOURS[label], label=LABEL_NAMES[label])
                ax.fill_between(centres, low, high, color=LABEL_COLOURS[label], alpha=0.2, linewidth=0)
        axes[0].legend(fontsize=7)

    def draw_auroc(figure) -> None:
        ax = figure.subplots()
        names = list(corpus.projections)
        estimates = [corpus.auroc(m) for m in names]
        ax.axhspan(null_low, null_high, color="tab:grey", alpha=0.2, label="random-direction null, 95% range")
        ax.axhline(corpus.auroc_threshold, color="black", linestyle="--", linewidth=0.8,
                   label=f"R1.auroc threshold {corpus.auroc_threshold:.2f}")
        ax.errorbar(range(len(names)), [e.value for e in estimates],
                    yerr=[[e.value - e.ci_low for e in estimates], [e.ci_high - e.value for e in estimates]],
                    fmt="o", color="tab:blue", capsize=3, label="AUROC, 95% CI over word types")
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("AUROC, lexicon-positive vs -negative tokens")
        ax.set_title(f"Projection AUROC ({corpus.reading}) at layer {early.layer} against chance: {report.model_name}",
                     fontsize=9)
        ax.legend(fontsize=7)

    report.add_figure(f"correlation_label_share{suffix}.png", draw)
    report.add_figure(f"correlation_auroc{suffix}.png", draw_auroc)


def _with_share(estimate: Estimate) -> str:
    return f"{estimate.value:.0f} [{estimate.ci_low:.0f}, {estimate.ci_high:.0f}]"


@render.register(SteeringSetup)
def _steering(setup: SteeringSetup, report) -> None:
    config = setup.settings
    scale = ("the paper's strongest integer coefficient, 20" if setup.paper_coefficients else
             f"the median residual norm at the hook over the paper prompt's tokens (BOS left out), "
             f"{setup.residual_norm:.1f}")
    fractions = ", ".join(f"{f:g}" for f in setup.fractions)
    lines = [
        f"Activation addition of coef × unit K-means direction (fitted at ADJ on ToyMovieReview; cosine "
        f"{setup.cos_with_mean_diff:.2f} with the mean-difference direction there) at `{setup.hook}`, every "
        f"position, active for the whole generation. Pre-registered grid (S1's protocol, fixed before measuring): "
        f"the fractions {fractions} of a scale, {scale}; the strongest |coef| is {setup.strongest:.2f}. "
        f"{config.samples_per_coef} samples per coefficient in one batched `generate` (top-k {config.top_k}, "
        f"temperature {config.temperature}, {config.max_new_tokens} new tokens, seed {config.seed} for every "
        f"coefficient, BOS prepended: {setup.prepend_bos}, key/value cache on with the suite's fix, see "
        "harness/interventions/generation.py). "
        f"{setup.model_name} is used as it is: the prompts are plain text, no chat template. Continuations (without "
        f"the prompt) are labelled by {setup.labeller}.",
    ]
    data = {}
    for name, run in setup.runs.items():
        shares = {label: run.share(label) for label in (NEGATIVE, NEUTRAL, POSITIVE)}
        data[name] = {"prompt": run.prompt, "coefficients": run.coefficients,
                      "shares": {LABEL_NAMES[l]: s.tolist() for l, s in shares.items()},
                      "continuations": [list(row) for row in run.continuations]}
        rows = [[f"{c:+.2f}", *(_with_share(run.share_estimate(i, l)) for l in (NEGATIVE, NEUTRAL, POSITIVE)),
                 " / ".join(repr(t.strip()[:90]).replace("|", "\\|") for t in run.continuations[i][:3])]
                for i, c in enumerate(run.coefficients)]
        trend = setup.trend(name)
        data[name]["trend"] = _interval(trend)
        lines += [f"\n**{name}**: `{run.prompt}`; Spearman ρ over the whole grid (|coef| vs "
                  f"{LABEL_NAMES[run.target]}, over samples; shown: S1 reads the fluent range, next section) "
                  f"{_with_ci(trend)}\n",
                  tabulate(rows, headers=["coef", "negative % [Wilson 95%]", "neutral %", "positive %",
                                          "first 3 continuations"], tablefmt="github")]
    report.data["steering"] = {"hook": setup.hook, "residual_norm": setup.residual_norm,
                               "strongest": setup.strongest, "runs": data}
    report.add_section("Activation addition, steering (§5.5)", "\n".join(lines))

    def draw(figure) -> None:
        axes = _panels(figure, setup.runs, f"coefficient at {setup.hook}", "share of continuations (VADER), %",
                       f"Steering along the K-means direction (bars: Wilson 95% CI): {report.model_name}")
        for ax, run in zip(axes, setup.runs.values()):
            for label, colour in LABEL_COLOURS.items():
                shares = [run.share_estimate(i, label) for i in range(len(run.coefficients))]
                ax.errorbar(run.coefficients, [e.value for e in shares],
                            yerr=[[e.value - e.ci_low for e in shares], [e.ci_high - e.value for e in shares]],
                            marker="o", color=colour, capsize=3, label=LABEL_NAMES[label])
        axes[0].legend(fontsize=7)

    report.add_figure("steering_curve.png", draw)


@render.register(NegationResults)
def _negation(results: NegationResults, report) -> None:
    rows, data, paired = [], {}, []
    for method in methods(controls=False):
        summary = {which: results.flips(method, which).summary() for which in ("negated", "control")}
        movement = results.movement(method)
        data[method] = {**summary, "paired_movement": [movement.value, movement.ci_low, movement.ci_high]}
        paired.append([method, _with_ci(movement), _with_ci(results.movement(method, "negated")),
                       _with_ci(results.movement(method, "control"))])
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
        f"the paper's {len(results.sentences)} sentences and the suite's controls without negation (harness/experiments/negation.py). "
        "toward opposite: the change times sign(corpus mean − initial); z: |change| / corpus std; flip: "
        "0.5·change/(corpus mean − initial) > 0. Corpus statistics from the R1 corpus at the early layer.\n\n"
        "N1's statistic, the mean movement toward the opposite sign, negated − control (paired over the "
        f"{len(results.sentences)} sentence pairs), with 95% percentile bootstrap CIs over sentences (seed "
        f"{results.seed}):\n\n"
        + tabulate(paired, headers=["method", "negated − control [95% CI]", "negated", "control"], tablefmt="github")
        + "\n\nThe §5.6 summary numbers:\n\n"
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
                       f"Negation: the tracked word's projection across layers (bands: 95% CI of the mean over "
                       f"sentences): {report.model_name}")
        layers = np.arange(results.negated["kmeans"].shape[1])
        for ax, method in zip(axes, five):
            for which, colour in (("negated", "tab:purple"), ("control", "tab:olive")):
                values = getattr(results, which)[method]
                side = torch.sign(values[:, results.early_layer] - results.corpus_mean[method])[:, None]
                oriented = (side * (values - results.corpus_mean[method])).numpy()
                ax.plot(layers, oriented.T, color=colour, alpha=0.15, linewidth=0.7)
                mean, low, high = results.oriented_mean(method, which)
                ax.plot(layers, mean.numpy(), color=colour, linewidth=2, label=f"{which} (mean)")
                ax.fill_between(layers, low.numpy(), high.numpy(), color=colour, alpha=0.25, linewidth=0)
            for layer in (results.early_layer, results.late_layer):
                ax.axvline(layer, color="grey", linewidth=0.5, linestyle="--")
            ax.axhline(0, color="black", linewidth=0.5)
        axes[0].legend(fontsize=7)

    report.add_figure("negation_layers.png", draw)
