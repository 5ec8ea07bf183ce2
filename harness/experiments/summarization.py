"""The summarization motif (paper §5.7, §6.4): value resampling with attention frozen, on ToyMoodStory
(§2.2) and ToyMovieReview (§2.1), and the statistics the M claims read.

- ``value_resample_effects``: per layer band, the clean logit differences and those with the values
  at each condition's positions resampled from the corrupted run (``harness.interventions.value_patching``).
- ToyMoodStory (``mood_story_conditions``): with no filler, the pre-comma phrases (comma/period values
  held at clean in every layer), the commas+periods and the whole phrases; with a filler of each of
  M3's declared ``filler_lengths`` tokens (the distance effect, §6.4; ``harness.verdicts.declared.
  SUMMARIZATION_PROTOCOL``, passed in by the fixture), the first two.
- ToyMovieReview (``movie_review_pairs``, ``position_groups``, ``movie_review_bands``): the test pairs
  with the period after VRB located; the non-valenced positions (comma, period, second " movie") or
  the valenced ones (ADJ, VRB), in bands of the summary band's width tiling the depth.
- Statistics on per-prompt logit differences (each accepts a leading bootstrap axis): ``effect_ratio``
  (M2.ratio, M4), ``comma_share`` and its trend over filler lengths (M3), ``comma_excess`` (M3.distance).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping

import torch
from jaxtyping import Bool, Float
from scipy.stats import spearmanr
from torch import Tensor

from harness.runtime.disk_cache import cacheable
from harness.runtime.unembedding import contiguous_unembedding
from harness.measures.metrics import accuracy, ld_percent_change, logit_diff, sentiment_score
from harness.measures.intervals import interval
from harness.measures.statistics import Estimate, draws_estimate, resample_indices
from harness.datasets.prompts import PromptPairs, PromptSet
from harness.datasets.tokens import locate, single_token_id
from harness.datasets.toy_mood_story import VARIANTS, ToyMoodStory
from harness.datasets.toy_movie_review import ToyMovieReview
from harness.interventions.value_patching import SummaryBand, ValueResample, align_source_positions, record_run, resample_values

MOTIF_CONDITIONS = ("precomma", "comma_period", "whole_phrase")
DISTANCE_CONDITIONS = ("precomma", "comma_period")
MOVIE_REVIEW_GROUPS = {"nonvalenced": ("COMMA", "PERIOD", "SBJ2"), "valenced": ("ADJ", "VRB")}

Band = tuple[int, int]


@cacheable  # the disk cache stores it (the value-resampling entries)
@dataclass(frozen=True)
class ResampleEffects:
    """Per-prompt logit differences of the clean run and of each intervention (clean answers)."""

    labels: Tensor
    clean_score: Float[Tensor, "batch"]
    scores: dict[str, Float[Tensor, "batch"]]

    @property
    def clean_ld(self) -> Tensor:
        return logit_diff(self.clean_score, self.labels)

    def ld(self, condition: str) -> Tensor:
        return logit_diff(self.scores[condition], self.labels)

    def change(self, condition: str) -> float:
        """% change of the mean logit difference (§5.7)."""
        return float(ld_percent_change(self.ld(condition), self.clean_ld))

    def change_estimate(self, condition: str) -> Estimate:
        """``change(condition)`` with its studentized bootstrap CI over prompts (docs/calibration.md)."""
        return interval(ld_percent_change, self.ld(condition), self.clean_ld, method="studentized")

    def accuracy_pct(self) -> float:
        """The clean run's centred accuracy (§5.1), in %."""
        return float(accuracy(self.clean_score, self.labels)) * 100

    def accuracy_estimate(self) -> Estimate:
        """The accuracy (%) with its studentized CI over prompts, cut to a share's range [0, 100] (a
        bootstrap-t interval need not respect it; cutting never uncovers a truth inside it)."""
        estimate = interval(lambda score, labels: accuracy(score, labels) * 100, self.clean_score, self.labels,
                            method="studentized")
        return replace(estimate, ci_low=max(estimate.ci_low, 0.0), ci_high=min(estimate.ci_high, 100.0))

    def estimate(self, statistic: Callable[..., Tensor], *conditions: str) -> Estimate:
        """``statistic(ld(condition) for each condition, clean_ld)`` and its studentized bootstrap CI over
        prompts."""
        return interval(statistic, *(self.ld(condition) for condition in conditions), self.clean_ld,
                        method="studentized")


