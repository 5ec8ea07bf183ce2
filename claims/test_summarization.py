"""§2.2, §5.7, §6.4: the summarization motif. Sentiment is read from commas and periods, not only
from the valenced words before them.

Setup (PAPER.md §5.7, the authors' ``comma_patching_experiments_tms.ipynb``): attention patterns in
every layer are frozen to the clean run's; within a band of layers (pythia-2.8b: 9-14 of 32; other
models: the same fraction of depth, or ``--summary-band``) the value vectors ``blocks.L.attn.hook_v``
of all (key/value) heads at chosen positions are replaced by the corrupted run's. Effect = % change of
the mean logit difference, (LD_intervened − LD_clean)/LD_clean, answers ` excited`/` nervous`.
ToyMoodStory's labels are balanced, so the mean of the §5.1 centred LD equals the uncentred mean used here.

- M1: the model solves ToyMoodStory: centred accuracy (§5.1) >= 90% over the four variants. The paper
  ran this circuit on pythia-2.8b because smaller models failed. Where M1 fails, M2 and M3 are claims
  about a mechanism of a task the model does not solve: each marks itself a strict xfail saying so,
  still measures and records its values, and counts as met only if the task is solved too.
- M2: pre-comma phrases resampled (comma/period values held at clean in every layer): pythia-2.8b
  −38.0%; commas+periods resampled: −36.0% [NB:57e740d]; whole phrases: −75% [REVIEW, unverified].
  Generic: pre-comma, comma+period and whole-phrase effects <= −10%, and the comma+period effect is
  at least half the pre-comma effect.
- M3: the distance effect. Neutral filler of 0, 11, 22 and 44 tokens between the character sentences
  and "One day, ...": the comma share of the effect, comma / (comma + pre-comma), rises with the filler
  length (Spearman ρ > 0; the reviewers confirm the paper shows the growth [REV]); at 22 tokens the
  comma effect exceeds the pre-comma effect ("+15%": [REVIEW], unverified; tested as > 0).
- M4: the motif on ToyMovieReview, which small models do solve: with attention frozen, resampling
  the values of the comma after ADJ, the period after VRB and the second " movie" in the summary band
  moves the LD by at least 20% of what resampling at ADJ and VRB does (the issue's threshold; the
  paper's gpt2-small circuit reads these positions, §6.4, without a number).

Choices: the filler goes before "One day, ..." (the gala sentence still leads into the query); where
the tokenizer splits a template word (SmolLM2: " hates"), corrupted values are aligned slot by slot
(``harness.value_patching.align_source_positions``); the whole-phrase generic threshold (<= −10%) is
the suite's, the issue gives none.
"""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr

from fixtures.toy_mood_story import FILLER_LENGTHS
from harness.claim_record import ClaimRecord
from harness.metrics import accuracy, bootstrap_ci, bootstrap_indices, ld_percent_change
from harness.toy_mood_story import VARIANTS

PAPER_MODEL = "pythia-2.8b"
SOLVED_ACCURACY = 0.9
GENERIC_EFFECT = -10.0
PAPER_M2 = {  # condition: (paper value, tolerance, source)
    "precomma": (-38.0, 10.0, "−38.0% (pythia-2.8b, layers 9-14 [NB:57e740d])"),
    "comma_period": (-36.0, 10.0, "−36.0% (pythia-2.8b, layers 9-14 [NB:57e740d])"),
    "whole_phrase": (-75.0, 15.0, "−75% (pythia-2.8b) [REVIEW, unverified]"),
}
DISTANCE_FILLER = 22
M4_RATIO = 0.2


def _on_paper_model(model) -> bool:
    return model.name == PAPER_MODEL


def _task_accuracy(effects) -> float:
    return float(accuracy(effects.clean_score, effects.labels))


def _require_solved(request, model, effects) -> bool:
    """Whether the model solves ToyMoodStory (M1); if not, this test becomes a strict xfail."""
    value = _task_accuracy(effects)
    if value < SOLVED_ACCURACY:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=(
            f"not applicable: {model.name} does not solve ToyMoodStory (M1 accuracy {value:.1%} < "
            f"{SOLVED_ACCURACY:.0%}); the motif is a claim about a model that solves the task")))
    return value >= SOLVED_ACCURACY


def _solved_note(solved: bool, condition_met: bool) -> str:
    return "" if solved else f"task not solved (M1); the effect condition alone is {'met' if condition_met else 'not met'}. "


