"""Path patching (Wang et al. 2022, IOI §3), batched over senders: the circuit of paper §6.4.

Definitions. A *sender* is one attention head (a query head: its ``hook_z`` slice times its slice of
``W_O``; on grouped-query models a query head, not a key/value group) or one MLP (``hook_mlp_out``).
Where a block normalises its attention output before adding it to the residual (Gemma's
post-attention norm), a head's write is not z_h W_O[h]: the sender's change of the residual is
norm(a + Δz_h W_O[h]) − norm(a), a the block's clean attention output before the norm (``sender_deltas``).
A path patch runs the *clean* prompt with the sender's output taken from the *corrupted* prompt and
every other head's and MLP's output frozen to its clean value, except along the path to the receiver:

- Stage 1, receiver = the final residual stream at the last position. Everything downstream of the
  sender is frozen to clean, so only the direct path sender → logits counts: the final residual is
  clean + (out_corrupted − out_clean) of the sender, read through ``ln_final`` and the unembedding.
- Stage 2, receivers = chosen heads' query, key or value input, in Wang et al.'s three steps.
  (a) Every non-sender component being frozen, a receiver layer's input is resid_clean +
  (out_corrupted − out_clean) of the sender (all positions); only the chosen input (q, k or v) of the
  receiver layer is computed from it, the other two stay clean, and the receiver heads' outputs z (all
  positions) are recorded. (b) The clean prompt is run with the receiver heads' z set to the recorded
  values and nothing else touched: every later component recomputes freely, as in Wang et al.'s step 3.
  The measured effect is that of the path sender → receiver input → (rest of the model) → logits.
  Receivers in several layers: each sees only senders in earlier layers; all are set in the same run.
  Grouped-query attention: a key/value receiver's input feeds its key/value head, shared by
  ``n_heads / n_key_value_heads`` query heads; only the receiver query heads' z is set in (b) (the
  others sharing the group keep their clean z), so the path runs through the query head.

Effect of a path (both stages): the sentiment score of the patched run (``harness.measures.metrics``), compared
by ``path_effect`` as % of the clean − corrupted logit-difference gap: (LD_patched − LD_clean) /
(LD_clean − LD_corrupted) × 100 with §5.1's centred LDs. −100 means the path alone carries the whole
clean → corrupted change.

Batching: nothing is run once per sender. Stage 1 needs one forward per prompt set (clean, corrupted)
and then only ``ln_final`` and the answer columns of the unembedding for [senders × pairs] rows. Stage 2
stacks the senders along the batch: step (a) restarts at each receiver layer from the cached clean
residual and stops at that layer's ``hook_z`` (no MLP, no later block); step (b) restarts at the first
receiver layer from the clean residual and runs to the logits. ``harness.interventions.naive_path_patching``
is the one-forward-per-sender reference the tests compare against.

``set_heads`` is the suite's one head-output edit (some heads' ``hook_z`` set to given values), shared
by stage 2, the naive reference and the circuit patch of ``harness.interventions.circuit_patching``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.forward import activations, blocks_from, run_from
from harness.measures.metrics import logit_diff_recovered, sentiment_score

InputKind = Literal["q", "k", "v"]
INPUT_KINDS: tuple[InputKind, ...] = ("q", "k", "v")
SENDER_CHUNK_ROWS = 2048  # rows of [sender × pair] per stage-2 forward (bounds memory)


@dataclass(frozen=True, order=True)
class Node:
    """A component: ``Node(layer, head)`` for an attention (query) head, ``Node(layer)`` for the MLP."""

    layer: int
    head: int | None = None

    @property
    def is_mlp(self) -> bool:
        return self.head is None

    def __str__(self) -> str:
        return f"MLP{self.layer}" if self.is_mlp else f"{self.layer}.{self.head}"


def all_senders(n_layers: int, n_heads: int, before_layer: int | None = None) -> list[Node]:
    """Every head, then every MLP, of the layers before ``before_layer`` (all layers if None)."""
    layers = range(n_layers if before_layer is None else before_layer)
    return [Node(layer, head) for layer in layers for head in range(n_heads)] + [Node(layer) for layer in layers]


@dataclass
class ComponentCache:
    """One run's component outputs: residual boundaries, per-head q/k/v/z (pre-rotary q/k; k and v
    with key/value heads), MLP outputs."""

    resid: Float[Tensor, "boundary batch pos d_model"]
    q: Float[Tensor, "layer batch pos head d_head"]
    k: Float[Tensor, "layer batch pos kv_head d_head"]
    v: Float[Tensor, "layer batch pos kv_head d_head"]
    z: Float[Tensor, "layer batch pos head d_head"]
    mlp_out: Float[Tensor, "layer batch pos d_model"]
    attn_before_norm: Float[Tensor, "layer batch pos d_model"] | None = None  # models with a post-attention norm

    def rows(self, index: Int[Tensor, "n"]) -> "ComponentCache":
        """The same run restricted to the prompts ``index``."""
        before_norm = None if self.attn_before_norm is None else self.attn_before_norm[:, index]
        return ComponentCache(resid=self.resid[:, index], q=self.q[:, index], k=self.k[:, index],
                              v=self.v[:, index], z=self.z[:, index], mlp_out=self.mlp_out[:, index],
                              attn_before_norm=before_norm)


def component_cache(bridge, tokens: Int[Tensor, "batch pos"]) -> ComponentCache:
    """Everything path patching needs from one run, from one forward pass."""
    n_layers = bridge.cfg.n_layers
    resid_names = hook_names.resid_all(n_layers)
    per_layer = {kind: [hook_names.attn(kind, layer) for layer in range(n_layers)] for kind in "qkvz"}
    per_layer["mlp_out"] = [hook_names.mlp_out(layer) for layer in range(n_layers)]
    if attention_post_norm(bridge, 0) is not None:
        per_layer["attn_before_norm"] = [hook_names.attn_before_post_norm(layer) for layer in range(n_layers)]
    cache = activations(bridge, tokens, set(resid_names).union(*per_layer.values()))
    stack = lambda names: torch.stack([cache[name] for name in names])
    return ComponentCache(resid=stack(resid_names), **{kind: stack(names) for kind, names in per_layer.items()})


def attention_post_norm(bridge, layer: int):
    """The norm block ``layer`` applies to its attention output before the residual (Gemma's
    ``post_attention_layernorm``, the bridge's ``ln1_post``), or None where the heads' writes add up."""
    return getattr(bridge.blocks[layer], "ln1_post", None)


def output_weights(bridge) -> Float[Tensor, "layer head d_head d_model"]:
    """The processed bridge's W_O (its property stacks every layer on each access: fetch it once)."""
    return bridge.W_O.detach().float().cpu()


def head_outputs(bridge, z: Float[Tensor, "... head d_head"], layer: int) -> Float[Tensor, "... head d_model"]:
    """Each head's write into the residual stream, z_h @ W_O[h] (biases are the same in every run)."""
    return torch.einsum("...hd,hdm->...hm", z, output_weights(bridge)[layer])


def sender_deltas(
    bridge, clean: ComponentCache, corrupted: ComponentCache, senders: list[Node], position: int | slice = slice(None)
) -> Float[Tensor, "sender batch ... d_model"]:
    """The change of the residual when only the sender takes its corrupted output, at ``position`` (an
    index keeps no position axis): out_corrupted − out_clean, through the post-attention norm if any."""
    deltas, w_o = [], output_weights(bridge)
    for node in senders:
        if node.is_mlp:
            deltas.append(corrupted.mlp_out[node.layer][:, position] - clean.mlp_out[node.layer][:, position])
            continue
        z_delta = corrupted.z[node.layer][:, position, node.head] - clean.z[node.layer][:, position, node.head]
        write = z_delta @ w_o[node.layer, node.head]
        norm = attention_post_norm(bridge, node.layer)
        if norm is not None:
            before = clean.attn_before_norm[node.layer][:, position]
            device = bridge.cfg.device
            with torch.no_grad():
                write = (norm((before + write).to(device)) - norm(before.to(device))).float().cpu()
        deltas.append(write)
    return torch.stack(deltas)


def final_scores(
    bridge, final_resid: Float[Tensor, "rows d_model"], answer_ids: Int[Tensor, "2 n_answers"]
) -> Float[Tensor, "rows"]:
    """Sentiment score (§5.1) read from final-position residuals: ``ln_final``, then the unembedding's
    answer columns (the full vocabulary is never materialised)."""
    with torch.no_grad():
        normalized = bridge.ln_final(final_resid[:, None].to(bridge.cfg.device, bridge.cfg.dtype))[:, 0].float().cpu()
    w_u = bridge.W_U.detach().float().cpu()
    b_u = bridge.b_U.detach().float().cpu() if getattr(bridge, "b_U", None) is not None else torch.zeros(w_u.shape[1])
    columns = lambda ids: normalized @ w_u[:, ids] + b_u[ids]
    return (columns(answer_ids[0]) - columns(answer_ids[1])).mean(-1)


def path_patch_to_logits(
    bridge, clean: ComponentCache, corrupted: ComponentCache, answer_ids: Int[Tensor, "2 n_answers"],
    senders: list[Node] | None = None,
) -> tuple[list[Node], Float[Tensor, "sender batch"]]:
    """Stage 1: the sentiment score of every sender's direct path to the final residual (last position)."""
    senders = senders or all_senders(bridge.cfg.n_layers, bridge.cfg.n_heads)
    deltas = sender_deltas(bridge, clean, corrupted, senders, position=-1)  # [sender, batch, d_model]
    patched = clean.resid[-1][:, -1] + deltas
    scores = final_scores(bridge, patched.flatten(0, 1), answer_ids)
    return senders, scores.view(len(senders), -1)


class _StopForward(Exception):
    """Raised by a hook once the activation a truncated run needs has been captured."""


def receiver_outputs(
    bridge, block_input: Float[Tensor, "batch pos d_model"], layer: int, fwd_hooks: list,
) -> Float[Tensor, "batch pos head d_head"]:
    """``hook_z`` of block ``layer`` when the run restarts there from ``block_input``; the rest of the
    model (the MLP, later blocks) is not run."""
    captured = {}

    def capture_and_stop(z: Tensor, hook=None) -> Tensor:
        captured["z"] = z.detach().float().cpu()
        raise _StopForward

    with blocks_from(bridge, layer):
        try:
            bridge.run_with_hooks(
                block_input.to(bridge.cfg.device, bridge.cfg.dtype), start_at_layer=layer,
                fwd_hooks=[*fwd_hooks, (hook_names.attn("z", layer), capture_and_stop)],
            )
        except _StopForward:
            pass
    return captured["z"]


def stage2_senders(
    n_layers: int, n_heads: int, receivers: list[Node], kind: InputKind, heads_only: bool = False
) -> list[Node]:
    """Stage 2's senders: every head (and MLP, unless ``heads_only``) in the layers before the last
    receiver layer; the receivers and ``kind`` are validated."""
    if kind not in INPUT_KINDS:
        raise ValueError(f"receiver input kind must be one of {INPUT_KINDS}; got {kind!r}")
    if not receivers or any(node.is_mlp for node in receivers):
        raise ValueError(f"receivers must be attention heads; got {[str(n) for n in receivers]}")
    if max(n.layer for n in receivers) == 0:
        raise ValueError(f"receivers in layer 0 have no senders; got {[str(n) for n in receivers]}")
    senders = all_senders(n_layers, n_heads, before_layer=max(n.layer for n in receivers))
    return [node for node in senders if not (heads_only and node.is_mlp)]


def receiver_heads(receivers: list[Node]) -> dict[int, list[int]]:
    """Receiver layer → its receiver heads, layers ascending."""
    return {layer: [node.head for node in receivers if node.layer == layer] for layer in sorted({n.layer for n in receivers})}


def receiver_z_by_sender(
    bridge, clean: ComponentCache, corrupted: ComponentCache, senders: list[Node], receivers: list[Node],
    kind: InputKind,
) -> Iterator[tuple[list[Node], dict[int, Float[Tensor, "sender batch pos head d_head"]]]]:
    """Step (a) for ``senders`` in chunks: (chunk, receiver layer → the receiver heads' z per sender)."""
    n_pairs = clean.resid.shape[1]
    chunk = max(1, SENDER_CHUNK_ROWS // n_pairs)
    for start in range(0, len(senders), chunk):
        rows = senders[start:start + chunk]
        deltas = sender_deltas(bridge, clean, corrupted, rows)  # [s, batch, pos, d_model]
        yield rows, {layer: _receiver_z(bridge, clean, deltas, rows, layer, kind)[..., layer_heads, :]
                     for layer, layer_heads in receiver_heads(receivers).items()}


def path_patch_to_heads(
    bridge, clean: ComponentCache, corrupted: ComponentCache, receivers: list[Node], kind: InputKind,
    answer_ids: Int[Tensor, "2 n_answers"], heads_only: bool = False, senders: list[Node] | None = None,
) -> tuple[list[Node], Float[Tensor, "sender batch"]]:
    """Stage 2: the sentiment score of every path sender → receivers' ``kind`` input → logits, for the
    senders in layers before the last receiver layer (attention heads only with ``heads_only``), or for
    the given ``senders`` only (e.g. those ``harness.interventions.attribution_patching`` ranks high)."""
    every = stage2_senders(bridge.cfg.n_layers, bridge.cfg.n_heads, receivers, kind, heads_only)
    senders = every if senders is None else senders
    if not set(senders) <= set(every):
        raise ValueError(f"senders {[str(n) for n in senders if n not in set(every)]} are not stage-2 senders of "
                         f"receivers {[str(n) for n in receivers]}")
    n_pairs = clean.resid.shape[1]
    heads = receiver_heads(receivers)
    first = min(heads)
    scores = []
    for rows, receiver_z in receiver_z_by_sender(bridge, clean, corrupted, senders, receivers, kind):
        hooks = [(hook_names.attn("z", layer), set_heads(layer_heads, receiver_z[layer].flatten(0, 1)))
                 for layer, layer_heads in heads.items()]
        block_input = clean.resid[first].repeat(len(rows), 1, 1)
        with torch.no_grad():
            logits = run_from(bridge, block_input, first, hooks)
        scores.append(sentiment_score(logits, answer_ids).view(len(rows), n_pairs))
    return senders, torch.cat(scores) if scores else torch.empty(0, n_pairs)


def _receiver_z(
    bridge, clean: ComponentCache, deltas: Float[Tensor, "sender batch pos d_model"], senders: list[Node],
    layer: int, kind: InputKind,
) -> Float[Tensor, "sender batch pos head d_head"]:
    """Step (a): layer ``layer``'s z with its ``kind`` input computed from resid_clean + each sender's
    delta (senders at or after ``layer`` contribute nothing) and its other inputs clean."""
    upstream = torch.tensor([node.layer < layer for node in senders], dtype=deltas.dtype)
    block_input = (clean.resid[layer] + deltas * upstream[:, None, None, None]).flatten(0, 1)
    hooks = [(hook_names.attn(other, layer), _replace_with(getattr(clean, other)[layer], len(senders)))
             for other in INPUT_KINDS if other != kind]
    z = receiver_outputs(bridge, block_input, layer, hooks)
    return z.view(len(senders), -1, *z.shape[1:])


def set_heads(heads: list[int], value: Float[Tensor, "batch pos n_heads d_head"]):
    """The one head-output edit: ``hook_z`` with the listed heads' z set to ``value`` (its head axis
    follows ``heads``), the other heads untouched. Usable as an edit (``edit_hook``) or as a hook."""
    def edit(z: Tensor, hook=None) -> Tensor:
        edited = z.clone()
        edited[:, :, heads] = value.to(z)
        return edited
    return edit


def _replace_with(value: Float[Tensor, "batch pos head d_head"], repeats: int):
    """A hook setting an activation to ``value`` for each of ``repeats`` stacked copies of the batch."""
    stacked = value.repeat(repeats, 1, 1, 1)
    return lambda activation, hook=None: stacked.to(activation)


def path_effect(
    patched: Float[Tensor, "*senders batch"], clean: Float[Tensor, "batch"], corrupted: Float[Tensor, "batch"],
    labels: Int[Tensor, "batch"],
) -> Float[Tensor, "*senders"]:
    """A path's effect as % of the clean − corrupted LD gap: (LD_patched − LD_clean)/(LD_clean − LD_corrupted)
    × 100, with §5.1's centred LDs (−100: the path alone carries the whole clean → corrupted change)."""
    return logit_diff_recovered(patched, clean, corrupted, labels) - 100
