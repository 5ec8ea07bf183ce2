"""Attribution patching of stage-2 paths (AtP, Nanda 2023; AtP*, Kramár et al. 2024), to choose which
senders the exact path patch of paper §6.4 runs.

Exact stage 2 (``harness.path_patching``) is, per sender and pair, (a) the receiver heads' z recomputed
with the sender's delta in their q/k/v input (one attention layer: cheap) and (b) the clean run with
the receiver heads' z set, from the first receiver layer to the logits (nearly all of the cost). AtP
replaces (b) by its first-order expansion at the clean run:

    score_s ≈ score_clean + Σ_receivers ⟨∂score/∂z_r (clean run), z_r,s − z_r,clean⟩

with every gradient from one backward pass (``receiver_gradients``), while (a) stays exact for every
sender. This is AtP*'s query/key fix (Kramár et al. §3.1: a linearised attention softmax misses
saturation, so the pattern is recomputed) taken to the receivers' whole attention; only the layers
after the receivers, which the receivers' outputs enter additively, are linearised. GradDrop (§3.2,
against a gradient that cancels between a node's paths through later layers) is not applied: the
estimates only rank senders for pruning, with a margin, and the exact patch then scores every kept
sender (``harness.circuit`` keeps ``CircuitSettings.stage2_keep`` senders per input; its docstring gives
the measured agreement with the unpruned run).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness import hook_names
from harness.forward import run_from
from harness.metrics import sentiment_score
from harness.path_patching import (
    ComponentCache, InputKind, Node, final_scores, receiver_heads, receiver_z_by_sender, set_heads, stage2_senders,
)


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
    """AtP's estimate of ``harness.path_patching.path_patch_to_heads``: the same senders and score layout,
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
