"""Activation patching of a circuit's head outputs, in full or along one direction (paper §5.2, §6.4).

The corrupted prompt is run and, for every head of the circuit, its output z_h @ W_O[h] is
- ``full``: replaced by the clean run's (done on ``hook_z``: the head's z set to the clean z with
  ``harness.interventions.path_patching.set_heads``);
- ``direction``: moved along the unit sentiment direction d only, out' = out + (d·out_clean − d·out) d,
  the authors' circuit variant of directional patching (§5.2, on each head's ``result``).
The edit applies at the positions a mask selects (all if None). Head outputs are computed from
``hook_z`` and the bridge's ``W_O`` (exact on the processed bridge, tested), and the direction-only
correction is added to ``hook_attn_out``; ``set_use_attn_result`` is never touched, because the
session bridge is shared and that switch alone moves its logits by ~1e-5. Later heads are not frozen:
this is ordinary (denoising) activation patching, scored with §5.1's % LD recovered and % logit flip.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.forward import block_inputs, run_from
from harness.interventions.edit import directional_patch, edit_hook
from harness.measures.metrics import sentiment_score
from harness.interventions.path_patching import ComponentCache, Node, output_weights, set_heads


def patch_head_outputs(
    bridge, corrupted: ComponentCache, clean: ComponentCache, heads: list[Node], answer_ids: Int[Tensor, "2 n_answers"],
    mask: Bool[Tensor, "batch pos"] | None = None, directions: dict[int, Float[Tensor, "d_model"]] | None = None,
) -> Float[Tensor, "batch"]:
    """Sentiment scores of the corrupted run with ``heads``' outputs patched from the clean run: in full,
    or only along ``directions[layer]`` (one unit direction per head layer) when given."""
    if not heads or any(node.is_mlp for node in heads):
        raise ValueError(f"a circuit is a non-empty list of attention heads; got {[str(n) for n in heads]}")
    if directions is not None and {n.layer for n in heads} - set(directions):
        raise ValueError(f"no direction for head layers {sorted({n.layer for n in heads} - set(directions))}")
    w_o, hooks = output_weights(bridge), []
    for layer in sorted({node.layer for node in heads}):
        index = [node.head for node in heads if node.layer == layer]
        if directions is None:
            hooks.append((hook_names.attn("z", layer), edit_hook(set_heads(index, clean.z[layer][:, :, index]), mask)))
        else:
            current = {}
            hooks.append((hook_names.attn("z", layer), lambda z, hook=None, current=current: current.update(z=z) or z))
            correction = _direction_correction(current, clean.z[layer], index, w_o[layer], directions[layer])
            hooks.append((hook_names.attn_out(layer), edit_hook(correction, mask)))
    start = min(node.layer for node in heads)
    with torch.no_grad():
        logits = run_from(bridge, block_inputs(corrupted.resid, start), start, hooks)
    return sentiment_score(logits, answer_ids)


def _direction_correction(current: dict, clean_z: Tensor, index: list[int], w_o: Tensor, direction: Tensor):
    """attn_out + Σ_h (directional patch of out_h − out_h): each head's output moved along d only."""
    def edit(attn_out: Tensor) -> Tensor:
        out = torch.einsum("bphd,hdm->bphm", current["z"][:, :, index].float(), w_o[index].to(attn_out))
        out_clean = torch.einsum("bphd,hdm->bphm", clean_z[:, :, index].to(attn_out), w_o[index].to(attn_out))
        return attn_out + (directional_patch(direction, out_clean)(out) - out).sum(-2).to(attn_out)

    return edit
