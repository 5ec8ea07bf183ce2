"""harness.experiments.summarization (paper §5.7, §6.4) on the tiny GPT-2, NeoX and grouped-query Llama models,
and on synthetic logit differences.

- ``value_resample_effects`` equals the computation the fixture did inline before it moved here (one
  recorded run, slot-aligned corrupted values, every condition stacked per band), bit for bit; a
  condition that resamples nothing leaves the clean logit differences; the clean run alone (M1's gate)
  gives the clean scores the resampling records;
- ToyMoodStory's conditions (three without filler, two with it; pre-comma holds the commas/periods);
- ToyMovieReview: the period after VRB is located (and refused where it does not follow the verb), the
  position groups hold exactly their slots, the bands tile the depth with the summary band and all
  layers added, all layers last;
- the statistics (ratio, comma share, excess, the share's trend over filler lengths, accuracies) on
  numbers worked by hand;
- the renderers write today's report sections, data keys and figure.
"""

from __future__ import annotations

import matplotlib
import pytest
import torch

from harness.measures.metrics import sentiment_score
from harness.measures.intervals import interval
from harness.reporting.rendering import render
from harness.reporting.report import ReportBuilder
from harness.experiments.summarization import (
    DISTANCE_CONDITIONS, MOTIF_CONDITIONS, MOVIE_REVIEW_GROUPS, MoodStoryResampling, MovieReviewResampling,
    ResampleEffects, accuracy_by_variant, clean_effects, comma_excess, comma_share, comma_share_trend, effect_ratio,
    mood_story_conditions, movie_review_bands, movie_review_pairs, position_groups, value_resample_effects,
    with_period,
)
from harness.datasets.prompts import PromptSet
from harness.datasets.toy_mood_story import VARIANTS, build_toy_mood_story
from harness.interventions.value_patching import SummaryBand, ValueResample, align_source_positions, record_run, resample_values


def inline_scores(bridge, pairs, distinct, conditions, bands, freeze) -> dict:
    """The fixture's computation before it moved to the harness (fixtures/toy_mood_story.py @bb28d42)."""
    run = record_run(bridge, distinct.tokens, restarts=sorted({start for start, _ in bands}))
    clean = run.select(pairs.clean_index)
    source = run.select(pairs.corrupted_index).values_at(align_source_positions(pairs.clean, pairs.corrupted))
    out = {"clean": sentiment_score(clean.logits, pairs.answer_ids)}
    for band in bands:
        layers = range(band[0], band[1] + 1)
        interventions = [ValueResample(layers, mask, freeze.get(name)) for name, mask in conditions.items()]
        logits = resample_values(bridge, clean, source, interventions)
        out[band] = {name: sentiment_score(logits[i], pairs.answer_ids) for i, name in enumerate(conditions)}
    return out


@pytest.fixture(scope="module")
def stories(tiny_models, tiny_llama):
    models = {**tiny_models, "llama": tiny_llama}
    return {name: (model, build_toy_mood_story(model.bridge, prepend_bos=True)) for name, model in models.items()}


@pytest.mark.parametrize("name", ["gpt2", "neox", "llama"])
def test_mood_story_effects_equal_the_inline_computation(stories, name):
    model, story = stories[name]
    conditions, freeze = mood_story_conditions(story)
    bands = [(0, 0), (1, model.n_layers - 1), (0, model.n_layers - 1)]
    effects = value_resample_effects(model.bridge, story.pairs, story.pairs.clean, conditions, bands, freeze)
    expected = inline_scores(model.bridge, story.pairs, story.pairs.clean, conditions, bands, freeze)
    assert list(effects) == bands
    for band, effect in effects.items():
        assert torch.equal(effect.clean_score, expected["clean"]) and torch.equal(effect.labels, story.pairs.clean.labels)
        assert list(effect.scores) == list(MOTIF_CONDITIONS)
        for condition, score in effect.scores.items():
            assert torch.equal(score, expected[band][condition])
        assert not torch.allclose(effect.scores["whole_phrase"], effect.clean_score)  # the resampling acts


