"""Directional and mean ablation of the residual stream at chosen positions of every layer (paper §5.3).

- Directional ablation: at each ablated layer ℓ, at the selected positions, x' = x − (x·d_ℓ) d_ℓ with
  d_ℓ that layer's unit direction (``project_out``). All layers are ablated in the same run.
- Mean ablation: the whole vector at the selected positions is replaced by that layer's mean
  (``full_patch`` of the mean), e.g. the mean comma activation of the clean run.
- Optionally every layer's attention pattern is frozen to the clean run's (``harness.interventions.attention``), so
  an ablation can act only through what is read, not through where attention goes.

The site (``SITES``): the authors fitted d_ℓ at ``blocks.ℓ.hook_resid_pre`` and applied it at
``blocks.ℓ.hook_resid_post`` (an off-by-one, §5.3), which is ``"resid_post"`` here; ``"resid_pre"``
applies it at the boundary it was fitted at (``hook_names.resid``, so ℓ = n_layers is the final
residual). With ``"resid_post"`` a direction fitted at ℓ = n_layers has no block ℓ and is not used.

Several ablations of one kind share a forward pass: they are stacked along the batch, each row with
its own per-layer vector and position mask, exactly as ``harness.interventions.sweep`` stacks patching methods
(at most ``group_size`` per pass: a null of 50 random directions; ``readout`` keeps only what is read of
each run's final logits, e.g. the answers' logit difference, not 50 vocabularies per prompt).
With ``restart``, blocks before a group's first ablated layer run once per chunk (a clean forward
that stops there) and every ablated run restarts from that residual (``harness.interventions.forward.run_from``):
the same logits at the cost of the layers after the ablation (attention is not frozen there).

Metrics (§5.3, uncentred): Δ% LD = (mean LD_orig − mean LD_abl)/mean LD_orig × 100 (positive = the
ablation lowered the logit difference) and accuracy = % of prompts with LD > 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.attention import freeze_attention_hooks
from harness.interventions.forward import activations, first_block, run_from
from harness.interventions.edit import edit_hook, full_patch, project_out
from harness.interventions.prefix_cache import PrefixKV
from harness.runtime.unembedding import contiguous_unembedding
from harness.measures.metrics import ld_percent_change

SITES = ("resid_post", "resid_pre")
KINDS = ("direction", "mean")


def ablation_hook_name(n_layers: int, layer: int, site: str) -> str | None:
    """The hook where layer ``layer``'s vector is applied; ``None`` where ``site`` has no such layer."""
    if site == "resid_post":
        if not 0 <= layer <= n_layers:
            raise ValueError(f"layer {layer} is outside 0..{n_layers}")
        return hook_names.resid_post(layer) if layer < n_layers else None
    if site == "resid_pre":
        return hook_names.resid(n_layers, layer)
    raise ValueError(f"ablation site {site!r} is not one of {', '.join(SITES)}")


def real_positions(attention_mask: Int[Tensor, "n pos"], skip_first: bool = False) -> Bool[Tensor, "n pos"]:
    """Every non-pad position; with ``skip_first``, without each row's first real token (BOS when it
    is prepended: on some models an attention sink with a very large residual norm)."""
    mask = attention_mask.bool().clone()
    if skip_first:
        mask[torch.arange(len(mask)), mask.int().argmax(-1)] = False
    return mask


@dataclass(frozen=True)
class Ablation:
    """One ablation: at every layer in ``vectors``, at the positions ``mask`` selects, project out the
    layer's direction (``kind="direction"``) or replace the residual by the layer's vector (``"mean"``)."""

    name: str
    kind: str
    vectors: dict[int, Float[Tensor, "d_model"]]
    mask: Bool[Tensor, "n pos"]
    freeze_attention: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ablation kind {self.kind!r} is not one of {', '.join(KINDS)}")


