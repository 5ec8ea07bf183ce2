"""harness.attribution_patching (AtP for stage-2 paths) and the pruned stage 2 of harness.circuit.

On tiny random-weight GPT-2, NeoX and grouped-query Llama models (ToyMovieReview test pairs):

- with corrupted = clean, every estimate is the clean score (nothing to attribute);
- AtP is the first-order term of the exact path patch: with a corrupted run a step ε (0.1, then 0.05)
  of the way from the clean one, estimate and exact differ by under a tenth of the change, and the
  difference shrinks like ε² (halving ε about quarters it), so the gradients are right;
- the pruned stage 2 patches exactly the ``keep`` senders of largest estimated |effect| and gives them
  the unpruned run's exact scores; a sender outside stage 2's is refused.
"""

from __future__ import annotations

import pytest
import torch

from harness.attribution_patching import estimate_path_to_heads
from harness.circuit import prune_senders, stage2
from harness.path_patching import (
    ComponentCache, Node, component_cache, final_scores, path_effect, path_patch_to_heads,
)
from harness.toy_movie_review import build_toy_movie_review

N_PAIRS = 4
# Llama (3 layers): receivers in two layers, 2.1 and 2.3 sharing a key/value group; GPT-2 and NeoX have 2 layers
RECEIVERS = {3: [Node(1, 0), Node(2, 1), Node(2, 3)], 2: [Node(1, 0), Node(1, 2)]}


def _runs(model):
    pairs = build_toy_movie_review(model.bridge, prepend_bos=True).test_pairs
    clean = component_cache(model.bridge, pairs.clean.tokens[:N_PAIRS])
    corrupted = component_cache(model.bridge, pairs.corrupted.tokens[:N_PAIRS])
    return clean, corrupted, pairs.answer_ids


def _receivers(model) -> list[Node]:
    return RECEIVERS[model.n_layers]


def _step_towards(clean: ComponentCache, corrupted: ComponentCache, epsilon: float) -> ComponentCache:
    """A run whose head and MLP outputs lie ``epsilon`` of the way from clean to corrupted."""
    mix = lambda a, b: a + epsilon * (b - a)
    return ComponentCache(resid=clean.resid, q=clean.q, k=clean.k, v=clean.v, z=mix(clean.z, corrupted.z),
                          mlp_out=mix(clean.mlp_out, corrupted.mlp_out))


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_estimates_are_the_clean_score_when_nothing_changes(tiny_lm, kind):
    clean, _, answers = _runs(tiny_lm)
    _, estimates = estimate_path_to_heads(tiny_lm.bridge, clean, clean, _receivers(tiny_lm), kind, answers)
    clean_score = final_scores(tiny_lm.bridge, clean.resid[-1][:, -1], answers)
    torch.testing.assert_close(estimates, clean_score.expand_as(estimates), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_estimates_are_the_first_order_term_of_the_exact_patch(tiny_lm, kind):
    clean, corrupted, answers = _runs(tiny_lm)
    clean_score = final_scores(tiny_lm.bridge, clean.resid[-1][:, -1], answers)
    errors = []
    for epsilon in (0.1, 0.05):
        near = _step_towards(clean, corrupted, epsilon)
        senders, estimates = estimate_path_to_heads(tiny_lm.bridge, clean, near, _receivers(tiny_lm), kind, answers)
        exact_senders, exact = path_patch_to_heads(tiny_lm.bridge, clean, near, _receivers(tiny_lm), kind, answers)
        assert senders == exact_senders
        change = (exact - clean_score).abs().max()
        assert change > 1e-4  # the step moves the score: the comparison is not vacuous
        error = (estimates - exact).abs().max()
        assert error < 0.1 * change
        errors.append(float(error))
    assert errors[1] < 0.35 * errors[0] + 2e-6  # second order: halving the step about quarters the error


def test_pruned_stage2_patches_the_top_estimated_senders_exactly(tiny_llama):
    clean, corrupted, answers = _runs(tiny_llama)
    clean_score = final_scores(tiny_llama.bridge, clean.resid[-1][:, -1], answers)
    corrupted_score = final_scores(tiny_llama.bridge, corrupted.resid[-1][:, -1], answers)
    reference = (clean_score, corrupted_score, torch.tensor([1, 0, 1, 0]))
    every, full = path_patch_to_heads(tiny_llama.bridge, clean, corrupted, _receivers(tiny_llama), "v", answers, heads_only=True)
    stage = stage2(tiny_llama.bridge, clean, corrupted, _receivers(tiny_llama), "v", answers, reference, keep=3)
    assert [Node(*n) for n in stage["estimated_senders"]] == every
    estimated_effect = path_effect(stage["estimates"], *reference).abs()
    kept = [Node(*n) for n in stage["senders"]]
    assert kept == sorted(kept) and len(kept) == 3
    assert {every.index(n) for n in kept} == set(estimated_effect.argsort(descending=True)[:3].tolist())
    torch.testing.assert_close(stage["scores"], full[[every.index(n) for n in kept]], atol=1e-5, rtol=1e-5)
    unpruned = stage2(tiny_llama.bridge, clean, corrupted, _receivers(tiny_llama), "v", answers, reference, keep=None)
    assert [Node(*n) for n in unpruned["senders"]] == every
    torch.testing.assert_close(unpruned["scores"], full, atol=1e-5, rtol=1e-5)


def test_prune_senders_keeps_the_largest_estimates_in_order():
    senders = [Node(0, h) for h in range(4)] + [Node(1, 0)]
    assert prune_senders(senders, torch.tensor([0.1, -3.0, 0.5, 2.0, -0.2]), 2) == [Node(0, 1), Node(0, 3)]
    assert prune_senders(senders, torch.zeros(5), None) == senders
    assert prune_senders(senders, torch.zeros(5), 9) == senders


def test_a_sender_outside_stage2_is_refused(gpt2):
    clean, corrupted, answers = _runs(gpt2)
    with pytest.raises(ValueError, match="not stage-2 senders"):
        path_patch_to_heads(gpt2.bridge, clean, corrupted, [Node(1, 0)], "v", answers, senders=[Node(2, 0)])