@pytest.mark.parametrize("name", ["gpt2", "neox", "llama"])
def test_the_clean_run_alone_gives_the_resampling_runs_clean_scores(stories, name):
    """M1's gate (``clean_effects``, one plain forward) decides on the clean scores the resampling records."""
    model, story = stories[name]
    conditions, freeze = mood_story_conditions(story)
    (resampled,) = value_resample_effects(model.bridge, story.pairs, story.pairs.clean, conditions,
                                          [(1, model.n_layers - 1)], freeze).values()
    clean = clean_effects(model.bridge, story.pairs, story.pairs.clean)
    torch.testing.assert_close(clean.clean_score, resampled.clean_score, atol=1e-5, rtol=1e-5)
    assert torch.equal(clean.labels, resampled.labels) and clean.scores == {}
    assert clean.accuracy_pct() == resampled.accuracy_pct()


def test_resampling_nothing_keeps_the_clean_logit_diff(stories):
    model, story = stories["gpt2"]
    none = torch.zeros_like(story.phrase_masks["precomma"])
    (effect,) = value_resample_effects(model.bridge, story.pairs, story.pairs.clean, {"none": none},
                                       [(0, model.n_layers - 1)], {}).values()
    torch.testing.assert_close(effect.ld("none"), effect.clean_ld, atol=1e-4, rtol=1e-4)


def test_movie_review_effects_equal_the_inline_computation(gpt2, toy):
    distinct, pairs = movie_review_pairs(gpt2.bridge.tokenizer, toy)
    conditions = position_groups(pairs.clean, MOVIE_REVIEW_GROUPS)
    bands = movie_review_bands(gpt2.n_layers, (1, 1))
    effects = value_resample_effects(gpt2.bridge, pairs, distinct, conditions, bands, {})
    expected = inline_scores(gpt2.bridge, pairs, distinct, conditions, bands, {})
    assert list(effects) == bands == [(0, 0), (1, 1), (0, 1)]
    for band, effect in effects.items():
        assert torch.equal(effect.clean_score, expected["clean"])
        assert all(torch.equal(effect.scores[c], expected[band][c]) for c in MOVIE_REVIEW_GROUPS)


def test_mood_story_conditions(stories, gpt2):
    _, story = stories["gpt2"]
    conditions, freeze = mood_story_conditions(story)
    assert list(conditions) == list(MOTIF_CONDITIONS)
    assert all(conditions[c] is story.phrase_masks[c] for c in MOTIF_CONDITIONS)
    assert list(freeze) == ["precomma"] and freeze["precomma"] is story.phrase_masks["comma_period"]
    filled, filled_freeze = mood_story_conditions(build_toy_mood_story(gpt2.bridge, True, filler_tokens=11))
    assert list(filled) == list(DISTANCE_CONDITIONS) and list(filled_freeze) == ["precomma"]


def test_with_period_locates_the_period_after_the_verb(gpt2, toy):
    prompts = with_period(gpt2.bridge.tokenizer, toy.test)
    period_id = gpt2.bridge.tokenizer.encode(".", add_special_tokens=False)[0]
    rows = torch.arange(len(prompts))
    assert (prompts.tokens[rows, prompts.positions["PERIOD"]] == period_id).all()
    assert (prompts.positions["PERIOD"] > prompts.positions["VRB"]).all()
    assert all(torch.equal(prompts.positions[name], toy.test.positions[name]) for name in toy.test.positions)
    late_verb = PromptSet(toy.test.texts, toy.test.tokens, toy.test.labels,
                          toy.test.positions | {"VRB": torch.full((len(toy.test),), toy.test.tokens.shape[1] - 1)})
    with pytest.raises(ValueError, match="does not follow the verb"):
        with_period(gpt2.bridge.tokenizer, late_verb)


