"""TransformerLens hook names, in one place (the paper's interventions, §3 and §5).

Every intervention and cache in the suite names its hook through these helpers, which defer to
TransformerLens's own ``utils.get_act_name``; the bridge (``TransformerBridge`` in compatibility mode)
exposes the same ``blocks.L.…`` names as the ``HookedTransformer`` the authors used.

Residual *boundaries* are numbered 0..n_layers: boundary L < n_layers is ``blocks.L.hook_resid_pre``
and boundary n_layers is the last block's ``hook_resid_post`` (the input of the final LayerNorm).
"""

from __future__ import annotations

from transformer_lens.utilities import get_act_name


def resid(n_layers: int, layer: int) -> str:
    """The hook at residual boundary ``layer`` (0..n_layers)."""
    if not 0 <= layer <= n_layers:
        raise ValueError(f"layer {layer} is outside the residual boundaries 0..{n_layers}")
    return get_act_name("resid_pre", layer) if layer < n_layers else get_act_name("resid_post", n_layers - 1)


def resid_all(n_layers: int) -> list[str]:
    """The hooks of every residual boundary 0..n_layers, in order."""
    return [resid(n_layers, layer) for layer in range(n_layers + 1)]


def resid_pre(layer: int) -> str:
    return get_act_name("resid_pre", layer)


def resid_post(layer: int) -> str:
    return get_act_name("resid_post", layer)


def pattern(layer: int) -> str:
    """``blocks.L.attn.hook_pattern``: attention probabilities [batch, head, query, key]."""
    return get_act_name("pattern", layer)


def attn(kind: str, layer: int) -> str:
    """``blocks.L.attn.hook_{q,k,v,z}``: per-head query, key, value or mixed value [batch, pos, head, d_head];
    ``result``: each head's output [batch, pos, head, d_model] (only with ``use_attn_result``)."""
    if kind not in ("q", "k", "v", "z", "result"):
        raise ValueError(f"unknown attention activation {kind!r}; accepted: q, k, v, z, result")
    return get_act_name(kind, layer)


def attn_out(layer: int) -> str:
    return get_act_name("attn_out", layer)


def attn_before_post_norm(layer: int) -> str:
    """``blocks.L.attn.hook_out``: the attention output (sum of z_h W_O[h] and b_O) before a post-attention
    norm (Gemma's ``post_attention_layernorm``); on other models the same as ``hook_attn_out``."""
    return f"blocks.{layer}.attn.hook_out"


def mlp_out(layer: int) -> str:
    return get_act_name("mlp_out", layer)
