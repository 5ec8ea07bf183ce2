"""Attribution patching (AtP, Nanda 2023; AtP*, Kramár et al. 2024): gradient estimates of patching
effects, two uses.

**Nodes: every head, MLP and residual position.** ``estimate_activation_patching`` estimates activation
patching of every attention head (its ``hook_z``, all positions together), every MLP (``hook_mlp_out``,
all positions) and every residual position (the residual boundary ``hook_names.resid``, one position), in
the noising convention of stage 1 of ``harness.interventions.path_patching`` and of Kramár et al. §2: run the *clean*
prompt with the node's activation taken from the *corrupted* prompt. With a the node's activation,

    score(clean, a ← a_corrupted) ≈ score_clean + ⟨a_corrupted − a_clean, ∂score/∂a (clean run)⟩,

score = the sentiment score (``harness.measures.metrics``) at the final position, each pair its own row (the
pairs are independent rows, so the gradient of the summed score is each pair's own). Every gradient
comes from one clean forward and one backward: each node's hook adds a zero tensor that requires grad,
so its gradient is the total derivative wrt the activation (all later paths) while the activation is
unchanged; the corrupted activations come from one more forward (``component_cache``). A head enters
through its ``hook_z`` slice, so grouped-query attention and Gemma's post-attention norm need nothing
special. ``exact_activation_patching`` is the exact reference in the same layout (``NodeScores``),
batched: per layer, its heads' and MLP's patches stacked along the batch, restarted at that layer from
the clean residual (``harness.interventions.forward.run_from``; earlier blocks are not rerun); per residual boundary,
its positions likewise. ``attribution_agreement`` compares the two (Spearman's ρ, recall@k per kind).
Residual positions are those from the first position where some pair's clean and corrupted inputs
differ: before it the two runs are identical (causal attention), so a patch there changes nothing and is
left out of both. AtP* fixes: neither applies. The query/key fix (§3.1) recomputes the softmax of query
and key nodes, whose patch acts through their own head's attention pattern; the head nodes here are
outputs z, after their softmax (the later softmaxes a node's effect crosses stay linearised, as in
AtP*). GradDrop (§3.2) costs one more backward per layer (30 on SmolLM2) and gives |effect| bounds
against cancellation, not a signed estimate; ``benchmarks/test_attribution_patching_benchmark.py``
measures how well plain AtP ranks the nodes instead (SmolLM2-135M, 4 pairs, against the exact patch:
Spearman's ρ 0.997 for heads, 0.71 for MLPs, 0.86 for residual positions).

**Stage-2 paths**, to choose which senders the exact path patch of paper §6.4 runs. Exact stage 2
(``harness.interventions.path_patching``) is, per sender and pair, (a) the receiver heads' z recomputed with the
sender's delta in their q/k/v input (one attention layer: cheap) and (b) the clean run with the receiver
heads' z set, from the first receiver layer to the logits (nearly all of the cost). AtP replaces (b) by
its first-order expansion at the clean run:

    score_s ≈ score_clean + Σ_receivers ⟨∂score/∂z_r (clean run), z_r,s − z_r,clean⟩

with every gradient from one backward pass (``receiver_gradients``), while (a) stays exact for every
sender. This is AtP*'s query/key fix (Kramár et al. §3.1: a linearised attention softmax misses
saturation, so the pattern is recomputed) taken to the receivers' whole attention; only the layers
after the receivers, which the receivers' outputs enter additively, are linearised. GradDrop (§3.2,
against a gradient that cancels between a node's paths through later layers) is not applied: the
estimates only rank senders for pruning, with a margin, and the exact patch then scores every kept
sender (``harness.experiments.circuit`` keeps ``CircuitSettings.stage2_keep`` senders per input; its docstring gives
the measured agreement with the unpruned run).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

import torch
from jaxtyping import Bool, Float, Int
from scipy.stats import spearmanr
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.forward import block_inputs, run_from
from harness.interventions.edit import edit_hook
from harness.measures.metrics import sentiment_score
from harness.runtime.unembedding import contiguous_unembedding
from harness.interventions.path_patching import (
    ComponentCache, InputKind, Node, final_scores, receiver_heads, receiver_z_by_sender, set_heads, stage2_senders,
)

NodeKind = Literal["heads", "mlps", "resid"]
NODE_KINDS: tuple[NodeKind, ...] = ("heads", "mlps", "resid")


@dataclass(frozen=True)
class NodeScores:
    """The sentiment score of the clean run with one node's activation taken from the corrupted run, per
    node and pair: AtP's estimate or the exact patch, in one layout so that the two compare."""

    heads: Float[Tensor, "layer head pair"]
    mlps: Float[Tensor, "layer pair"]
    resid: Float[Tensor, "boundary position pair"]
    layers: tuple[int, ...]  # heads' and mlps' layer axis
    boundaries: tuple[int, ...]  # resid's boundary axis (0..n_layers, ``hook_names.resid``)
    positions: tuple[int, ...]  # resid's position axis
    clean: Float[Tensor, "pair"]
    corrupted: Float[Tensor, "pair"]

    def effects(self) -> dict[NodeKind, Float[Tensor, "node"]]:
        """Each node's effect, nodes flattened in layout order: the mean over pairs of (patched − clean)
        signed towards the corrupted score, (patched − clean)·sign(corrupted − clean). Positive: the node
        moves the score the way the corruption does. (The plain mean would cancel between positive and
        negative clean prompts, which the corruption moves opposite ways.)"""
        towards = torch.sign(self.corrupted - self.clean)
        return {kind: ((getattr(self, kind) - self.clean) * towards).mean(-1).flatten() for kind in NODE_KINDS}

    def restricted(self, layers: Sequence[int], boundaries: Sequence[int]) -> "NodeScores":
        """The same scores for the heads and MLPs of ``layers`` and the residual nodes of ``boundaries`` only."""
        rows = [self.layers.index(layer) for layer in layers]
        resid_rows = [self.boundaries.index(boundary) for boundary in boundaries]
        return replace(self, heads=self.heads[rows], mlps=self.mlps[rows], resid=self.resid[resid_rows],
                       layers=tuple(layers), boundaries=tuple(boundaries))