def test_movie_review_pairs_keep_the_test_pairing(gpt2, toy):
    distinct, pairs = movie_review_pairs(gpt2.bridge.tokenizer, toy)
    assert torch.equal(pairs.clean_index, toy.test_pairs.clean_index)
    assert torch.equal(pairs.corrupted_index, toy.test_pairs.corrupted_index)
    assert pairs.clean.texts == toy.test_pairs.clean.texts and pairs.corrupted.texts == toy.test_pairs.corrupted.texts
    assert torch.equal(pairs.clean.positions["PERIOD"], distinct.positions["PERIOD"][pairs.clean_index])


def test_position_groups_hold_their_slots(gpt2, toy):
    prompts = with_period(gpt2.bridge.tokenizer, toy.test)
    masks = position_groups(prompts, MOVIE_REVIEW_GROUPS)
    assert (masks["nonvalenced"].sum(-1) == 3).all() and (masks["valenced"].sum(-1) == 2).all()
    assert not (masks["nonvalenced"] & masks["valenced"]).any()
    rows = torch.arange(len(prompts))
    for group, slots in MOVIE_REVIEW_GROUPS.items():
        assert all(masks[group][rows, prompts.positions[slot]].all() for slot in slots)


def test_movie_review_bands_tile_the_depth():
    assert movie_review_bands(30, (8, 13)) == [(0, 5), (6, 11), (8, 13), (12, 17), (18, 23), (24, 29), (0, 29)]
    bands = movie_review_bands(32, (9, 14))
    assert bands == [(0, 5), (6, 11), (9, 14), (12, 17), (18, 23), (24, 29), (30, 31), (0, 31)]
    tiles = [b for b in bands if b not in {(9, 14), (0, 31)}]
    assert sorted(layer for start, end in tiles for layer in range(start, end + 1)) == list(range(32))
    assert movie_review_bands(12, (0, 11)) == [(0, 11)]
    assert movie_review_bands(2, (1, 1)) == [(0, 0), (1, 1), (0, 1)]


def effects_of(clean, **conditions) -> ResampleEffects:
    """Effects whose labels are all positive, so the LDs are the scores."""
    labels = torch.ones(len(clean), dtype=torch.long)
    return ResampleEffects(labels, torch.tensor(clean), {c: torch.tensor(v) for c, v in conditions.items()})


def test_statistics_on_numbers_worked_by_hand():
    clean = torch.tensor([[2.0, 2.0], [4.0, 4.0]])  # a leading bootstrap axis of 2
    comma, pre = clean * 0.7, clean * 0.6  # −30% and −40%
    torch.testing.assert_close(effect_ratio(comma, pre, clean), torch.tensor([0.75, 0.75]))
    torch.testing.assert_close(comma_share(comma, pre, clean), torch.tensor([30 / 70, 30 / 70]))
    torch.testing.assert_close(comma_excess(comma, pre, clean), torch.tensor([-25.0, -25.0]))


def test_estimate_is_the_statistic_and_its_studentized_ci():
    effects = effects_of([1.0, 2.0, 3.0, 4.0], comma_period=[0.5, 1.5, 2.0, 3.5], precomma=[0.8, 1.0, 2.5, 3.0])
    estimate = effects.estimate(effect_ratio, "comma_period", "precomma")
    lds = effects.ld("comma_period"), effects.ld("precomma"), effects.clean_ld
    assert estimate.value == float(effect_ratio(*lds))
    assert estimate == interval(effect_ratio, *lds, method="studentized") and estimate.n == 4
    assert effects.change("comma_period") == pytest.approx(-25.0)


def test_comma_share_trend():
    rising = {n: effects_of([2.0, 4.0], comma_period=[2.0 - k, 4.0 - 2 * k], precomma=[1.0, 2.0])
              for n, k in zip((0, 11, 22, 44), (0.2, 0.4, 0.6, 0.8))}  # comma effect −10..−40%, pre-comma −50%
    trend = comma_share_trend(rising, (0, 11, 22, 44))
    assert trend.rho.value == pytest.approx(1.0)
    assert list(trend.shares) == [0, 11, 22, 44]
    assert trend.shares[0] == pytest.approx(10 / 60) and trend.shares[44] == pytest.approx(40 / 90)
    assert (trend.rho.ci_low, trend.rho.ci_high) == pytest.approx((1.0, 1.0))  # every resample keeps the order
    falling = comma_share_trend({n: rising[m] for n, m in zip((0, 11, 22, 44), (44, 22, 11, 0))}, (0, 11, 22, 44))
    assert falling.rho.value == pytest.approx(-1.0)


