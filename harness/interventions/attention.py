"""Attention-pattern freezing (paper §5.3, §5.7): every layer attends as it did in the clean run.

Overwriting ``blocks.L.attn.hook_pattern`` with the clean run's pattern fixes where each head reads
from; what it reads (the value vectors) still comes from the intervened run, so z = pattern @ v.
"""

from __future__ import annotations

from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.forward import activations
from harness.interventions.edit import edit_hook, full_patch


def attention_patterns(
    bridge, tokens: Int[Tensor, "batch pos"], attention_mask: Tensor | None = None
) -> dict[int, Float[Tensor, "batch heads q k"]]:
    """Every layer's attention pattern from one clean forward pass."""
    cache = activations(bridge, tokens, pattern_hook_names(bridge.cfg.n_layers), attention_mask)
    return patterns_by_layer(cache, bridge.cfg.n_layers)


def pattern_hook_names(n_layers: int) -> list[str]:
    return [hook_names.pattern(layer) for layer in range(n_layers)]


def patterns_by_layer(cache: dict[str, Tensor], n_layers: int) -> dict[int, Float[Tensor, "batch heads q k"]]:
    """``{layer: pattern}`` from a cache of ``activations`` that holds ``pattern_hook_names``."""
    return {layer: cache[hook_names.pattern(layer)] for layer in range(n_layers)}


def freeze_attention_hooks(patterns: dict[int, Float[Tensor, "batch heads q k"]]) -> list[tuple[str, object]]:
    """Forward hooks that replace each layer's pattern with ``patterns[layer]`` (e.g. the clean run's)."""
    return [(hook_names.pattern(layer), edit_hook(full_patch(pattern))) for layer, pattern in patterns.items()]