def run_ablations(
    bridge,
    tokens: Int[Tensor, "n pos"],
    attention_mask: Int[Tensor, "n pos"],
    ablations: Sequence[Ablation],
    site: str,
    clean_patterns: dict[int, Float[Tensor, "n heads q k"]] | None = None,
    chunk_size: int | None = None,
    restart: bool = False,
    group_size: int | None = None,
    readout: Callable[[Tensor], Tensor] | None = None,
    shared_prefix: int = 0,
) -> dict[str, Float[Tensor, "n d_vocab"]]:
    """Final-position logits of every ablation (or ``readout`` of them, e.g. the answers' logit difference:
    a null of 50 random directions would otherwise keep 50 vocabularies per prompt); ablations of the same
    kind, layers and freezing share one forward pass (in chunks of ``chunk_size`` prompts; at most
    ``group_size`` ablations stacked in one pass). ``clean_patterns`` are needed to freeze. With
    ``restart`` (not with frozen attention), each group's run starts at its first ablated block from the
    clean residual there. ``shared_prefix`` (with ``restart``; unpadded prompts whose first
    ``shared_prefix`` tokens are the same, e.g. a scaffold's head): those positions run once per ablation,
    not once per prompt, and every prompt's run attends to their keys and values (``PrefixKV``)."""
    n, n_layers = len(tokens), bridge.cfg.n_layers
    if shared_prefix and not (restart and bool((attention_mask == 1).all())
                              and torch.equal(tokens[:, :shared_prefix], tokens[:1, :shared_prefix].expand(n, -1))):
        raise ValueError(f"a shared prefix of {shared_prefix} positions needs restart=True and unpadded prompts that "
                         "agree on those tokens")
    groups: dict[tuple, list[Ablation]] = {}
    for ablation in ablations:
        if ablation.freeze_attention and clean_patterns is None:
            raise ValueError(f"ablation {ablation.name!r} freezes attention: pass clean_patterns")
        if ablation.freeze_attention and restart:
            raise ValueError(f"ablation {ablation.name!r} freezes attention, which a restarted run cannot do")
        groups.setdefault((ablation.kind, tuple(ablation.vectors), ablation.freeze_attention), []).append(ablation)
    starts = {key: min(first_block(n_layers, layer) for layer in key[1]) for key in groups}
    batches = [(key, group[i:i + (group_size or len(group))]) for key, group in groups.items()
               for i in range(0, len(group), group_size or len(group))]
    logits: dict[str, list[Tensor]] = {ablation.name: [] for ablation in ablations}
    for start in range(0, n, chunk_size or n):
        rows = slice(start, start + (chunk_size or n))
        mask = attention_mask[rows].to(bridge.cfg.device)
        block_input = _block_inputs(bridge, tokens[rows], mask, set(starts.values())) if restart else {}
        for key, group in batches:
            kind, layers, freeze = key
            hooks = _stacked_hooks(n_layers, kind, layers, group, rows, site, slice(shared_prefix, None))
            if freeze:
                hooks += freeze_attention_hooks(
                    {layer: pattern[rows].repeat(len(group), 1, 1, 1) for layer, pattern in clean_patterns.items()})
            with torch.no_grad():
                if shared_prefix:
                    if any(not bool((a.mask[rows][:, :shared_prefix] == a.mask[rows][:1, :shared_prefix]).all())
                           for a in group):
                        raise ValueError(f"an ablation's positions differ between prompts within the shared prefix "
                                         f"of {shared_prefix}: it cannot run once for all of them")
                    head_hooks = _stacked_hooks(n_layers, kind, layers, group, slice(rows.start, rows.start + 1), site,
                                                slice(0, shared_prefix))
                    head = PrefixKV.of(bridge, tokens[:1].expand(len(group), -1), shared_prefix, head_hooks)
                    chunk = len(mask)
                    out = run_from(bridge, block_input[starts[key]][:, shared_prefix:].repeat(len(group), 1, 1),
                                   starts[key], hooks, prefix=head.rows(torch.arange(len(group)).repeat_interleave(chunk)))
                elif restart:
                    out = run_from(bridge, block_input[starts[key]].repeat(len(group), 1, 1), starts[key], hooks,
                                   attention_mask=mask.repeat(len(group), 1))
                else:
                    out = bridge.run_with_hooks(
                        tokens[rows].repeat(len(group), 1).to(bridge.cfg.device),
                        fwd_hooks=hooks + contiguous_unembedding(bridge),
                        attention_mask=mask.repeat(len(group), 1), logits_to_keep=1,
                    )[:, -1].float().cpu()
            for ablation, part in zip(group, out.chunk(len(group))):
                logits[ablation.name].append(part if readout is None else readout(part))
    return {name: torch.cat(parts) for name, parts in logits.items()}


def _block_inputs(bridge, tokens: Int[Tensor, "n pos"], attention_mask: Tensor, blocks: set[int]
                  ) -> dict[int, Float[Tensor, "n pos d_model"]]:
    """The clean residual entering each of ``blocks``, from one forward that stops after the last of them."""
    names = {block: hook_names.resid_pre(block) for block in blocks}
    cache = activations(bridge, tokens, names.values(), attention_mask, stop_at_layer=max(blocks) + 1)
    return {block: cache[name] for block, name in names.items()}


def _stacked_hooks(n_layers: int, kind: str, layers: tuple[int, ...], group: list[Ablation], rows: slice,
                   site: str, positions: slice = slice(None)) -> list[tuple[str, object]]:
    """One hook per layer applying each stacked ablation's vector to its own rows and positions (of the
    prompts' ``positions``: the run computes those)."""
    mask = torch.cat([ablation.mask[rows][:, positions] for ablation in group])
    n_rows = len(mask) // len(group)
    hooks = []
    for layer in layers:
        name = ablation_hook_name(n_layers, layer, site)
        if name is None:
            continue
        per_row = torch.stack([ablation.vectors[layer] for ablation in group]).float()
        per_row = per_row.repeat_interleave(n_rows, dim=0)[:, None, :]
        edit = project_out(per_row) if kind == "direction" else full_patch(per_row)
        hooks.append((name, edit_hook(edit, mask)))
    return hooks


def ld_drop(ld_orig: Float[Tensor, "*boot n"], ld_ablated: Float[Tensor, "*boot n"]) -> Float[Tensor, "*boot"]:
    """Δ% LD (§5.3): the fall of the mean uncentred logit difference, in % of the original mean."""
    return -ld_percent_change(ld_ablated, ld_orig)


def ablated_accuracy(ld_ablated: Float[Tensor, "*boot n"]) -> Float[Tensor, "*boot"]:
    """% of prompts whose uncentred logit difference stays > 0 (§5.3; 100% before ablation by construction)."""
    return (ld_ablated > 0).float().mean(-1) * 100
