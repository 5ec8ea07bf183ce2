"""harness.interventions.attribution_patching (AtP of every head, MLP and residual position; AtP for stage-2 paths) and the
pruned stage 2 of harness.experiments.circuit.

On tiny random-weight GPT-2, NeoX and grouped-query Llama models (and Gemma-3, with its post-attention
norm, for the node estimates), ToyMovieReview test pairs:

- with corrupted = clean, every estimate is the clean score (nothing to attribute);
- AtP is the first-order term of the exact patch, for stage-2 paths and for every node kind (heads, MLPs,
  residual positions): with a corrupted run a step ε of the way from the clean one (0.1 then 0.05 for
  paths, 0.01 then 0.005 for nodes), estimate and exact differ by under a tenth (nodes: a fifth; measured
  on the Llama, a tenth and a twentieth) of the change, and the difference shrinks like ε² (halving ε about
  quarters it), so the gradients are right;
- the batched exact node patch gives the scores of one full forward per node (layer 0's first and last
  heads, the last layer's head 1 and MLP 0 through ``set_heads`` / ``edit_hook``, the first patched position
  of boundary 1 and the final boundary's last position), and the clean and corrupted runs' own scores;
- the agreement of hand-made estimates: identical rankings give ρ 1 and recall 1, reversed ones ρ −1 and
  recall 0; scores of other nodes are refused until ``NodeScores.restricted`` aligns them;
- the pruned stage 2 patches exactly the ``keep`` senders of largest estimated |effect| and gives them
  the unpruned run's exact scores; a sender outside stage 2's is refused.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness.interventions import hook_names
from harness.interventions.attribution_patching import (
    NODE_KINDS, NodeScores, attribution_agreement, estimate_activation_patching, estimate_path_to_heads,
    exact_activation_patching,
)
from harness.experiments.circuit import prune_senders, stage2
from harness.interventions.edit import edit_hook, full_patch, position_mask
from harness.measures.metrics import sentiment_score
from harness.interventions.path_patching import (
    ComponentCache, Node, component_cache, final_scores, path_effect, path_patch_to_heads, set_heads,
)
from harness.datasets.toy_movie_review import build_toy_movie_review

N_PAIRS = 4
# Llama (3 layers): receivers in two layers, 2.1 and 2.3 sharing a key/value group; GPT-2 and NeoX have 2 layers
RECEIVERS = {3: [Node(1, 0), Node(2, 1), Node(2, 3)], 2: [Node(1, 0), Node(1, 2)]}


@pytest.fixture(params=("gpt2", "neox", "llama", "gemma"))
def tiny_any(request: pytest.FixtureRequest, tiny_models):
    """Each tiny model in turn, the grouped-query Llama and Gemma-3 included."""
    return tiny_models.get(request.param) or request.getfixturevalue(f"tiny_{request.param}")


def _clean_tokens(model) -> torch.Tensor:
    return build_toy_movie_review(model.bridge, prepend_bos=True).test_pairs.clean.tokens[:N_PAIRS]


def _runs(model):
    pairs = build_toy_movie_review(model.bridge, prepend_bos=True).test_pairs
    clean = component_cache(model.bridge, pairs.clean.tokens[:N_PAIRS])
    corrupted = component_cache(model.bridge, pairs.corrupted.tokens[:N_PAIRS])
    return clean, corrupted, pairs.answer_ids


def _receivers(model) -> list[Node]:
    return RECEIVERS[model.n_layers]


def _step_towards(clean: ComponentCache, corrupted: ComponentCache, epsilon: float) -> ComponentCache:
    """A run whose head and MLP outputs and residual stream lie ``epsilon`` of the way from clean to corrupted."""
    mix = lambda a, b: a + epsilon * (b - a)
    return replace(clean, z=mix(clean.z, corrupted.z), mlp_out=mix(clean.mlp_out, corrupted.mlp_out),
                   resid=mix(clean.resid, corrupted.resid))


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


def test_node_estimates_are_the_clean_score_when_nothing_changes(tiny_llama):
    clean, _, answers = _runs(tiny_llama)
    estimate = estimate_activation_patching(tiny_llama.bridge, _clean_tokens(tiny_llama), clean, answers)
    assert estimate.positions == () and estimate.resid.shape == (tiny_llama.n_layers + 1, 0, N_PAIRS)
    for kind in NODE_KINDS:
        scores = getattr(estimate, kind)
        torch.testing.assert_close(scores, estimate.clean.expand_as(scores), atol=1e-5, rtol=1e-5)


def test_node_estimates_are_the_first_order_term_of_the_exact_patch(tiny_any):
    clean, corrupted, answers = _runs(tiny_any)
    boundaries = (1, tiny_any.n_layers)  # a restart after block 0, and the final residual
    errors = []
    for epsilon in (0.01, 0.005):  # the random Llama is far from linear: at 0.05, errors reach half the change
        near = _step_towards(clean, corrupted, epsilon)
        estimate = estimate_activation_patching(tiny_any.bridge, _clean_tokens(tiny_any), near, answers, boundaries)
        exact = exact_activation_patching(tiny_any.bridge, clean, near, answers, boundaries=boundaries)
        assert (estimate.boundaries, estimate.positions) == (exact.boundaries, exact.positions)
        assert estimate.boundaries == boundaries and len(estimate.positions) > 1
        torch.testing.assert_close(estimate.clean, exact.clean, atol=1e-5, rtol=1e-5)
        step_errors = {}
        for kind in NODE_KINDS:
            change = (getattr(exact, kind) - exact.clean).abs().max()
            assert change > 1e-4, kind  # the step moves the score: the comparison is not vacuous
            step_errors[kind] = float((getattr(estimate, kind) - getattr(exact, kind)).abs().max())
            assert step_errors[kind] < 0.2 * change, kind
        errors.append(step_errors)
    for kind in NODE_KINDS:  # second order: halving the step about quarters the error
        assert errors[1][kind] < 0.35 * errors[0][kind] + 2e-6, kind


def test_exact_node_patching_is_one_forward_per_node(tiny_any):
    bridge, n_layers = tiny_any.bridge, tiny_any.n_layers
    clean, corrupted, answers = _runs(tiny_any)
    tokens = _clean_tokens(tiny_any)
    exact = exact_activation_patching(bridge, clean, corrupted, answers, boundaries=(1, n_layers))

    def patched(*hooks) -> torch.Tensor:
        with torch.no_grad():
            logits = bridge.run_with_hooks(tokens, fwd_hooks=list(hooks), logits_to_keep=1)
        return sentiment_score(logits[:, -1].float(), answers)

    close = lambda actual, expected: torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
    close(exact.clean, patched())
    close(exact.corrupted, final_scores(bridge, corrupted.resid[-1][:, -1], answers))
    for layer, head in ((0, 0), (0, bridge.cfg.n_heads - 1), (n_layers - 1, 1)):
        edit = set_heads([head], corrupted.z[layer][:, :, [head]])
        close(exact.heads[layer, head], patched((hook_names.attn("z", layer), edit)))
    close(exact.mlps[0], patched((hook_names.mlp_out(0), edit_hook(full_patch(corrupted.mlp_out[0])))))
    for boundary, position in ((1, exact.positions[0]), (n_layers, exact.positions[-1])):
        mask = position_mask(torch.full((N_PAIRS,), position), tokens.shape[1])
        close(exact.resid[exact.boundaries.index(boundary), exact.positions.index(position)],
              patched((hook_names.resid(n_layers, boundary), edit_hook(full_patch(corrupted.resid[boundary]), mask))))


def _hand_made(effects: torch.Tensor) -> NodeScores:
    """Scores of two pairs the corruption moves opposite ways, each node moving both by its ``effects``
    entry towards the corrupted score (six heads, two MLPs, six residual nodes, in layout order)."""
    clean, corrupted = torch.tensor([1.0, -1.0]), torch.tensor([-1.0, 1.0])
    patched = lambda values: clean + values[..., None] * torch.sign(corrupted - clean)
    return NodeScores(heads=patched(effects.view(2, 3)), mlps=patched(effects[:2]), resid=patched(effects.view(3, 2)),
                      layers=(0, 1), boundaries=(0, 2, 4), positions=(5, 6), clean=clean, corrupted=corrupted)


def test_attribution_agreement_on_hand_made_scores():
    effects = torch.arange(1.0, 7.0)
    exact = _hand_made(effects)
    assert {kind: values.tolist() for kind, values in exact.effects().items()} == {
        "heads": effects.tolist(), "mlps": [1.0, 2.0], "resid": effects.tolist()}
    same = attribution_agreement(_hand_made(effects), exact, k=2)
    assert same == {kind: {"spearman": pytest.approx(1.0), "recall": 1.0} for kind in NODE_KINDS}
    reversed_ = attribution_agreement(_hand_made(effects.flip(0)), exact, k={"heads": 3, "mlps": 1, "resid": 2})
    assert reversed_ == {kind: {"spearman": pytest.approx(-1.0), "recall": 0.0} for kind in NODE_KINDS}
    fewer = exact.restricted(layers=[1], boundaries=[2])
    assert (fewer.layers, fewer.boundaries) == ((1,), (2,))
    assert torch.equal(fewer.heads, exact.heads[[1]]) and torch.equal(fewer.resid, exact.resid[[1]])
    with pytest.raises(ValueError, match="the nodes differ"):
        attribution_agreement(_hand_made(effects), fewer, k=2)


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
