"""harness.interventions.path_patching (batched) against harness.interventions.naive_path_patching (one forward per sender).

On the tiny random-weight GPT-2 and NeoX models of ``conftest.py`` and on a tiny Llama-style model
with grouped-query attention (4 query heads, 2 key/value heads, RMSNorm, rotary: the embedded model's
architecture), clean/corrupted = ToyMovieReview test pairs:

- stage 1 (every head and MLP → final residual) equals the naive loop to 1e-4;
- stage 2 (senders → receivers' q, k or v input, receivers in two layers of a 3-layer model) too;
- on a tiny Gemma-3, whose blocks normalise the attention output before the residual, stage 1 and
  stage 2 equal the naive loop too (a head's write goes through the post-attention norm);
- per-head outputs z_h @ W_O[h] sum to ``hook_attn_out`` (minus b_O) on the processed bridge, so
  ``head_outputs`` is exact in compatibility mode;
- patching every sender from the clean run (corrupted = clean) gives the clean score;
- bad receivers (MLPs, none, only layer-0 heads) and input kinds are refused with a message;
- ``set_heads``, the one head-output edit of batched, naive and circuit patching, sets only the listed
  heads' z, leaves its input untouched, and works as a hook and under a position mask.
"""

from __future__ import annotations

import pytest
import torch

from harness.interventions import hook_names
from harness.interventions.naive_path_patching import naive_path_patch_to_heads, naive_path_patch_to_logits
from harness.interventions.path_patching import (
    INPUT_KINDS, Node, all_senders, component_cache, final_scores, head_outputs, path_effect,
    path_patch_to_heads, path_patch_to_logits, set_heads,
)
from harness.datasets.toy_movie_review import build_toy_movie_review

N_PAIRS = 4


def _runs(model):
    pairs = build_toy_movie_review(model.bridge, prepend_bos=True).test_pairs
    tokens = pairs.clean.tokens[:N_PAIRS], pairs.corrupted.tokens[:N_PAIRS]
    return tokens, component_cache(model.bridge, tokens[0]), component_cache(model.bridge, tokens[1]), pairs.answer_ids


def test_head_outputs_sum_to_attention_output(tiny_lm):
    bridge = tiny_lm.bridge
    (tokens, _), clean, _, _ = _runs(tiny_lm)
    layer = bridge.cfg.n_layers - 1
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name == hook_names.attn_out(layer))
    b_o = bridge.b_O[layer].detach() if getattr(bridge, "b_O", None) is not None else 0
    summed = head_outputs(bridge, clean.z[layer], layer).sum(-2) + b_o
    torch.testing.assert_close(summed, cache[hook_names.attn_out(layer)], atol=1e-4, rtol=1e-4)


def test_final_scores_equal_the_model_logits(tiny_lm):
    bridge = tiny_lm.bridge
    (tokens, _), clean, _, answers = _runs(tiny_lm)
    with torch.no_grad():
        logits = bridge(tokens, logits_to_keep=1)[:, -1]
    expected = (logits[:, answers[0]] - logits[:, answers[1]]).mean(-1)
    torch.testing.assert_close(final_scores(bridge, clean.resid[-1][:, -1], answers), expected, atol=1e-4, rtol=1e-4)


def test_stage1_batched_equals_naive(tiny_lm):
    (tokens, _), clean, corrupted, answers = _runs(tiny_lm)
    senders, batched = path_patch_to_logits(tiny_lm.bridge, clean, corrupted, answers)
    naive_senders, naive = naive_path_patch_to_logits(tiny_lm.bridge, tokens, clean, corrupted, answers)
    assert senders == naive_senders
    assert len(senders) == tiny_lm.n_layers * (tiny_lm.bridge.cfg.n_heads + 1)
    torch.testing.assert_close(batched, naive, atol=1e-4, rtol=1e-4)
    assert batched.std() > 1e-3  # the senders differ: the comparison is not vacuous


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_stage2_batched_equals_naive(tiny_llama, kind):
    (tokens, _), clean, corrupted, answers = _runs(tiny_llama)
    receivers = [Node(1, 0), Node(2, 1), Node(2, 3)]  # two layers; on the key/value side 2.1 and 2.3 share a group
    senders, batched = path_patch_to_heads(tiny_llama.bridge, clean, corrupted, receivers, kind, answers)
    naive_senders, naive = naive_path_patch_to_heads(tiny_llama.bridge, tokens, clean, corrupted, receivers, kind, answers)
    assert senders == naive_senders == all_senders(3, 4, before_layer=2)
    torch.testing.assert_close(batched, naive, atol=1e-4, rtol=1e-4)
    assert batched.std() > 1e-3