@pytest.mark.claim("M1")
def test_m1_model_solves_toy_mood_story(mood_story_effects, toy_mood_stories, model, claim):
    effects, variants = mood_story_effects[0], toy_mood_stories[0].variants
    value = _task_accuracy(effects) * 100
    low, high = bootstrap_ci(lambda score, labels: accuracy(score, labels) * 100, effects.clean_score, effects.labels)
    per_variant = {}
    for variant in VARIANTS:
        rows = torch.tensor([i for i, v in enumerate(variants) if v == variant])
        per_variant[variant] = float((effects.clean_ld[rows] > 0).float().mean()) * 100
    claim.check(ClaimRecord(
        claim="M1", section="§2.2", description="ToyMoodStory accuracy (centred, §5.1) over the four variants",
        paper_value="solved by pythia-2.8b; smaller models failed", measured=value, ci_low=low, ci_high=high, unit="%",
        tolerance=">= 90%", threshold_source="issue (generic)", passed=value >= SOLVED_ACCURACY * 100,
        details=f"{len(effects.labels)} prompts; clean mean LD {effects.clean_ld.mean():.3f}; uncentred accuracy "
                f"by variant: " + ", ".join(f"{v} {a:.0f}%" for v, a in per_variant.items()),
    ))


@pytest.mark.claim("M2")
@pytest.mark.parametrize("condition", list(PAPER_M2))
def test_m2_value_resampling_lowers_logit_diff(condition, mood_story_effects, summary_band, model, claim, request):
    effects = mood_story_effects[0]
    solved = _require_solved(request, model, effects)
    value, (low, high) = effects.change(condition), effects.change_ci(condition)
    paper, tolerance, paper_text = PAPER_M2[condition]
    if _on_paper_model(model):
        condition_met, rule, source = abs(value - paper) <= tolerance, f"{paper:+.0f} ± {tolerance:.0f}%", f"paper ({PAPER_MODEL})"
    else:
        condition_met, rule, source = value <= GENERIC_EFFECT, f"<= {GENERIC_EFFECT:.0f}%", "generic"
    claim.check(ClaimRecord(
        claim="M2", section="§5.7", description=f"ToyMoodStory, {condition} values resampled, attention frozen",
        paper_value=paper_text, measured=value, ci_low=low, ci_high=high, unit="%", tolerance=rule,
        threshold_source=source, passed=solved and condition_met,
        details=_solved_note(solved, condition_met) + f"layers {summary_band[0]}-{summary_band[1]}; clean mean LD "
                f"{effects.clean_ld.mean():.3f}" + ("; comma/period values held at clean" if condition == "precomma" else ""),
    ))


@pytest.mark.claim("M2")
def test_m2_comma_effect_at_least_half_of_precomma(mood_story_effects, model, claim, request):
    effects = mood_story_effects[0]
    solved = _require_solved(request, model, effects)
    ratio = lambda comma, pre, clean: ld_percent_change(comma, clean) / ld_percent_change(pre, clean)
    lds = effects.ld("comma_period"), effects.ld("precomma"), effects.clean_ld
    value = float(ratio(*lds))
    low, high = bootstrap_ci(ratio, *lds)
    condition_met = effects.change("precomma") < 0 and value >= 0.5
    claim.check(ClaimRecord(
        claim="M2", section="§5.7", description="comma+period effect / pre-comma effect",
        paper_value="0.95 = −36.0/−38.0 (pythia-2.8b [NB:57e740d])", measured=value, ci_low=low, ci_high=high,
        tolerance=">= 0.5, pre-comma effect < 0", threshold_source="issue (generic)", passed=solved and condition_met,
        details=_solved_note(solved, condition_met)
                + f"comma {effects.change('comma_period'):+.1f}%, pre-comma {effects.change('precomma'):+.1f}%",
    ))


def _comma_share(comma, pre, clean):
    """comma / (comma + pre-comma) of the % changes."""
    comma, pre = ld_percent_change(comma, clean), ld_percent_change(pre, clean)
    return comma / (comma + pre)


def _draw_distance(report, mood_story_effects, model, summary_band) -> None:
    def draw(figure):
        axes = figure.subplots()
        for condition, label in (("comma_period", "commas + periods"), ("precomma", "pre-comma phrases")):
            axes.plot(FILLER_LENGTHS, [mood_story_effects[n].change(condition) for n in FILLER_LENGTHS], "o-", label=label)
        axes.axhline(0, color="grey", lw=0.8)
        axes.set(xlabel="filler tokens between the story and the query", ylabel="% change of mean logit difference",
                 xticks=FILLER_LENGTHS, title=f"{model.name}: values resampled in layers {summary_band[0]}-"
                                              f"{summary_band[1]}, attention frozen (ToyMoodStory)")
        axes.legend()

    report.add_figure("summarization_distance.png", draw)


