"""§2.2, §5.7, §6.4: the summarization motif. Sentiment is read from commas and periods, not only
from the valenced words before them.

Setup (docs/PAPER.md §5.7, the authors' ``comma_patching_experiments_tms.ipynb``): attention patterns in
every layer are frozen to the clean run's; within a band of layers (pythia-2.8b: 9-14 of 32; other
models: the same fraction of depth, or ``--summary-band``) the value vectors ``blocks.L.attn.hook_v``
of all (key/value) heads at chosen positions are replaced by the corrupted run's. Effect = % change of
the mean logit difference, (LD_intervened − LD_clean)/LD_clean, answers ` excited`/` nervous`.
ToyMoodStory's labels are balanced, so the mean of the §5.1 centred LD equals the uncentred mean used here.
The experiments are ``harness.experiments.summarization``'s; thresholds and paper values: ``harness/verdicts/declared.py``.

Every CI is a studentized (bootstrap-t) bootstrap over prompts, 1,000 resamples (docs/calibration.md),
except M3's Spearman ρ (percentile, prompts resampled).

- M1: the model solves ToyMoodStory (centred accuracy, §5.1, over the four variants). The paper ran this circuit on pythia-2.8b because smaller models failed. M2 and M3 are
  claims about the mechanism of a task the model solves: their precondition is that M1 *replicates*
  (its whole CI above the floor); otherwise they read "not applicable" and the value resampling behind
  them is not run (``claim.applies``; M1 needs the clean run only). A ratio of effects (M2.ratio, M3.distance, M4) applies only when its denominator effect is
  there: its 95% CI below 0.
- M2: pre-comma phrases resampled (comma/period values held at clean in every layer), commas+periods
  resampled, whole phrases resampled: each lowers the LD. M2.ratio: the comma+period effect is
  comparable to the pre-comma effect.
- M3: the distance effect. Neutral filler of 0, 11, 22 and 44 tokens between the character sentences
  and "One day, ...": the comma share of the effect, comma / (comma + pre-comma), rises with the filler
  length (Spearman ρ). M3.distance: at 22 tokens the comma effect exceeds the pre-comma effect.
- M4: the motif on ToyMovieReview, which small models do solve: with attention frozen, resampling
  the values of the comma after ADJ, the period after VRB and the second " movie" in the summary band
  moves the LD by a share of what resampling at ADJ and VRB does.

Choices: the filler goes before "One day, ..." (the gala sentence still leads into the query); where
the tokenizer splits a template word (SmolLM2: " hates"), corrupted values are aligned slot by slot
(``harness.interventions.value_patching.align_source_positions``); the whole-phrase generic threshold (<= −10%) is
the suite's, the issue gives none.
"""

from __future__ import annotations

import pytest

from harness.experiments.summarization import (
    MOTIF_CONDITIONS, accuracy_by_variant, comma_excess, comma_share_trend, effect_ratio,
)
from harness.verdicts.declared import declared

FILLER_LENGTHS = declared("M3").protocol["filler_lengths"]  # M3's declared protocol
DISTANCE_FILLER = declared("M3.distance").protocol["distance_filler"]

SOLVED = "the model solves ToyMoodStory (M1 replicates)"


def _below_zero(effects, condition: str) -> bool:
    return effects.change_estimate(condition).ci_high < 0


def _effects(request: pytest.FixtureRequest):
    """ToyMoodStory's value resampling, computed on first use (only once M1 replicates)."""
    return request.getfixturevalue("mood_story_effects")


@pytest.mark.claim("M1")
def test_m1_model_solves_toy_mood_story(mood_story_clean, toy_mood_stories, claim):
    per_variant = accuracy_by_variant(mood_story_clean, toy_mood_stories[0].variants)
    claim.check(mood_story_clean.accuracy_estimate(),
                description="ToyMoodStory accuracy (centred, §5.1) over the four variants",
                details=f"clean mean LD {mood_story_clean.clean_ld.mean():.3f}; uncentred accuracy by variant: "
                        + ", ".join(f"{v} {a:.0f}%" for v, a in per_variant.items()))


