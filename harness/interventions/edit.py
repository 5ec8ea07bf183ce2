"""Interventions as TransformerLens hooks (paper §5.2–§5.3).

One core, ``edit_hook``: a hook that replaces an activation by ``edit(activation)`` at the positions a
mask selects (all positions when the mask is ``None``). Every intervention is an ``edit``:

- ``directional_patch``: x' = x + (d·x_source − d·x) d, the paper's directional activation patch
  (x_corr + (d·x_clean − d·x_corr) d when the base run is corrupted and the source is clean).
- ``full_patch``: x' = x_source (ordinary activation patching).
- ``project_out``: x' = x − (d·x) d (directional ablation, §5.3).

Directions are unit-normalised at use time, as in the authors' code. A direction may be one vector
``[d_model]`` or one per batch row ``[batch, 1, d_model]``, so several methods' patches can share a
forward pass by stacking them along the batch.
"""

from __future__ import annotations

from typing import Callable

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

Edit = Callable[[Tensor], Tensor]


def unit(direction: Float[Tensor, "... d_model"]) -> Float[Tensor, "... d_model"]:
    return direction / direction.norm(dim=-1, keepdim=True)


def edit_hook(edit: Edit, mask: Bool[Tensor, "batch pos"] | None = None):
    """A hook function applying ``edit`` where ``mask`` is true (everywhere if ``None``)."""

    def hook(activation: Tensor, hook=None) -> Tensor:
        edited = edit(activation)
        if mask is None:
            return edited
        shaped = mask.to(activation.device).view(*mask.shape, *([1] * (activation.dim() - 2)))
        return torch.where(shaped, edited, activation)

    return hook


def position_mask(positions: Int[Tensor, "batch"], n_positions: int) -> Bool[Tensor, "batch pos"]:
    """A mask selecting one position per row."""
    return torch.nn.functional.one_hot(positions, n_positions).bool()


def directional_patch(direction: Tensor, source: Float[Tensor, "batch pos d_model"]) -> Edit:
    d = unit(direction)

    def edit(x: Tensor) -> Tensor:
        direction = d.to(x)
        return x + ((source.to(x) - x) * direction).sum(-1, keepdim=True) * direction

    return edit


def full_patch(source: Float[Tensor, "batch pos d_model"]) -> Edit:
    return lambda x: source.to(x).expand_as(x)


def project_out(direction: Tensor) -> Edit:
    d = unit(direction)
    return lambda x: x - (x * d.to(x)).sum(-1, keepdim=True) * d.to(x)


def hooks_attached(bridge) -> int:
    """Hooks left on the bridge's hook points (TransformerLens's own capture hooks on other modules
    are its machinery and do not count). Zero between tests: interventions must never leak."""
    from transformer_lens.hook_points import HookPoint

    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               for m in bridge.modules() if isinstance(m, HookPoint))
