"""``harness.interventions.prefix_cache``: a run restarted at a boundary on the positions after a cached prefix gives
the full run's logits (and DAS's loss and gradient, and the directional-patching sweep's scores), on
GPT-2, GPT-NeoX and grouped-query Llama; a prefix where clean and corrupted prompts differ is refused."""

from __future__ import annotations

import pytest
import torch

from harness.interventions import hook_names
from harness.directions.das import DASObjective
from harness.interventions.forward import block_inputs, residual_stream, run_from
from harness.interventions.edit import directional_patch, edit_hook, position_mask
from harness.interventions.prefix_cache import PrefixKV
from harness.interventions.sweep import directional_patching_sweep
from harness.datasets.toy_movie_review import build_toy_movie_review
from tests.test_das import problem_at

PREFIX = 3


@pytest.mark.parametrize("layer", [0, 1])
def test_a_restart_after_the_prefix_equals_the_full_run(tiny_lm, layer):
    bridge = tiny_lm.bridge
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(10, 1000, (4, 7), generator=generator)
    resid = residual_stream(bridge, tokens)
    direction = torch.randn(bridge.cfg.d_model, generator=generator)
    source = resid[layer, torch.arange(4).flip(0)]  # another prompt's activations
    positions = torch.tensor([PREFIX, PREFIX + 1, PREFIX, 5])
    name = hook_names.resid(bridge.cfg.n_layers, layer)

    def patch(rows, start: int):
        return [(name, edit_hook(directional_patch(direction, source[rows][:, start:]),
                                 position_mask(positions[rows] - start, tokens.shape[1] - start)))]

    base = block_inputs(resid, layer)
    rows = torch.tensor([2, 0, 1, 3])  # the cache's rows are selected like a DAS batch's
    with torch.no_grad():
        full = run_from(bridge, base, layer, patch(torch.arange(4), 0))
        prefix = PrefixKV.of(bridge, tokens, PREFIX)
        cached = run_from(bridge, base[rows][:, PREFIX:], layer, patch(rows, PREFIX), prefix=prefix.rows(rows))
    torch.testing.assert_close(cached, full[rows], atol=1e-4, rtol=1e-4)


def test_das_loss_and_gradient_are_the_same_with_the_prefix(gpt2, toy, toy_resid):
    objective, X, _, _ = problem_at(1, gpt2, toy, toy_resid)
    length = int(objective.positions.min())
    assert length > 0
    prefix = PrefixKV.of(gpt2.bridge, toy.train_pairs.corrupted.tokens, length)
    cheaper = DASObjective(**{**objective.__dict__, "prefix": prefix})
    rows = torch.arange(6)
    values, gradients = [], []
    for candidate in (objective, cheaper):
        direction = torch.randn(X.shape[1], generator=torch.Generator().manual_seed(1)).requires_grad_()
        loss = candidate.loss(direction, X, rows)
        loss.backward()
        values.append(loss.item())
        gradients.append(direction.grad)
    assert values[0] == pytest.approx(values[1], abs=1e-4)
    torch.testing.assert_close(gradients[1], gradients[0], atol=1e-4, rtol=1e-3)


def test_a_patch_inside_the_prefix_is_refused(gpt2, toy, toy_resid):
    objective, _, _, _ = problem_at(1, gpt2, toy, toy_resid)
    length = int(objective.positions.min())
    prefix = PrefixKV.of(gpt2.bridge, toy.train_pairs.corrupted.tokens, length + 1)
    with pytest.raises(ValueError, match="inside the cached prefix"):
        DASObjective(**{**objective.__dict__, "prefix": prefix})


def test_the_sweep_with_the_shared_prefix_equals_the_full_sweep(tiny_lm):
    """ToyMovieReview's clean and corrupted prompts agree before ADJ, so the directional-patching sweep
    computed from ADJ on (every position patched) gives the full sweep's scores."""
    toy = build_toy_movie_review(tiny_lm.bridge, prepend_bos=True)
    pairs = toy.test_pairs
    resid = residual_stream(tiny_lm.bridge, pairs.clean.tokens), residual_stream(tiny_lm.bridge, pairs.corrupted.tokens)
    adj = int(pairs.clean.positions["ADJ"].min())
    prefix = PrefixKV.shared(tiny_lm.bridge, pairs.clean.tokens, pairs.corrupted.tokens, adj)
    assert prefix is not None and prefix.length == adj > 0
    directions = {f"m{i}": {layer: torch.randn(tiny_lm.bridge.cfg.d_model, generator=torch.Generator().manual_seed(i))
                            for layer in range(tiny_lm.n_layers + 1)} for i in range(2)}
    full = directional_patching_sweep(tiny_lm.bridge, *resid, pairs.clean.labels, pairs.answer_ids, directions)
    cached = directional_patching_sweep(tiny_lm.bridge, *resid, pairs.clean.labels, pairs.answer_ids, directions,
                                        prefix=prefix)
    assert full.patched.keys() == cached.patched.keys()
    for key, scores in full.patched.items():
        torch.testing.assert_close(cached.patched[key], scores, atol=1e-4, rtol=1e-4)
    assert max(float((s - full.corrupted).abs().max()) for s in full.patched.values()) > 1e-3  # the patches act


def test_a_prefix_where_clean_and_corrupted_differ_is_refused(gpt2, toy):
    pairs = toy.test_pairs
    with pytest.raises(ValueError, match="differ before position"):
        PrefixKV.shared(gpt2.bridge, pairs.clean.tokens, pairs.corrupted.tokens,
                        int(pairs.clean.positions["ADJ"].min()) + 1)
    assert PrefixKV.shared(gpt2.bridge, pairs.clean.tokens, pairs.corrupted.tokens, 0) is None
