"""harness.interventions.generation: generation with hooks active, and the key/value-cache bug workaround (§5.5).

With transformer_lens 4.3 and transformers 5.24 the GPT-2 and Llama bridges generate wrong tokens
with the cache on (the cache reaches attention as ``cache=``, which the bridge does not read). The
suite keeps the cache on and passes it through (``kv_cache_passed_through``). Checked here on the
tiny GPT-2 and NeoX models of ``conftest.py`` and on a tiny Llama (grouped-query attention, rotary,
RMSNorm, the embedded model's architecture) built the same way:

- steered and unsteered, greedy and sampled: generation through the suite's path (cache on, fixed)
  equals generation without the cache, token for token;
- without the fix the cache gives other tokens on GPT-2 and Llama (the bug is still there; if a
  later TransformerLens fixes it, this test says so and the workaround can go);
- sampling is reproducible from its seed and leaves the global RNG alone; the steering hook adds
  exactly coef · unit(d) at every position; no hook of any kind is left behind.
"""

from __future__ import annotations

import pytest
import torch

from harness.interventions import hook_names
from harness.interventions.generation import kv_cache_passed_through, sample_continuations, steering_hook
from harness.interventions.edit import hooks_attached, unit

PROMPT = "I really enjoyed the movie, in fact I loved it. I thought the movie was just very"
HOOK = hook_names.resid_pre(1)


def steered(model, coefficient):
    direction = torch.randn(model.bridge.cfg.d_model, generator=torch.Generator().manual_seed(1))
    return [(HOOK, steering_hook(direction, coefficient))] if torch.as_tensor(coefficient).any() else []


def prompt_tokens(model):
    return model.bridge.to_tokens(PROMPT, prepend_bos=True)[0]


def attention_pre_hooks(bridge) -> int:
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    return sum(len(m._forward_pre_hooks) for m in bridge.modules() if isinstance(m, AttentionBridge))


@pytest.mark.parametrize("coefficient", [0.0, 4.0])
@pytest.mark.parametrize("do_sample", [False, True], ids=["greedy", "sampled"])
def test_cached_generation_equals_uncached(tiny_lm, coefficient, do_sample):
    kwargs = dict(fwd_hooks=steered(tiny_lm, coefficient), do_sample=do_sample, top_k=10, seed=3)
    cached = sample_continuations(tiny_lm.bridge, prompt_tokens(tiny_lm), 4, 12, use_kv_cache=True, **kwargs)
    uncached = sample_continuations(tiny_lm.bridge, prompt_tokens(tiny_lm), 4, 12, use_kv_cache=False, **kwargs)
    assert cached.shape == (4, 12)
    assert torch.equal(cached, uncached)
    assert hooks_attached(tiny_lm.bridge) == 0 and attention_pre_hooks(tiny_lm.bridge) == 0


def test_steering_changes_the_continuation(tiny_lm):
    plain = sample_continuations(tiny_lm.bridge, prompt_tokens(tiny_lm), 2, 12, do_sample=False)
    pushed = sample_continuations(tiny_lm.bridge, prompt_tokens(tiny_lm), 2, 12, fwd_hooks=steered(tiny_lm, 50.0),
                                  do_sample=False)
    assert not torch.equal(plain, pushed)


def test_a_row_per_coefficient_generates_what_each_coefficient_alone_does(tiny_lm):
    """The steering grid in one batch (a coefficient per row) equals one generation per coefficient (greedy)."""
    alone = [sample_continuations(tiny_lm.bridge, prompt_tokens(tiny_lm), 2, 12, fwd_hooks=steered(tiny_lm, c),
                                  do_sample=False) for c in (0.0, 20.0, 50.0)]
    together = sample_continuations(tiny_lm.bridge, prompt_tokens(tiny_lm), 6, 12, do_sample=False,
                                    fwd_hooks=steered(tiny_lm, torch.tensor([0.0, 0.0, 20.0, 20.0, 50.0, 50.0])))
    assert torch.equal(together, torch.cat(alone))


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_without_the_fix_the_cache_gives_other_tokens(architecture, tiny_models, tiny_llama):
    bridge = (tiny_llama if architecture == "llama" else tiny_models[architecture]).bridge
    tokens = bridge.to_tokens(PROMPT, prepend_bos=True)
    broken = bridge.generate(tokens, max_new_tokens=12, do_sample=False, use_past_kv_cache=True, verbose=False)
    with kv_cache_passed_through(bridge):
        fixed = bridge.generate(tokens, max_new_tokens=12, do_sample=False, use_past_kv_cache=True, verbose=False)
    uncached = bridge.generate(tokens, max_new_tokens=12, do_sample=False, use_past_kv_cache=False, verbose=False)
    assert torch.equal(fixed, uncached)
    assert not torch.equal(broken, uncached)


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(gpt2):
    tokens = prompt_tokens(gpt2)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = sample_continuations(gpt2.bridge, tokens, 6, 8, top_k=10, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, sample_continuations(gpt2.bridge, tokens, 6, 8, top_k=10, seed=0))
    assert not torch.equal(first, sample_continuations(gpt2.bridge, tokens, 6, 8, top_k=10, seed=1))
    assert len({tuple(row.tolist()) for row in first}) > 1  # the rows of one call are different samples


def test_steering_hook_adds_coef_times_unit_direction_everywhere():
    direction = torch.tensor([3.0, 4.0, 0.0])
    resid = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    edited = steering_hook(direction, -2.0)(resid.clone())
    assert torch.allclose(edited - resid, (-2.0 * unit(direction)).expand_as(resid))