def test_accuracies():
    variants = VARIANTS * 2
    # labels 1, 0, 0, 1 per name pair; scores right for orig and flip_b only (first-named character bias)
    labels = torch.tensor([1, 0, 0, 1] * 2)
    score = torch.tensor([3.0, 1.0, 2.0, 1.5] * 2)
    effects = ResampleEffects(labels, score, {})
    assert accuracy_by_variant(effects, variants) == {"orig": 100.0, "flip_a": 0.0, "name_flip": 0.0, "flip_b": 100.0}
    assert effects.accuracy_pct() == 50.0  # centred: the mean score 1.875 splits them
    estimate = effects.accuracy_estimate()
    assert 0.0 <= estimate.ci_low <= 50.0 <= estimate.ci_high <= 100.0 and estimate.n == 8  # a share's range


@pytest.fixture
def report() -> ReportBuilder:
    return ReportBuilder(model_name="tiny", settings={})


def draw(report, name):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    try:
        report.figures[name](figure)
        return figure.axes[0]
    finally:
        plt.close(figure)


def test_mood_story_renders_its_section_data_and_figure(stories, report, gpt2):
    model, story = stories["gpt2"]
    stories_by_length = {0: story, 11: build_toy_mood_story(gpt2.bridge, True, filler_tokens=11)}
    effects = {n: effects_of([1.0, 2.0], **{c: [0.5, 1.0] for c in mood_story_conditions(s)[0]})
               for n, s in stories_by_length.items()}
    band = SummaryBand((1, 1), 2, "--summary-band")
    render(band, report)
    render(MoodStoryResampling(stories_by_length, effects, band, 4), report)
    assert list(report.sections) == ["ToyMoodStory and value resampling (§2.2, §5.7)"]
    text = report.sections["ToyMoodStory and value resampling (§2.2, §5.7)"]
    assert "layers **1-1** of 2 (--summary-band)" in text and "all 4 key/value heads" in text
    assert f"- 11 tokens: `{stories_by_length[11].filler.strip()}`" in text
    assert report.data["summary_band"] == {"layers": [1, 1], "n_layers": 2, "source": "--summary-band"}
    data = report.data["toy_mood_story"]
    assert set(data) == {"names", "dropped_names", "band", "effects_pct", "clean_mean_ld", "fillers"}
    assert data["effects_pct"] == {0: {c: -50.0 for c in MOTIF_CONDITIONS}, 11: {c: -50.0 for c in DISTANCE_CONDITIONS}}
    axes = draw(report, "summarization_distance.png")
    assert [line.get_label() for line in axes.get_lines()][:2] == ["commas + periods", "pre-comma phrases"]
    assert axes.get_title() == "tiny: values resampled in layers 1-1, attention frozen (ToyMoodStory)"


def test_movie_review_renders_its_section_and_data(report):
    band = SummaryBand((1, 1), 2, "the paper's 9-14 of 32 layers scaled to depth")
    effects = {b: effects_of([2.0, 2.0], nonvalenced=[1.0, 1.0], valenced=[0.0, 0.0]) for b in [(0, 0), (1, 1), (0, 1)]}
    render(MovieReviewResampling(effects, band, 2), report)
    text = report.sections["ToyMovieReview: value resampling at non-valenced positions (§6.4)"]
    assert "| 1-1 (summary band) |" in text and text.startswith("2 test pairs;")
    assert report.data["toy_movie_review_value_resampling"] == {
        name: {"nonvalenced": -50.0, "valenced": -100.0} for name in ("0-0", "1-1", "0-1")}
