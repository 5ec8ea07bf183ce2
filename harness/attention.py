"""Attention-pattern freezing (paper §5.3, §5.7): every layer attends as it did in the clean run.

Overwriting ``blocks.L.attn.hook_pattern`` with the clean run's pattern fixes where each head reads
from; what it reads (the value vectors) still comes from the intervened run, so z = pattern @ v.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import edit_hook, full_patch


def pattern_hook_name(layer: int) -> str:
    return f"blocks.{layer}.attn.hook_pattern"


def attention_patterns(
    bridge, tokens: Int[Tensor, "batch pos"], attention_mask: Tensor | None = None
) -> dict[int, Float[Tensor, "batch heads q k"]]:
    """Every layer's attention pattern from one clean forward pass."""
    names = {pattern_hook_name(layer): layer for layer in range(bridge.cfg.n_layers)}
    with torch.no_grad():
        _, cache = bridge.run_with_cache(tokens.to(bridge.cfg.device), names_filter=lambda name: name in names,
                                         attention_mask=attention_mask)
    return {layer: cache[name].cpu() for name, layer in names.items()}


def freeze_attention_hooks(patterns: dict[int, Float[Tensor, "batch heads q k"]]) -> list[tuple[str, object]]:
    """Forward hooks that replace each layer's pattern with ``patterns[layer]`` (e.g. the clean run's)."""
    return [(pattern_hook_name(layer), edit_hook(full_patch(pattern))) for layer, pattern in patterns.items()]