def test_stage1_and_stage2_batched_equal_naive_through_a_post_attention_norm(tiny_gemma):
    (tokens, _), clean, corrupted, answers = _runs(tiny_gemma)
    _, batched = path_patch_to_logits(tiny_gemma.bridge, clean, corrupted, answers)
    _, naive = naive_path_patch_to_logits(tiny_gemma.bridge, tokens, clean, corrupted, answers)
    torch.testing.assert_close(batched, naive, atol=1e-4, rtol=1e-4)
    assert batched.std() > 1e-3
    receivers = [Node(1, 0), Node(2, 3)]
    for kind in INPUT_KINDS:
        _, batched = path_patch_to_heads(tiny_gemma.bridge, clean, corrupted, receivers, kind, answers)
        _, naive = naive_path_patch_to_heads(tiny_gemma.bridge, tokens, clean, corrupted, receivers, kind, answers)
        torch.testing.assert_close(batched, naive, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("architecture", ["gpt2", "neox"])
def test_stage2_batched_equals_naive_on_paper_architectures(tiny_models, architecture):
    model = tiny_models[architecture]
    (tokens, _), clean, corrupted, answers = _runs(model)
    receivers = [Node(1, 2)]
    for kind in INPUT_KINDS:
        _, batched = path_patch_to_heads(model.bridge, clean, corrupted, receivers, kind, answers)
        _, naive = naive_path_patch_to_heads(model.bridge, tokens, clean, corrupted, receivers, kind, answers)
        torch.testing.assert_close(batched, naive, atol=1e-4, rtol=1e-4)


def test_patching_from_the_clean_run_changes_nothing(gpt2):
    (tokens, _), clean, _, answers = _runs(gpt2)
    _, scores = path_patch_to_logits(gpt2.bridge, clean, clean, answers)
    clean_score = final_scores(gpt2.bridge, clean.resid[-1][:, -1], answers)
    torch.testing.assert_close(scores, clean_score.expand_as(scores), atol=1e-5, rtol=1e-5)
    _, scores = path_patch_to_heads(gpt2.bridge, clean, clean, [Node(1, 0)], "v", answers)
    torch.testing.assert_close(scores, clean_score.expand_as(scores), atol=1e-5, rtol=1e-5)


def test_path_effect_scale():
    labels = torch.tensor([1, 0, 1, 0])
    clean, corrupted = torch.tensor([2.0, -2.0, 2.0, -2.0]), torch.tensor([-1.0, 1.0, -1.0, 1.0])
    effect = path_effect(torch.stack([clean, corrupted]), clean, corrupted, labels)
    torch.testing.assert_close(effect, torch.tensor([0.0, -100.0]))


def test_bad_receivers_are_refused(gpt2):
    (_, _), clean, corrupted, answers = _runs(gpt2)
    with pytest.raises(ValueError, match="kind"):
        path_patch_to_heads(gpt2.bridge, clean, corrupted, [Node(1, 0)], "o", answers)
    with pytest.raises(ValueError, match="attention heads"):
        path_patch_to_heads(gpt2.bridge, clean, corrupted, [Node(1)], "q", answers)
    with pytest.raises(ValueError, match="attention heads"):
        path_patch_to_heads(gpt2.bridge, clean, corrupted, [], "q", answers)
    with pytest.raises(ValueError, match="layer 0 have no senders"):
        path_patch_to_heads(gpt2.bridge, clean, corrupted, [Node(0, 1), Node(0, 2)], "q", answers)


def test_set_heads_sets_only_the_listed_heads():
    from harness.interventions.edit import edit_hook

    z = torch.randn(2, 5, 4, 3)  # [batch, pos, head, d_head]
    value = torch.randn(2, 5, 2, 3)
    before = z.clone()
    edited = set_heads([3, 1], value)(z, hook=None)
    assert torch.equal(z, before)  # the input is not edited in place
    assert torch.equal(edited[:, :, 3], value[:, :, 0]) and torch.equal(edited[:, :, 1], value[:, :, 1])
    assert torch.equal(edited[:, :, [0, 2]], z[:, :, [0, 2]])
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[:, 4] = True
    masked = edit_hook(set_heads([3, 1], value), mask)(z)
    assert torch.equal(masked[:, 4], edited[:, 4]) and torch.equal(masked[:, :4], z[:, :4])
    half = set_heads([0], value[:, :, :1].double())(z)  # the value is cast to the activation's dtype
    assert half.dtype == z.dtype and torch.equal(half[:, :, 0], value[:, :, 0])


def test_head_roles_from_attention_patterns():
    from harness.experiments.head_roles import classify_heads

    positions = {name: torch.tensor([p, p]) for name, p in {"ADJ": 1, "VRB": 2, "SBJ2": 3, "END": 4}.items()}
    pattern = torch.zeros(2, 3, 5, 5)  # [batch, head, q, k]
    pattern[:, 0, 4, 1] = 0.5  # head 0: END -> ADJ
    pattern[:, 1, 4, 3] = 0.3  # head 1: END -> SBJ2
    pattern[:, 2, 3, 2] = 0.2  # head 2: SBJ2 -> VRB, and END -> VRB below threshold
    pattern[:, 2, 4, 2] = 0.05
    roles = classify_heads({0: pattern}, positions, [(0, 0), (0, 1), (0, 2)], threshold=0.1)
    assert [r.roles for r in roles] == [("direct reader",), ("summary reader",), ("summary writer",)]
    with pytest.raises(ValueError, match="SBJ2"):
        classify_heads({0: pattern}, {k: v for k, v in positions.items() if k != "SBJ2"}, [(0, 0)], threshold=0.1)


@pytest.mark.parametrize("directional", [False, True])
def test_circuit_patch_equals_editing_hook_result(gpt2, directional):
    """``patch_head_outputs`` (hook_z / hook_attn_out) equals the authors' edit of each head's
    ``hook_result``, done here with ``set_use_attn_result(True)`` (restored afterwards)."""
    from harness.interventions.circuit_patching import patch_head_outputs
    from harness.interventions.edit import directional_patch, edit_hook, full_patch, position_mask

    bridge = gpt2.bridge
    (clean_tokens, corrupted_tokens), clean, corrupted, answers = _runs(gpt2)
    heads = [Node(0, 1), Node(1, 0), Node(1, 3)]
    mask = position_mask(torch.full((N_PAIRS,), 6), clean_tokens.shape[1]) | position_mask(
        torch.full((N_PAIRS,), clean_tokens.shape[1] - 1), clean_tokens.shape[1])
    directions = {0: torch.randn(64, generator=torch.Generator().manual_seed(0)), 1: torch.randn(64)}
    scores = patch_head_outputs(bridge, corrupted, clean, heads, answers, mask, directions if directional else None)

    bridge.set_use_attn_result(True)
    try:
        with torch.no_grad():
            _, cache = bridge.run_with_cache(clean_tokens, names_filter=lambda name: name.endswith("hook_result"))
            hooks = []
            for node in heads:
                source = cache[hook_names.attn("result", node.layer)][:, :, node.head]
                edit = directional_patch(directions[node.layer], source) if directional else full_patch(source)

                def per_head(result, hook=None, head=node.head, edit=edit):
                    result = result.clone()
                    result[:, :, head] = edit_hook(edit, mask)(result[:, :, head])
                    return result

                hooks.append((hook_names.attn("result", node.layer), per_head))
            logits = bridge.run_with_hooks(corrupted_tokens, fwd_hooks=hooks, logits_to_keep=1)[:, -1]
    finally:
        bridge.set_use_attn_result(False)
    expected = (logits[:, answers[0]] - logits[:, answers[1]]).mean(-1)
    torch.testing.assert_close(scores, expected, atol=1e-4, rtol=1e-4)
    unpatched = final_scores(bridge, corrupted.resid[-1][:, -1], answers)
    assert (scores - unpatched).abs().max() > 1e-3


def test_stage2_on_a_subset_of_heads_and_pairs_equals_the_full_run(gpt2):
    """``heads_only`` drops the MLP senders and ``ComponentCache.rows`` the other pairs; neither changes
    the scores of what is kept."""
    (_, _), clean, corrupted, answers = _runs(gpt2)
    receivers = [Node(1, 2)]
    senders, full = path_patch_to_heads(gpt2.bridge, clean, corrupted, receivers, "v", answers)
    rows = torch.tensor([0, 2])
    head_senders, part = path_patch_to_heads(gpt2.bridge, clean.rows(rows), corrupted.rows(rows), receivers, "v",
                                             answers, heads_only=True)
    kept = [i for i, node in enumerate(senders) if not node.is_mlp]
    assert head_senders == [senders[i] for i in kept]
    torch.testing.assert_close(part, full[kept][:, rows], atol=1e-5, rtol=1e-5)
