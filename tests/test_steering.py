"""harness.experiments.steering: the §5.5 coefficient grid and the batched, cached sampling loop.

- the grid is the declared protocol's fractions of a scale: the paper's strongest integer (20) on its
  steering model, elsewhere the median residual norm over the prompt's tokens (BOS left out); the
  pre-registered settings take the protocol's 50 samples and shift the paper's seed by the session's;
- ``rank_trend`` is scipy's Spearman ρ on the data, its bootstrap resamples within each coefficient
  (seeded; constant resamples counted as undefined); shares carry Wilson intervals;
- a run's coefficients carry the run's sign and no -0.0; all its coefficients' continuations are one
  seeded ``sample_continuations`` call, each row steered by its own coefficient, cached on disk (a second
  run is served from the cache, token for token); labels are VADER's text labels of the decoded continuations.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from scipy.stats import spearmanr

from harness.interventions import hook_names
from harness.verdicts.declared import STEERING_PROTOCOL
from harness.runtime.disk_cache import DiskCache
from harness.interventions.generation import sample_continuations, steering_hook
from harness.datasets.lexicon import NEGATIVE, NEUTRAL, POSITIVE, VaderLabeller
from harness.models.paper import STEERING_MODEL
from harness.datasets.prompts import paper_reference
from harness.measures.statistics import seeded, wilson
from harness.experiments.steering import (
    MIRROR_PROMPT, SteeringRun, SteeringSettings, median_residual_norm, rank_trend, steering_grid, steering_prompts,
    steering_run,
)

FRACTIONS = tuple(STEERING_PROTOCOL["coefficient_fractions"])
from harness.interventions.forward import residual_stream


@pytest.fixture(scope="module")
def settings() -> SteeringSettings:
    return SteeringSettings.from_reference(paper_reference()["steering"])


def test_settings_are_the_papers(settings):
    assert (settings.samples_per_coef, settings.top_k, settings.temperature, settings.max_new_tokens,
            settings.seed) == (20, 10, 1.0, 30, 0)
    assert settings.coefficients == tuple(range(-20, 1))
    assert settings.sampling == {"top_k": 10, "temperature": 1.0, "seed": 0}
    assert settings.prompt.startswith("I really enjoyed the movie")


def test_pre_registered_settings_take_the_protocol_and_the_session_seed(settings):
    assert FRACTIONS == (0.0, 0.25, 0.5, 0.75, 1.0)
    registered = SteeringSettings.pre_registered(paper_reference()["steering"], STEERING_PROTOCOL, 0)
    assert registered.samples_per_coef == 50 == STEERING_PROTOCOL["samples_per_coefficient"]
    assert replace(registered, samples_per_coef=settings.samples_per_coef) == settings  # seed 0: the paper's
    assert SteeringSettings.pre_registered(paper_reference()["steering"], STEERING_PROTOCOL, 2).seed == settings.seed + 2


def test_grid_on_the_steering_model_is_the_papers_integers(settings):
    scale, steps = steering_grid(STEERING_MODEL, FRACTIONS, settings.coefficients, residual_norm=123.0)
    assert scale == 20.0
    assert steps == (0.0, 5.0, 10.0, 15.0, 20.0)
    assert all(-step in settings.coefficients for step in steps)


@pytest.mark.parametrize("norm", [3.0, 41.7])
def test_grid_elsewhere_is_fractions_of_the_residual_norm(settings, norm):
    scale, steps = steering_grid("smollm2-135m", FRACTIONS, settings.coefficients, residual_norm=norm)
    assert scale == norm
    assert steps == tuple(norm * f for f in FRACTIONS)
    assert steps[0] == 0.0 and steps[-1] == norm


def test_rank_trend_is_spearman_over_samples():
    generator = torch.Generator().manual_seed(0)
    magnitudes = torch.tensor([0.0, 1.0, 2.0, 3.0])
    hits = (torch.rand(4, 30, generator=generator) < torch.tensor([0.1, 0.3, 0.5, 0.7])[:, None]).double()
    with seeded(0):
        trend = rank_trend(magnitudes, hits, resamples=500)
    expected = spearmanr(magnitudes.repeat_interleave(30).numpy(), hits.flatten().numpy()).statistic
    assert trend.value == pytest.approx(expected)
    assert trend.ci_low < trend.value < trend.ci_high and trend.n == 120 and trend.unit == "samples"
    assert trend.resamples == 500 and trend.undefined == 0
    with seeded(0):
        assert rank_trend(magnitudes, hits, resamples=500) == trend
    with seeded(1):
        assert rank_trend(magnitudes, hits, resamples=500) != trend


def test_rank_trend_resamples_within_each_coefficient():
    # each coefficient's samples are all equal: a within-coefficient resample reproduces the data exactly
    hits = torch.tensor([[0.0] * 5, [0.0] * 5, [1.0] * 5])
    trend = rank_trend(torch.tensor([0.0, 1.0, 2.0]), hits, resamples=200)
    assert trend.ci_low == trend.ci_high == pytest.approx(trend.value)
    assert trend.value == pytest.approx(spearmanr([0] * 5 + [1] * 5 + [2] * 5, hits.flatten().numpy()).statistic)


def test_rank_trend_counts_constant_resamples_and_handles_constant_data():
    hits = torch.zeros(2, 20)
    hits[1, 0] = 1.0  # one hit: many resamples lose it
    trend = rank_trend(torch.tensor([0.0, 1.0]), hits, resamples=400)
    assert 0 < trend.undefined < 400
    never = rank_trend(torch.tensor([0.0, 1.0]), torch.zeros(2, 20))
    assert (never.value, never.ci_low, never.ci_high) == (0.0, 0.0, 0.0) and "undefined" in never.method


@pytest.mark.parametrize("prepend_bos", [True, False])
def test_median_residual_norm_leaves_bos_out(gpt2, prepend_bos):
    prompt = paper_reference()["steering"]["prompt"]
    tokens = gpt2.bridge.to_tokens(prompt, prepend_bos=prepend_bos)
    rows = residual_stream(gpt2.bridge, tokens)[1, 0, int(prepend_bos):]
    assert median_residual_norm(gpt2.bridge, prompt, 1, prepend_bos) == pytest.approx(float(rows.norm(dim=-1).median()),
                                                                                   rel=1e-5)


def test_prompts_steer_the_paper_prompt_negative_and_the_mirror_positive(settings):
    prompts = steering_prompts(settings)
    assert list(prompts.values()) == [(settings.prompt, -1.0, NEGATIVE), (MIRROR_PROMPT, 1.0, POSITIVE)]


def test_share_counts_labels_per_coefficient():
    run = SteeringRun("p", NEGATIVE, (0.0, -1.0), (("a", "b", "c", "d"),) * 2,
                      torch.tensor([[NEGATIVE, NEUTRAL, POSITIVE, POSITIVE], [NEGATIVE, NEGATIVE, NEGATIVE, NEUTRAL]]))
    assert run.share(NEGATIVE).tolist() == [0.25, 0.75]
    assert run.share(POSITIVE).tolist() == [0.5, 0.0]
    assert run.share_estimate(1) == wilson(3, 4, unit="samples")  # the target's share, %
    assert run.share_estimate(0, POSITIVE) == wilson(2, 4, unit="samples")
    with seeded(0):
        assert run.trend() == rank_trend(torch.tensor([0.0, 1.0]), (run.labels == NEGATIVE).double())


def test_steering_run_samples_every_coefficient_in_one_generation_and_caches_it(gpt2, settings, tmp_path):
    small = replace(settings, samples_per_coef=3, max_new_tokens=4)
    direction = torch.randn(gpt2.bridge.cfg.d_model, generator=torch.Generator().manual_seed(0))
    hook = hook_names.resid(gpt2.n_layers, 1)
    labeller, cache = VaderLabeller(), DiskCache(tmp_path)
    run = steering_run(gpt2, small.prompt, -1.0, NEGATIVE, (0.0, 30.0), hook, direction, small, labeller, cache)
    assert run.coefficients == (0.0, -30.0) and math.copysign(1.0, run.coefficients[0]) == 1.0
    assert (cache.misses, cache.hits) == (1, 0)
    tokens = gpt2.bridge.to_tokens(small.prompt, prepend_bos=gpt2.prepend_bos)[0]
    per_row = torch.tensor([0.0, 0.0, 0.0, -30.0, -30.0, -30.0])
    sampled = sample_continuations(gpt2.bridge, tokens, 6, 4, fwd_hooks=[(hook, steering_hook(direction, per_row))],
                                   top_k=10, temperature=1.0, seed=0).reshape(2, 3, -1)
    for texts, rows in zip(run.continuations, sampled):
        assert texts == tuple(gpt2.tokenizer.decode(row, skip_special_tokens=True) for row in rows)
    assert run.continuations[0] != run.continuations[1]
    assert run.labels.tolist() == [[labeller.text_label(t) for t in row] for row in run.continuations]
    again = steering_run(gpt2, small.prompt, -1.0, NEGATIVE, (0.0, 30.0), hook, direction, small, labeller, cache)
    assert (cache.misses, cache.hits) == (1, 1)
    assert again.continuations == run.continuations and torch.equal(again.labels, run.labels)
    steering_run(gpt2, small.prompt, 1.0, POSITIVE, (0.0, 30.0), hook, direction, small, labeller, cache)
    assert (cache.misses, cache.hits) == (2, 1)  # +30 is a new grid