def value_resample_effects(
    bridge, pairs: PromptPairs, distinct: PromptSet, conditions: dict[str, Bool[Tensor, "batch pos"]],
    bands: list[Band], freeze: dict[str, Bool[Tensor, "batch pos"]],
) -> dict[Band, ResampleEffects]:
    """For each band, every condition's resample (stacked in one forward), attention frozen to clean.
    ``distinct`` are the prompts run once; ``pairs`` index them (clean and corrupted); ``freeze[name]``
    holds those positions' values at clean in every layer for condition ``name``."""
    run = record_run(bridge, distinct.tokens, restarts=sorted({start for start, _ in bands}))
    clean = run.select(pairs.clean_index)
    source = run.select(pairs.corrupted_index).values_at(align_source_positions(pairs.clean, pairs.corrupted))
    clean_score = sentiment_score(clean.logits, pairs.answer_ids)
    effects = {}
    for band in bands:
        layers = range(band[0], band[1] + 1)
        interventions = [ValueResample(layers, mask, freeze.get(name)) for name, mask in conditions.items()]
        logits = resample_values(bridge, clean, source, interventions)
        scores = {name: sentiment_score(logits[i], pairs.answer_ids) for i, name in enumerate(conditions)}
        effects[band] = ResampleEffects(pairs.clean.labels, clean_score, scores)
    return effects


def clean_effects(bridge, pairs: PromptPairs, distinct: PromptSet) -> ResampleEffects:
    """The clean run alone, as ``value_resample_effects`` records it (no condition resampled): M1's
    accuracy, the gate of M2–M3, from one forward pass over ``distinct``."""
    with torch.no_grad():
        logits = bridge.run_with_hooks(distinct.tokens.to(bridge.cfg.device), fwd_hooks=contiguous_unembedding(bridge),
                                       logits_to_keep=1)[:, -1].float().cpu()
    return ResampleEffects(pairs.clean.labels, sentiment_score(logits[pairs.clean_index], pairs.answer_ids), {})


def mood_story_conditions(story: ToyMoodStory) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(resampled positions, positions held at clean) per condition of a ToyMoodStory (§5.7): all three
    without filler, the pre-comma and comma+period ones with it; pre-comma holds the commas/periods."""
    names = MOTIF_CONDITIONS if story.filler_tokens == 0 else DISTANCE_CONDITIONS
    return {name: story.phrase_masks[name] for name in names}, {"precomma": story.phrase_masks["comma_period"]}


def with_period(tokenizer, prompts: PromptSet) -> PromptSet:
    """``prompts`` with the PERIOD position (the "." after VRB) located."""
    period = locate(prompts.tokens, [single_token_id(tokenizer, ".")], 0)
    if not (period > prompts.positions["VRB"]).all():
        raise ValueError("the first '.' of a ToyMovieReview prompt does not follow the verb")
    return PromptSet(prompts.texts, prompts.tokens, prompts.labels, prompts.positions | {"PERIOD": period})


def movie_review_pairs(tokenizer, toy: ToyMovieReview) -> tuple[PromptSet, PromptPairs]:
    """The distinct test prompts with PERIOD located, and the test pairs drawn from them."""
    distinct = with_period(tokenizer, toy.test)
    pairs = toy.test_pairs
    return distinct, PromptPairs(distinct.select(pairs.clean_index), distinct.select(pairs.corrupted_index),
                                 pairs.answer_ids, pairs.clean_index, pairs.corrupted_index)


def position_groups(prompts: PromptSet, groups: Mapping[str, tuple[str, ...]]) -> dict[str, Bool[Tensor, "batch pos"]]:
    """Per group, the mask of its slots' located positions."""
    n_positions = prompts.tokens.shape[1]
    return {
        group: torch.stack([prompts.positions[slot] for slot in slots], -1)[..., None].eq(
            torch.arange(n_positions)).any(-2)
        for group, slots in groups.items()
    }


