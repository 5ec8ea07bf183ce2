"""harness.steering: the §5.5 coefficient grid and the batched, cached sampling loop.

- on the paper's steering model the grid is its integers 0..20 at every second value; elsewhere the
  same 11 points scaled to half the median residual norm over the prompt's tokens (BOS left out);
- a run's coefficients carry the run's sign and no -0.0; each coefficient's continuations are one
  seeded ``sample_continuations`` call with the steering hook, cached on disk (a second run is served
  from the cache, token for token); labels are VADER's text labels of the decoded continuations.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from harness import hook_names
from harness.disk_cache import DiskCache
from harness.generation import sample_continuations, steering_hook
from harness.lexicon import NEGATIVE, NEUTRAL, POSITIVE, VaderLabeller
from harness.paper_models import STEERING_MODEL
from harness.prompts import paper_reference
from harness.steering import (
    MIRROR_PROMPT, STEERING_STEPS, SteeringRun, SteeringSettings, median_residual_norm, steering_grid, steering_prompts,
    steering_run,
)
from harness.forward import residual_stream


@pytest.fixture(scope="module")
def settings() -> SteeringSettings:
    return SteeringSettings.from_reference(paper_reference()["steering"])


def test_settings_are_the_papers(settings):
    assert (settings.samples_per_coef, settings.top_k, settings.temperature, settings.max_new_tokens,
            settings.seed) == (20, 10, 1.0, 30, 0)
    assert settings.coefficients == tuple(range(-20, 1))
    assert settings.sampling == {"top_k": 10, "temperature": 1.0, "seed": 0}
    assert settings.prompt.startswith("I really enjoyed the movie")


def test_grid_on_the_steering_model_is_the_papers(settings):
    strongest, steps = steering_grid(STEERING_MODEL, settings.coefficients, residual_norm=123.0)
    assert strongest == 20.0
    assert steps == tuple(float(s) for s in range(0, 21, 2))


@pytest.mark.parametrize("norm", [3.0, 41.7])
def test_grid_elsewhere_scales_to_half_the_residual_norm(settings, norm):
    strongest, steps = steering_grid("smollm2-135m", settings.coefficients, residual_norm=norm)
    assert strongest == 0.5 * norm
    assert len(steps) == len(STEERING_STEPS) == 11
    assert steps[0] == 0.0 and steps[-1] == pytest.approx(strongest)
    assert steps == tuple(strongest * s / 20 for s in range(0, 21, 2))


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


def test_steering_run_samples_each_coefficient_once_and_caches_it(gpt2, settings, tmp_path):
    small = replace(settings, samples_per_coef=3, max_new_tokens=4)
    direction = torch.randn(gpt2.bridge.cfg.d_model, generator=torch.Generator().manual_seed(0))
    hook = hook_names.resid(gpt2.n_layers, 1)
    labeller, cache = VaderLabeller(), DiskCache(tmp_path)
    run = steering_run(gpt2, small.prompt, -1.0, NEGATIVE, (0.0, 30.0), hook, direction, small, labeller, cache)
    assert run.coefficients == (0.0, -30.0) and math.copysign(1.0, run.coefficients[0]) == 1.0
    assert (cache.misses, cache.hits) == (2, 0)
    tokens = gpt2.bridge.to_tokens(small.prompt, prepend_bos=gpt2.prepend_bos)[0]
    for coefficient, texts in zip(run.coefficients, run.continuations):
        sampled = sample_continuations(gpt2.bridge, tokens, 3, 4, fwd_hooks=[(hook, steering_hook(direction, coefficient))],
                                       top_k=10, temperature=1.0, seed=0)
        assert texts == tuple(gpt2.tokenizer.decode(row, skip_special_tokens=True) for row in sampled)
    assert run.continuations[0] != run.continuations[1]
    assert run.labels.tolist() == [[labeller.text_label(t) for t in row] for row in run.continuations]
    again = steering_run(gpt2, small.prompt, -1.0, NEGATIVE, (0.0, 30.0), hook, direction, small, labeller, cache)
    assert (cache.misses, cache.hits) == (2, 2)
    assert again.continuations == run.continuations and torch.equal(again.labels, run.labels)
    steering_run(gpt2, small.prompt, 1.0, POSITIVE, (0.0, 30.0), hook, direction, small, labeller, cache)
    assert (cache.misses, cache.hits) == (3, 3)  # +0.0 is -0.0's entry; +30 is a new one
