"""harness.interventions.forward on both tiny models (paper §3: residual boundaries, restarting a forward pass).

- ``residual_stream`` gives [n_layers+1, batch, pos, d_model], boundary L being the input of block L
  and boundary n_layers the last block's output;
- ``run_from`` (restart at boundary L from the saved residual, earlier blocks hidden) gives the
  final-position logits of a full ``run_with_hooks`` forward with the same hook at
  ``resid_hook_name(n_layers, L)``, for every L, with and without left padding; it runs no block
  before ``first_block(L)``;
- nothing leaks: after ``run_from`` (also one whose hook raises) the wrapped model has all its blocks,
  no hook point keeps a hook, and a plain forward gives the logits it gave before.
"""

from __future__ import annotations

import pytest
import torch

from harness.interventions.forward import block_inputs, first_block, residual_stream, run_from
from harness.interventions.hook_names import resid as resid_hook_name
from harness.interventions.edit import directional_patch, edit_hook, position_mask
from harness.interventions.edit import hooks_attached

PROMPTS = ["I thought this movie was great, I loved it.", "I thought this movie was awful, I hated it."]
PADDED = ["I thought this movie was great, I loved it.", "It was awful"]


def tokenize(bridge, texts):
    tokens = bridge.to_tokens(texts, prepend_bos=True, padding_side="left")
    return tokens, (tokens != bridge.tokenizer.pad_token_id).long()


def original_blocks(bridge):
    parent = bridge.original_model
    for part in bridge.adapter.component_mapping["blocks"].name.split("."):
        parent = getattr(parent, part)
    return parent


def patch_hook(tokens, d_model, seed=0):
    """A directional patch from a random source at position 2 and the last position of every row
    (the last, so that it changes the final logits even at the final boundary)."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(d_model, generator=generator)
    source = 5 * torch.randn(*tokens.shape, d_model, generator=generator)
    n_rows, n_positions = tokens.shape
    mask = position_mask(torch.full((n_rows,), 2), n_positions) | position_mask(torch.full((n_rows,), n_positions - 1), n_positions)
    return edit_hook(directional_patch(direction, source), mask)


def test_resid_hook_name_boundaries():
    assert resid_hook_name(2, 0) == "blocks.0.hook_resid_pre"
    assert resid_hook_name(2, 1) == "blocks.1.hook_resid_pre"
    assert resid_hook_name(2, 2) == "blocks.1.hook_resid_post"
    assert [first_block(2, layer) for layer in range(3)] == [0, 1, 1]
    for bad in (-1, 3):
        with pytest.raises(ValueError):
            resid_hook_name(2, bad)


def test_residual_stream_shape_and_boundaries(tiny):
    bridge = tiny.bridge
    tokens, _ = tokenize(bridge, PROMPTS)
    resid = residual_stream(bridge, tokens)
    assert resid.shape == (tiny.n_layers + 1, len(PROMPTS), tokens.shape[1], tiny.bridge.cfg.d_model)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens)
    torch.testing.assert_close(resid[0], cache["blocks.0.hook_resid_pre"])
    torch.testing.assert_close(resid[-1], cache[f"blocks.{tiny.n_layers - 1}.hook_resid_post"])
    # consecutive boundaries are one block apart: block L's output is boundary L+1
    torch.testing.assert_close(resid[1], cache["blocks.0.hook_resid_post"])


@pytest.mark.parametrize("texts", [PROMPTS, PADDED], ids=["same-length", "left-padded"])
def test_run_from_equals_full_forward_at_every_layer(tiny, texts):
    bridge, n_layers = tiny.bridge, tiny.n_layers
    tokens, mask = tokenize(bridge, texts)
    resid = residual_stream(bridge, tokens, attention_mask=mask)
    hook = patch_hook(tokens, tiny.bridge.cfg.d_model)
    with torch.no_grad():
        unpatched = bridge(tokens, attention_mask=mask)[:, -1]
    for layer in range(n_layers + 1):
        name = resid_hook_name(n_layers, layer)
        with torch.no_grad():
            full = bridge.run_with_hooks(tokens, fwd_hooks=[(name, hook)], attention_mask=mask)[:, -1]
            restarted = run_from(bridge, block_inputs(resid, layer), layer, [(name, hook)], attention_mask=mask)
        assert (full - unpatched).abs().max() > 1e-2, f"the hook at {name} should change the logits"
        torch.testing.assert_close(restarted, full, atol=1e-4, rtol=0)
        with torch.no_grad():
            plain = run_from(bridge, block_inputs(resid, layer), layer, attention_mask=mask)
        torch.testing.assert_close(plain, unpatched, atol=1e-4, rtol=0)


def test_run_from_skips_earlier_blocks(tiny):
    bridge, n_layers = tiny.bridge, tiny.n_layers
    tokens, _ = tokenize(bridge, PROMPTS)
    resid = residual_stream(bridge, tokens)
    blocks = list(original_blocks(bridge))
    for layer in range(n_layers + 1):
        calls = [0] * n_layers
        handles = [block.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
                   for i, block in enumerate(blocks)]
        try:
            with torch.no_grad():
                run_from(bridge, block_inputs(resid, layer), layer)
        finally:
            for handle in handles:
                handle.remove()
        start = first_block(n_layers, layer)
        assert calls == [0] * start + [1] * (n_layers - start), f"layer {layer}: block calls {calls}"


def test_run_from_leaks_nothing(tiny):
    bridge, n_layers = tiny.bridge, tiny.n_layers
    tokens, _ = tokenize(bridge, PROMPTS)
    with torch.no_grad():
        before = bridge(tokens)
    blocks = original_blocks(bridge)
    block_list = list(blocks)
    resid = residual_stream(bridge, tokens)

    def failing(activation, hook=None):
        raise RuntimeError("hook failed")

    for layer in range(n_layers + 1):
        name = resid_hook_name(n_layers, layer)
        with torch.no_grad():
            run_from(bridge, block_inputs(resid, layer), layer, [(name, patch_hook(tokens, tiny.bridge.cfg.d_model))])
        with pytest.raises(RuntimeError, match="hook failed"), torch.no_grad():
            run_from(bridge, block_inputs(resid, layer), layer, [(name, failing)])
        assert original_blocks(bridge) is blocks and list(blocks) == block_list
        assert hooks_attached(bridge) == 0
    with torch.no_grad():
        after = bridge(tokens)
    torch.testing.assert_close(after, before, atol=0, rtol=0)