@pytest.mark.claim("M2")
@pytest.mark.parametrize("condition", MOTIF_CONDITIONS)
def test_m2_value_resampling_lowers_logit_diff(condition, request, mood_story_solved, summary_band, claim):
    description = f"ToyMoodStory, {condition} values resampled, attention frozen"
    if not claim.applies({SOLVED: mood_story_solved}, case=condition, description=description):
        return
    effects = _effects(request)[0]
    claim.check(effects.change_estimate(condition), case=condition, preconditions={SOLVED: mood_story_solved},
                description=description,
                details=f"layers {summary_band}; clean mean LD {effects.clean_ld.mean():.3f}"
                        + ("; comma/period values held at clean" if condition == "precomma" else ""))


@pytest.mark.claim("M2.ratio")
def test_m2_comma_effect_at_least_half_of_precomma(request, mood_story_solved, claim):
    description = "comma+period effect / pre-comma effect"
    if not claim.applies({SOLVED: mood_story_solved}, description=description):
        return
    effects = _effects(request)[0]
    claim.check(effects.estimate(effect_ratio, "comma_period", "precomma"),
                preconditions={SOLVED: mood_story_solved,
                               "pre-comma effect's 95% CI below 0": _below_zero(effects, "precomma")},
                description=description,
                details=f"comma {effects.change('comma_period'):+.1f}%, pre-comma {effects.change('precomma'):+.1f}%")


@pytest.mark.claim("M3")
def test_m3_comma_share_grows_with_distance(request, mood_story_solved, claim):
    description = "Spearman ρ(filler length, comma share of the effect)"
    if not claim.applies({SOLVED: mood_story_solved}, description=description):
        return
    trend = comma_share_trend(_effects(request), FILLER_LENGTHS)
    claim.check(trend.rho, preconditions={SOLVED: mood_story_solved}, description=description,
                details="comma share comma/(comma + pre-comma) at "
                        + ", ".join(f"{n} tokens {s:.2f}" for n, s in trend.shares.items()))


@pytest.mark.claim("M3.distance")
def test_m3_comma_exceeds_phrase_at_22_tokens(request, mood_story_solved, claim):
    description = f"comma effect over pre-comma effect − 1, {DISTANCE_FILLER} filler tokens"
    if not claim.applies({SOLVED: mood_story_solved}, description=description):
        return
    effects = _effects(request)[DISTANCE_FILLER]
    claim.check(effects.estimate(comma_excess, "comma_period", "precomma"),
                preconditions={SOLVED: mood_story_solved,
                               f"pre-comma effect at {DISTANCE_FILLER} tokens: 95% CI below 0": _below_zero(effects, "precomma")},
                description=description,
                details=f"comma {effects.change('comma_period'):+.1f}%, pre-comma {effects.change('precomma'):+.1f}% "
                        f"at {DISTANCE_FILLER} filler tokens")


@pytest.mark.claim("M4")
def test_m4_nonvalenced_positions_carry_sentiment(movie_review_value_effects, summary_band, claim):
    effects = movie_review_value_effects[summary_band.layers]
    by_band = ", ".join(f"{b[0]}-{b[1]}: {e.change('nonvalenced'):+.1f}/{e.change('valenced'):+.1f}%"
                        for b, e in movie_review_value_effects.items())
    claim.check(effects.estimate(effect_ratio, "nonvalenced", "valenced"),
                preconditions={"valenced effect's 95% CI below 0": _below_zero(effects, "valenced")},
                description=f"ToyMovieReview, layers {summary_band}: non-valenced / valenced value-resampling effect",
                details=f"non-valenced {effects.change('nonvalenced'):+.1f}%, valenced "
                        f"{effects.change('valenced'):+.1f}%; by band (non-valenced/valenced): {by_band}")