def movie_review_bands(n_layers: int, band: Band) -> list[Band]:
    """Bands of ``band``'s width tiling the depth, ``band`` itself, and all layers (last)."""
    width = band[1] - band[0] + 1
    tiles = [(start, min(start + width, n_layers) - 1) for start in range(0, n_layers, width)]
    return sorted(set(tiles) | {band, (0, n_layers - 1)}, key=lambda b: (b[1] - b[0] == n_layers - 1, b))


def effect_ratio(numerator: Tensor, denominator: Tensor, clean: Tensor) -> Tensor:
    """% change with ``numerator``'s values resampled over % change with ``denominator``'s."""
    return ld_percent_change(numerator, clean) / ld_percent_change(denominator, clean)


def comma_share(comma: Tensor, pre: Tensor, clean: Tensor) -> Tensor:
    """comma / (comma + pre-comma) of the % changes (M3)."""
    comma, pre = ld_percent_change(comma, clean), ld_percent_change(pre, clean)
    return comma / (comma + pre)


def comma_excess(comma: Tensor, pre: Tensor, clean: Tensor) -> Tensor:
    """How far the comma effect exceeds the pre-comma effect, in % of it (M3.distance)."""
    return (effect_ratio(comma, pre, clean) - 1) * 100


@dataclass(frozen=True)
class ShareTrend:
    """Spearman ρ of the comma share over filler lengths (with its bootstrap CI), and the shares."""

    rho: Estimate
    shares: dict[int, float]


def comma_share_trend(effects: Mapping[int, ResampleEffects], lengths: tuple[int, ...]) -> ShareTrend:
    """ρ(filler length, comma share) (§6.4, M3). The CI resamples the same prompts (name pairs ×
    variants) at every length; resamples where ρ is undefined are dropped."""
    per_length = [(effects[n].ld("comma_period"), effects[n].ld("precomma"), effects[n].clean_ld) for n in lengths]
    shares = [float(comma_share(*lds)) for lds in per_length]
    rho = float(spearmanr(lengths, shares).statistic)
    index = resample_indices(len(per_length[0][0]))
    boot = torch.stack([comma_share(*(ld[index] for ld in lds)) for lds in per_length], -1)
    rhos = torch.tensor([spearmanr(lengths, row).statistic for row in boot.numpy()])
    estimate = draws_estimate(rho, rhos, len(per_length[0][0]), "prompts",
                              "percentile bootstrap over prompts, the same prompts at every filler length")
    return ShareTrend(estimate, dict(zip(lengths, shares)))


def accuracy_by_variant(effects: ResampleEffects, variants: tuple[str, ...]) -> dict[str, float]:
    """Uncentred accuracy (% of clean LD > 0) per ToyMoodStory variant, in the paper's variant order."""
    out = {}
    for variant in VARIANTS:
        rows = torch.tensor([i for i, v in enumerate(variants) if v == variant])
        out[variant] = float((effects.clean_ld[rows] > 0).float().mean()) * 100
    return out


@dataclass(frozen=True)
class MoodStoryResampling:
    """What the report shows of §5.7 on ToyMoodStory: the stories and effects per filler length."""

    stories: dict[int, ToyMoodStory]
    effects: dict[int, ResampleEffects]
    band: SummaryBand
    n_value_heads: int


@dataclass(frozen=True)
class MovieReviewResampling:
    """What the report shows of §6.4's value resampling on ToyMovieReview: the effects per band."""

    effects: dict[Band, ResampleEffects]
    band: SummaryBand
    n_pairs: int