@pytest.mark.claim("M3")
def test_m3_comma_share_grows_with_distance(mood_story_effects, summary_band, model, claim, request, report):
    _draw_distance(report, mood_story_effects, model, summary_band)
    solved = _require_solved(request, model, mood_story_effects[0])
    per_length = [(mood_story_effects[n].ld("comma_period"), mood_story_effects[n].ld("precomma"),
                   mood_story_effects[n].clean_ld) for n in FILLER_LENGTHS]
    shares = [float(_comma_share(*lds)) for lds in per_length]
    value = float(spearmanr(FILLER_LENGTHS, shares).statistic)
    index = bootstrap_indices(len(per_length[0][0]))  # the same prompts (name pairs × variants) at every length
    boot = torch.stack([_comma_share(*(ld[index] for ld in lds)) for lds in per_length], -1)
    rhos = torch.tensor([spearmanr(FILLER_LENGTHS, row).statistic for row in boot.numpy()])
    low, high = torch.quantile(rhos[torch.isfinite(rhos)].double(), torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    condition_met = value > 0
    claim.check(ClaimRecord(
        claim="M3", section="§6.4", description="Spearman ρ(filler length, comma share of the effect)",
        paper_value="grows with distance (pythia-2.8b) [REV]", measured=value, ci_low=low, ci_high=high,
        tolerance="> 0", threshold_source="paper (qualitative)", passed=solved and condition_met,
        details=_solved_note(solved, condition_met) + "comma share comma/(comma + pre-comma) at "
                + ", ".join(f"{n} tokens {s:.2f}" for n, s in zip(FILLER_LENGTHS, shares)),
    ))


@pytest.mark.claim("M3")
def test_m3_comma_exceeds_phrase_at_22_tokens(mood_story_effects, model, claim, request):
    effects = mood_story_effects[DISTANCE_FILLER]
    solved = _require_solved(request, model, mood_story_effects[0])
    excess = lambda comma, pre, clean: (ld_percent_change(comma, clean) / ld_percent_change(pre, clean) - 1) * 100
    lds = effects.ld("comma_period"), effects.ld("precomma"), effects.clean_ld
    value = float(excess(*lds))
    low, high = bootstrap_ci(excess, *lds)
    condition_met = effects.change("precomma") < 0 and value > 0
    claim.check(ClaimRecord(
        claim="M3", section="§6.4", description=f"comma effect over pre-comma effect − 1, {DISTANCE_FILLER} filler tokens",
        paper_value="+15% (pythia-2.8b) [REVIEW, unverified]", measured=value, ci_low=low, ci_high=high, unit="%",
        tolerance="> 0, pre-comma effect < 0", threshold_source="review (unverified), qualitative",
        passed=solved and condition_met,
        details=_solved_note(solved, condition_met) + f"comma {effects.change('comma_period'):+.1f}%, "
                f"pre-comma {effects.change('precomma'):+.1f}% at {DISTANCE_FILLER} filler tokens",
    ))


@pytest.mark.claim("M4")
def test_m4_nonvalenced_positions_carry_sentiment(movie_review_value_effects, summary_band, model, claim):
    effects = movie_review_value_effects[summary_band]
    ratio = lambda nonvalenced, valenced, clean: ld_percent_change(nonvalenced, clean) / ld_percent_change(valenced, clean)
    lds = effects.ld("nonvalenced"), effects.ld("valenced"), effects.clean_ld
    value = float(ratio(*lds))
    low, high = bootstrap_ci(ratio, *lds)
    by_band = ", ".join(f"{b[0]}-{b[1]}: {e.change('nonvalenced'):+.1f}/{e.change('valenced'):+.1f}%"
                        for b, e in movie_review_value_effects.items())
    claim.check(ClaimRecord(
        claim="M4", section="§6.4", description=f"ToyMovieReview, layers {summary_band[0]}-{summary_band[1]}: "
                                               "non-valenced / valenced value-resampling effect",
        paper_value="comma, period and second ' movie' carry sentiment (gpt2-small circuit [R])", measured=value,
        ci_low=low, ci_high=high, tolerance=f">= {M4_RATIO}, valenced effect < 0", threshold_source="issue (generic)",
        passed=effects.change("valenced") < 0 and value >= M4_RATIO,
        details=f"non-valenced {effects.change('nonvalenced'):+.1f}%, valenced {effects.change('valenced'):+.1f}%; "
                f"by band (non-valenced/valenced): {by_band}",
    ))