def receiver_gradients(
    bridge, clean: ComponentCache, receivers: list[Node], answer_ids: Int[Tensor, "2 n_answers"]
) -> dict[int, Float[Tensor, "batch pos head d_head"]]:
    """Receiver layer → ∂(each pair's sentiment score)/∂(the receiver heads' z), at the clean run: one
    forward from the first receiver layer, one backward (pairs are independent rows, so the gradient of
    the summed score is each pair's own)."""
    heads = receiver_heads(receivers)
    first = min(heads)
    leaves = {layer: clean.z[layer][:, :, layer_heads].clone().requires_grad_(True) for layer, layer_heads in heads.items()}
    hooks = [(hook_names.attn("z", layer), set_heads(layer_heads, leaves[layer])) for layer, layer_heads in heads.items()]
    with torch.enable_grad():
        logits = run_from(bridge, clean.resid[first], first, hooks)
        sentiment_score(logits, answer_ids).sum().backward()
    return {layer: leaf.grad.float() for layer, leaf in leaves.items()}


def estimate_path_to_heads(
    bridge, clean: ComponentCache, corrupted: ComponentCache, receivers: list[Node], kind: InputKind,
    answer_ids: Int[Tensor, "2 n_answers"], heads_only: bool = False,
) -> tuple[list[Node], Float[Tensor, "sender batch"]]:
    """AtP's estimate of ``harness.interventions.path_patching.path_patch_to_heads``: the same senders and score layout,
    step (a) exact, step (b) linearised (module docstring)."""
    senders = stage2_senders(bridge.cfg.n_layers, bridge.cfg.n_heads, receivers, kind, heads_only)
    gradients = receiver_gradients(bridge, clean, receivers, answer_ids)
    heads = receiver_heads(receivers)
    clean_score = final_scores(bridge, clean.resid[-1][:, -1], answer_ids)
    estimates = []
    for _, receiver_z in receiver_z_by_sender(bridge, clean, corrupted, senders, receivers, kind):
        change = sum(torch.einsum("sbphd,bphd->sb", receiver_z[layer] - clean.z[layer][:, :, layer_heads],
                                  gradients[layer])
                     for layer, layer_heads in heads.items())
        estimates.append(clean_score + change)
    return senders, torch.cat(estimates)


