"""Reference path patching, one full forward pass per sender (Wang et al. 2022's three steps, literally).

Used only by ``tests/test_path_patching.py`` and the benchmark, to check ``harness.interventions.path_patching``
(batched) against a direct transcription of the definition in its docstring. Freezing is done with
hooks on the full model run from the tokens: every head's ``hook_z`` and every ``hook_mlp_out`` is
overwritten with its clean value, except the sender's (corrupted); stage 2 step (a) records the
receivers' z before it is frozen, step (b) is a clean run with only the receivers' z set.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.measures.metrics import sentiment_score
from harness.runtime.unembedding import contiguous_unembedding
from harness.interventions.path_patching import INPUT_KINDS, ComponentCache, InputKind, Node, all_senders, set_heads


def _frozen_hooks(clean: ComponentCache, corrupted: ComponentCache, sender: Node) -> list:
    """Hooks freezing every head and MLP to clean, the sender to corrupted."""
    hooks = []
    for layer in range(clean.z.shape[0]):
        def set_z(z: Tensor, hook=None, layer=layer) -> Tensor:
            frozen = clean.z[layer].clone().to(z)
            if not sender.is_mlp and sender.layer == layer:
                frozen[:, :, sender.head] = corrupted.z[layer][:, :, sender.head].to(z)
            return frozen

        source = corrupted if sender.is_mlp and sender.layer == layer else clean
        hooks.append((hook_names.attn("z", layer), set_z))
        hooks.append((hook_names.mlp_out(layer), lambda x, hook=None, value=source.mlp_out[layer]: value.to(x)))
    return hooks


def _score(bridge, tokens: Tensor, hooks: list, answer_ids: Tensor) -> Tensor:
    with torch.no_grad():
        logits = bridge.run_with_hooks(tokens.to(bridge.cfg.device), fwd_hooks=hooks + contiguous_unembedding(bridge),
                                       logits_to_keep=1)
    return sentiment_score(logits[:, -1].float().cpu(), answer_ids)


def naive_path_patch_to_logits(
    bridge, tokens: Int[Tensor, "batch pos"], clean: ComponentCache, corrupted: ComponentCache,
    answer_ids: Int[Tensor, "2 n_answers"], senders: list[Node] | None = None,
) -> tuple[list[Node], Float[Tensor, "sender batch"]]:
    """Stage 1 by one forward per sender: clean run, sender corrupted, everything else frozen clean."""
    senders = senders or all_senders(bridge.cfg.n_layers, bridge.cfg.n_heads)
    scores = [_score(bridge, tokens, _frozen_hooks(clean, corrupted, sender), answer_ids) for sender in senders]
    return senders, torch.stack(scores)


def naive_path_patch_to_heads(
    bridge, tokens: Int[Tensor, "batch pos"], clean: ComponentCache, corrupted: ComponentCache,
    receivers: list[Node], kind: InputKind, answer_ids: Int[Tensor, "2 n_answers"],
) -> tuple[list[Node], Float[Tensor, "sender batch"]]:
    """Stage 2 by two forwards per sender: (a) everything but the sender frozen, the receiver layers'
    other two inputs clean, record the receivers' z as computed; (b) clean run with the receivers' z set
    to the recorded values, nothing else touched."""
    senders = all_senders(bridge.cfg.n_layers, bridge.cfg.n_heads, before_layer=max(n.layer for n in receivers))
    layers = sorted({node.layer for node in receivers})
    heads = {layer: [node.head for node in receivers if node.layer == layer] for layer in layers}
    scores = []
    for sender in senders:
        recorded = {}

        def record(z: Tensor, hook=None, layer=None) -> Tensor:
            recorded[layer] = z.clone()
            return z

        step_a = []  # the receivers' z is recorded as computed, before every head is frozen
        for layer in layers:
            step_a += [(hook_names.attn(other, layer), lambda x, hook=None, value=getattr(clean, other)[layer]: value.to(x))
                       for other in INPUT_KINDS if other != kind]
            step_a.append((hook_names.attn("z", layer), lambda z, hook=None, layer=layer: record(z, layer=layer)))
        step_a += _frozen_hooks(clean, corrupted, sender)
        with torch.no_grad():
            bridge.run_with_hooks(tokens.to(bridge.cfg.device), fwd_hooks=step_a, logits_to_keep=1)
        step_b = [(hook_names.attn("z", layer), set_heads(heads[layer], recorded[layer][:, :, heads[layer]]))
                  for layer in layers]
        scores.append(_score(bridge, tokens, step_b, answer_ids))
    return senders, torch.stack(scores)
