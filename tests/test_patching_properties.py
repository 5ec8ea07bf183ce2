"""Patching properties on the tiny GPT-2 with ToyMovieReview test pairs (paper §5.2, harness.interventions.sweep).

- patching clean into clean along any directions, at any layers, is the identity;
- full-residual patching of the clean run into the corrupted run at any layer recovers 100% of the
  logit difference, and the unpatched corrupted run recovers 0%;
- every (method, layer) score of the sweep, several methods stacked along the batch, equals an
  independent full forward of the corrupted tokens with that method's patch at that layer;
- the sweep is deterministic (bit-identical on a second run).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.interventions.forward import block_inputs, run_from
from harness.interventions.hook_names import resid as resid_hook_name
from harness.interventions.edit import directional_patch, edit_hook, full_patch
from harness.measures.metrics import centred_logit_diff, logit_diff_recovered, sentiment_score
from harness.interventions.sweep import directional_patching_sweep
from tests.conftest import N_LAYERS


@pytest.fixture(scope="module")
def pairs_data(gpt2, toy, toy_resid):
    """(pairs, clean residual, corrupted residual), each residual [n_layers+1, n_pairs, pos, d_model]."""
    pairs = toy.test_pairs
    resid = toy_resid["test"]
    return pairs, resid[:, pairs.clean_index], resid[:, pairs.corrupted_index]


def random_directions(seed: int, methods: int, layers, d_model: int) -> dict[str, dict[int, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return {f"m{k}": {layer: torch.randn(d_model, generator=generator) for layer in layers} for k in range(methods)}


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), methods=st.integers(1, 3),
       layers=st.sets(st.integers(0, N_LAYERS), min_size=1))
def test_patching_clean_into_clean_is_identity(gpt2, pairs_data, seed, methods, layers):
    pairs, clean, _ = pairs_data
    directions = random_directions(seed, methods, sorted(layers), gpt2.bridge.cfg.d_model)
    results = directional_patching_sweep(gpt2.bridge, clean, clean, pairs.clean.labels, pairs.answer_ids, directions)
    torch.testing.assert_close(results.corrupted, results.clean, atol=0, rtol=0)
    for method, by_layer in directions.items():
        for layer in by_layer:
            torch.testing.assert_close(results.patched[method, layer], results.clean, atol=1e-6, rtol=0)


def test_full_residual_patch_recovers_everything_and_no_patch_nothing(gpt2, pairs_data):
    pairs, clean, corrupted = pairs_data
    labels, answers, n_layers = pairs.clean.labels, pairs.answer_ids, gpt2.n_layers
    with torch.no_grad():
        clean_score = sentiment_score(run_from(gpt2.bridge, block_inputs(clean, n_layers), n_layers), answers)
        corrupted_score = sentiment_score(run_from(gpt2.bridge, block_inputs(corrupted, n_layers), n_layers), answers)
    gap = centred_logit_diff(clean_score, labels).mean() - centred_logit_diff(corrupted_score, labels).mean()
    assert abs(gap) > 1e-2, "clean and corrupted runs too close for % recovered to be meaningful"
    for layer in range(n_layers + 1):
        hook = edit_hook(full_patch(clean[layer]))
        with torch.no_grad():
            patched = run_from(gpt2.bridge, block_inputs(corrupted, layer), layer,
                               [(resid_hook_name(n_layers, layer), hook)])
            unpatched = run_from(gpt2.bridge, block_inputs(corrupted, layer), layer)
        patched_score, unpatched_score = sentiment_score(patched, answers), sentiment_score(unpatched, answers)
        assert logit_diff_recovered(patched_score, clean_score, corrupted_score, labels).item() == pytest.approx(100, abs=0.01)
        assert logit_diff_recovered(unpatched_score, clean_score, corrupted_score, labels).item() == pytest.approx(0, abs=0.01)


def test_sweep_equals_independent_full_forwards(gpt2, pairs_data):
    """Stacked methods in one restarted pass == one full ``run_with_hooks`` forward per (method, layer)."""
    pairs, clean, corrupted = pairs_data
    n_layers, answers, bridge = gpt2.n_layers, pairs.answer_ids, gpt2.bridge
    directions = random_directions(1, 3, range(n_layers + 1), gpt2.bridge.cfg.d_model)
    results = directional_patching_sweep(bridge, clean, corrupted, pairs.clean.labels, answers, directions)
    with torch.no_grad():
        torch.testing.assert_close(results.clean, sentiment_score(bridge(pairs.clean.tokens)[:, -1], answers), atol=1e-4, rtol=0)
        torch.testing.assert_close(results.corrupted, sentiment_score(bridge(pairs.corrupted.tokens)[:, -1], answers), atol=1e-4, rtol=0)
    for method, by_layer in directions.items():
        for layer, direction in by_layer.items():
            hook = edit_hook(directional_patch(direction, clean[layer]))
            with torch.no_grad():
                logits = bridge.run_with_hooks(pairs.corrupted.tokens, fwd_hooks=[(resid_hook_name(n_layers, layer), hook)])
            expected = sentiment_score(logits[:, -1], answers)
            assert (expected - results.corrupted).abs().max() > 1e-3, "the patch should move the scores"
            torch.testing.assert_close(results.patched[method, layer], expected, atol=1e-4, rtol=0)


def test_sweep_is_deterministic(gpt2, pairs_data):
    pairs, clean, corrupted = pairs_data
    directions = random_directions(2, 2, range(gpt2.n_layers + 1), gpt2.bridge.cfg.d_model)
    first, second = (directional_patching_sweep(gpt2.bridge, clean, corrupted, pairs.clean.labels,
                                                 pairs.answer_ids, directions) for _ in range(2))
    assert torch.equal(first.clean, second.clean) and torch.equal(first.corrupted, second.corrupted)
    assert first.patched.keys() == second.patched.keys()
    for key in first.patched:
        assert torch.equal(first.patched[key], second.patched[key]), key
    assert first.table("ld_recovered") == second.table("ld_recovered")