def estimate_activation_patching(
    bridge, clean_tokens: Int[Tensor, "pair pos"], corrupted: ComponentCache, answer_ids: Int[Tensor, "2 n_answers"],
    boundaries: Sequence[int] | None = None,
) -> NodeScores:
    """AtP's estimate of patching each head, MLP and residual position (of ``boundaries``, all by default)
    of the clean run with its ``corrupted`` activation: one clean forward with gradients, one backward
    (module docstring)."""
    n_layers = bridge.cfg.n_layers
    names = {"z": [hook_names.attn("z", layer) for layer in range(n_layers)],
             "mlp_out": [hook_names.mlp_out(layer) for layer in range(n_layers)],
             "resid": hook_names.resid_all(n_layers)}
    every = [name for group in names.values() for name in group]
    clean, probes = {}, {}

    def probe(name: str):
        def hook(activation: Tensor, hook=None) -> Tensor:
            clean[name] = activation.detach().float().cpu()
            probes[name] = torch.zeros_like(activation, requires_grad=True)
            return activation + probes[name]  # unchanged, but its gradient is ∂score/∂activation
        return hook

    with torch.enable_grad():
        logits = bridge.run_with_hooks(clean_tokens.to(bridge.cfg.device),
                                       fwd_hooks=[(n, probe(n)) for n in every] + contiguous_unembedding(bridge),
                                       logits_to_keep=1)
        score = sentiment_score(logits[:, -1].float().cpu(), answer_ids)
        gradients = dict(zip(every, torch.autograd.grad(score.sum(), [probes[name] for name in every])))
    stack = lambda values: {group: torch.stack([values[name].float().cpu() for name in group_names])
                            for group, group_names in names.items()}
    clean, gradients = stack(clean), stack(gradients)
    change = {group: getattr(corrupted, group) - clean[group] for group in names}
    boundaries, positions = _resid_nodes(n_layers, boundaries, clean["resid"][0], corrupted.resid[0])
    resid_nodes = lambda resid: resid[list(boundaries)][:, :, list(positions)]
    clean_score = score.detach()
    return NodeScores(
        heads=clean_score + torch.einsum("lbphd,lbphd->lhb", change["z"], gradients["z"]),
        mlps=clean_score + torch.einsum("lbpm,lbpm->lb", change["mlp_out"], gradients["mlp_out"]),
        resid=clean_score + torch.einsum("xbpm,xbpm->xpb", resid_nodes(change["resid"]),
                                         resid_nodes(gradients["resid"])),
        layers=tuple(range(n_layers)), boundaries=boundaries, positions=positions, clean=clean_score,
        corrupted=final_scores(bridge, corrupted.resid[-1][:, -1], answer_ids),
    )


def exact_activation_patching(
    bridge, clean: ComponentCache, corrupted: ComponentCache, answer_ids: Int[Tensor, "2 n_answers"],
    layers: Sequence[int] | None = None, boundaries: Sequence[int] | None = None,
) -> NodeScores:
    """The exact patches ``estimate_activation_patching`` estimates, in its layout, for the heads and MLPs
    of ``layers`` and the residual positions of ``boundaries`` (all by default): per layer, one run of its
    heads' and MLP's patches stacked along the batch (chunk h < n_heads: head h corrupted; chunk n_heads:
    the MLP), restarted at that layer from the clean residual; per boundary, one run of its positions'
    patches stacked likewise."""
    n_layers, n_heads = bridge.cfg.n_layers, bridge.cfg.n_heads
    layers = tuple(range(n_layers) if layers is None else layers)
    # [chunk, pair, pos, head, d_head] and [chunk, pair, pos, d_model]
    heads_chosen = torch.eye(n_heads + 1, n_heads, dtype=torch.bool)[:, None, None, :, None]
    mlp_chosen = (torch.arange(n_heads + 1) == n_heads)[:, None, None, None]
    heads, mlps = [], []
    for layer in layers:
        hooks = [(hook_names.attn("z", layer), _patch_chunks(corrupted.z[layer], heads_chosen)),
                 (hook_names.mlp_out(layer), _patch_chunks(corrupted.mlp_out[layer], mlp_chosen))]
        scores = _chunk_scores(bridge, clean.resid, layer, n_heads + 1, hooks, answer_ids)
        heads.append(scores[:n_heads])
        mlps.append(scores[n_heads])
    boundaries, positions = _resid_nodes(n_layers, boundaries, clean.resid[0], corrupted.resid[0])
    n_positions = clean.resid.shape[2]
    resid_chosen = torch.zeros(len(positions), 1, n_positions, 1, dtype=torch.bool)  # [chunk, pair, pos, d_model]
    resid_chosen[torch.arange(len(positions)), 0, list(positions)] = True
    resid = []
    for boundary in boundaries:
        hooks = [(hook_names.resid(n_layers, boundary), _patch_chunks(corrupted.resid[boundary], resid_chosen))]
        resid.append(_chunk_scores(bridge, clean.resid, boundary, len(positions), hooks, answer_ids))
    return NodeScores(
        heads=torch.stack(heads), mlps=torch.stack(mlps), resid=torch.stack(resid), layers=layers,
        boundaries=boundaries, positions=positions, clean=final_scores(bridge, clean.resid[-1][:, -1], answer_ids),
        corrupted=final_scores(bridge, corrupted.resid[-1][:, -1], answer_ids),
    )


