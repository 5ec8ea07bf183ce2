"""Sampling continuations with interventions active during generation (paper §5.5, activation addition).

``sample_continuations`` runs ``TransformerBridge.generate`` on one prompt repeated along the batch
(one call for every setting: the steering grid's coefficients are rows of one batch), with forward hooks
attached for the whole generation, under a fixed seed. ``steering_hook`` adds ``coef × unit(d)`` to
the residual stream at every position, the paper's activation addition.

The key/value-cache bug and its fix. With transformer_lens 4.3 and transformers 5.24, cached
generation returns wrong tokens on the GPT-2 and Llama bridges: transformers' decoder layers hand
the cache to attention as ``cache=...``, while the bridge's attention (``AttentionBridge.
_update_kv_cache``) only looks for ``past_key_values`` or ``layer_past``. The cache is never
written, so every decoding step attends to its own token alone and ignores the prompt (on SmolLM2
the greedy continuation of the steering prompt degenerates to ``good-----------``).
``kv_cache_passed_through`` is the fix: while generating, a forward pre-hook on every attention
bridge also passes the cache under the name the bridge reads. Each decoding step then runs the new
token against the cached keys and values, so steered and unsteered generation equal generation
without the cache token for token (``tests/test_generation.py``). A hook at every position is
exact under caching: the cached keys and values were computed with the hook active at their
positions, and the new token's residual gets the hook on its own step.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions.edit import edit_hook, unit


@contextmanager
def kv_cache_passed_through(bridge) -> Iterator[None]:
    """Give each attention bridge the key/value cache under ``past_key_values`` when transformers
    passed it as ``cache`` (the TransformerLens 4.3 / transformers 5 mismatch described above)."""
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    def pass_cache(module, args, kwargs):
        if kwargs.get("cache") is not None and kwargs.get("past_key_values") is None and kwargs.get("layer_past") is None:
            return args, {**kwargs, "past_key_values": kwargs["cache"]}
        return None

    handles = [module.register_forward_pre_hook(pass_cache, with_kwargs=True)
               for module in bridge.modules() if isinstance(module, AttentionBridge)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def steering_hook(direction: Float[Tensor, "d_model"], coefficient: float | Float[Tensor, "batch"]):
    """Activation addition: x' = x + coefficient · unit(direction), at every position (§5.5). A tensor
    of coefficients gives each row of the batch its own (several coefficients in one generation)."""
    coefficient = torch.as_tensor(coefficient, dtype=torch.float32)
    addition = coefficient.reshape(-1, 1, 1) * unit(direction.float()) if coefficient.ndim else coefficient * unit(direction.float())
    return edit_hook(lambda x: x + addition.to(x))


def sample_continuations(
    bridge,
    prompt: Int[Tensor, "pos"],
    n_samples: int,
    max_new_tokens: int,
    *,
    fwd_hooks: Sequence = (),
    seed: int = 0,
    top_k: int | None = None,
    temperature: float = 1.0,
    do_sample: bool = True,
    use_kv_cache: bool = True,
) -> Int[Tensor, "n_samples new"]:
    """``n_samples`` continuations of ``prompt`` (token ids, BOS included if wanted) in one batched
    ``generate`` call, with ``fwd_hooks`` active at every step. Sampling draws from a private copy of
    the global RNG seeded with ``seed``, so the result depends only on the arguments. Rows that emit
    EOS early are padded with EOS by ``generate`` (the paper's TransformerLens default)."""
    tokens = prompt.reshape(1, -1).expand(n_samples, -1).to(bridge.cfg.device)
    devices = [torch.device(bridge.cfg.device)] if torch.device(bridge.cfg.device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices), bridge.hooks(fwd_hooks=list(fwd_hooks)), kv_cache_passed_through(bridge):
        torch.manual_seed(seed)
        output = bridge.generate(
            tokens, max_new_tokens=max_new_tokens, do_sample=do_sample, top_k=top_k, temperature=temperature,
            use_past_kv_cache=use_kv_cache, stop_at_eos=True, verbose=False, return_type="tokens",
        )
    return output[:, tokens.shape[1]:].cpu()
