"""Renderers: the summarization motif (§2.2, §5.7, §6.4): the summary band, ToyMoodStory's value
resampling (section, data and the distance figure) and ToyMovieReview's by layer band."""

from __future__ import annotations

from tabulate import tabulate

from harness.reporting.rendering import render
from harness.experiments.summarization import MOTIF_CONDITIONS, MOVIE_REVIEW_GROUPS, MoodStoryResampling, MovieReviewResampling
from harness.interventions.value_patching import SummaryBand


@render.register(SummaryBand)
def _summary_band(band: SummaryBand, report) -> None:
    report.data["summary_band"] = {"layers": list(band.layers), "n_layers": band.n_layers, "source": band.source}


@render.register(MoodStoryResampling)
def _mood_story(result: MoodStoryResampling, report) -> None:
    stories, effects, band = result.stories, result.effects, result.band
    story = stories[0]
    positions = {name: int(pos[0]) for name, pos in story.pairs.clean.positions.items()}
    rows = []
    for n, effect in effects.items():
        rows.append([n, stories[n].pairs.clean.tokens.shape[1], f"{effect.clean_ld.mean():.3f}"]
                    + [f"{effect.change(c):+.1f}" if c in effect.scores else "" for c in MOTIF_CONDITIONS])
    fillers = "\n".join(f"- {n} tokens: `{stories[n].filler.strip()}`" for n in stories if n)
    split = ", ".join(f"`{w}` ({k} tokens)" for w, k in story.split_words.items()) or "none"
    report.add_section(
        "ToyMoodStory and value resampling (§2.2, §5.7)",
        f"Names kept (one token with and without a leading space, used cyclically as pairs): "
        f"{', '.join(story.names)}; dropped: {', '.join(story.dropped_names) or 'none'}. "
        f"{len(story.pairs)} clean prompts (4 variants per name pair), each paired with its mood-swapped "
        f"corrupted prompt. Template words split by this tokenizer: {split} (values are resampled slot by "
        f"slot, the split word aligned on its last token). Located positions (first prompt): {positions}.\n\n"
        f"Value vectors (`blocks.L.attn.hook_v`, all {result.n_value_heads} key/value "
        f"heads) resampled from the corrupted run in layers **{band}** of {band.n_layers} "
        f"({band.source}); attention frozen to the clean run in every layer; the "
        "pre-comma experiment also holds the comma/period values at clean in every layer. Effect = % change of "
        "the mean logit difference (` excited` − ` nervous`, signed by the clean label).\n\n"
        + tabulate(rows, headers=["filler tokens", "prompt tokens", "clean mean LD", "pre-comma %",
                                  "comma+period %", "whole phrase %"], tablefmt="github")
        + "\n\nFillers (neutral sentences written for the suite, inserted before \"One day\"; lengths measured "
        "in context):\n" + fillers,
    )
    report.data["toy_mood_story"] = {
        "names": story.names, "dropped_names": story.dropped_names, "band": list(band.layers),
        "effects_pct": {n: {c: e.change(c) for c in e.scores} for n, e in effects.items()},
        "clean_mean_ld": {n: float(e.clean_ld.mean()) for n, e in effects.items()},
        "fillers": {n: stories[n].filler for n in stories},
    }

    def draw(figure) -> None:
        lengths = list(effects)
        axes = figure.subplots()
        for condition, label in (("comma_period", "commas + periods"), ("precomma", "pre-comma phrases")):
            axes.plot(lengths, [effects[n].change(condition) for n in lengths], "o-", label=label)
        axes.axhline(0, color="grey", lw=0.8)
        axes.set(xlabel="filler tokens between the story and the query", ylabel="% change of mean logit difference",
                 xticks=lengths, title=f"{report.model_name}: values resampled in layers {band}, attention frozen "
                                       f"(ToyMoodStory)")
        axes.legend()

    report.add_figure("summarization_distance.png", draw)


@render.register(MovieReviewResampling)
def _movie_review(result: MovieReviewResampling, report) -> None:
    effects, band = result.effects, result.band
    rows = [[f"{b[0]}-{b[1]}" + (" (summary band)" if b == band.layers else ""),
             f"{e.change('nonvalenced'):+.1f}", f"{e.change('valenced'):+.1f}",
             f"{e.change('nonvalenced') / e.change('valenced'):.2f}"] for b, e in effects.items()]
    report.add_section(
        "ToyMovieReview: value resampling at non-valenced positions (§6.4)",
        f"{result.n_pairs} test pairs; attention frozen to the clean run in every layer; value vectors resampled "
        f"from the corrupted run in the band's layers at the non-valenced positions "
        f"{MOVIE_REVIEW_GROUPS['nonvalenced']} (the comma after ADJ, the period after VRB, the second \" movie\") "
        f"or at the valenced ones {MOVIE_REVIEW_GROUPS['valenced']}. % change of the mean logit difference (clean "
        f"mean LD {next(iter(effects.values())).clean_ld.mean():.3f}).\n\n"
        + tabulate(rows, headers=["layers", "non-valenced %", "valenced %", "ratio"], tablefmt="github"),
    )
    report.data["toy_movie_review_value_resampling"] = {
        f"{b[0]}-{b[1]}": {c: e.change(c) for c in e.scores} for b, e in effects.items()}