def attribution_agreement(
    estimate: NodeScores, exact: NodeScores, k: int | Mapping[NodeKind, int]
) -> dict[NodeKind, dict[str, float]]:
    """Per node kind, how well AtP ranks the nodes: Spearman's ρ between the exact and the estimated
    signed effects (``NodeScores.effects``), and recall@k, the share of the exact top k by |effect| among
    the estimate's top k (k per kind, or one k for all)."""
    nodes = lambda scores: (scores.layers, scores.boundaries, scores.positions)
    if nodes(estimate) != nodes(exact):
        raise ValueError(f"the nodes differ: (layers, boundaries, positions) {nodes(estimate)} vs {nodes(exact)} "
                         f"(see NodeScores.restricted)")
    estimated, actual = estimate.effects(), exact.effects()
    agreement = {}
    for kind in NODE_KINDS:
        top = min(k[kind] if isinstance(k, Mapping) else k, len(actual[kind]))
        largest = lambda effects: set(effects.abs().argsort(descending=True)[:top].tolist())
        agreement[kind] = {"spearman": float(spearmanr(actual[kind].numpy(), estimated[kind].numpy()).statistic),
                           "recall": len(largest(actual[kind]) & largest(estimated[kind])) / top}
    return agreement


def _resid_nodes(
    n_layers: int, boundaries: Sequence[int] | None, clean_embedded: Float[Tensor, "pair pos d_model"],
    corrupted_embedded: Float[Tensor, "pair pos d_model"],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The residual nodes' boundaries (all by default) and positions: from the first position where some
    pair's clean and corrupted inputs differ (boundary 0) to the last; earlier ones are the same in both runs."""
    differs = (clean_embedded != corrupted_embedded).any(-1).any(0)
    first = int(differs.nonzero()[0]) if differs.any() else len(differs)
    return tuple(range(n_layers + 1) if boundaries is None else boundaries), tuple(range(first, len(differs)))


def _patch_chunks(source: Float[Tensor, "pair ..."], chosen: Bool[Tensor, "chunk 1 ..."]):
    """A hook for a run over stacked copies of the pairs ([chunk × pair] rows, chunk-major): chunk c takes
    the activation from ``source`` (the corrupted run's) where ``chosen[c]`` and keeps its own elsewhere."""
    def edit(activation: Tensor) -> Tensor:
        stacked = activation.unflatten(0, (chosen.shape[0], -1))
        return torch.where(chosen.to(activation.device), source.to(stacked), stacked).flatten(0, 1)
    return edit_hook(edit)


def _chunk_scores(
    bridge, clean_resid: Float[Tensor, "boundary pair pos d_model"], boundary: int, n_chunks: int, hooks: list,
    answer_ids: Int[Tensor, "2 n_answers"],
) -> Float[Tensor, "chunk pair"]:
    """Scores of ``n_chunks`` stacked copies of the clean pairs, restarted at ``boundary`` with ``hooks``."""
    n_pairs = clean_resid.shape[1]
    if n_chunks == 0:
        return torch.empty(0, n_pairs)
    with torch.no_grad():
        logits = run_from(bridge, block_inputs(clean_resid, boundary).repeat(n_chunks, 1, 1), boundary, hooks)
    return sentiment_score(logits, answer_ids).view(n_chunks, n_pairs)
