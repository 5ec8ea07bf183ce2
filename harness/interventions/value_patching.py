"""Resampling attention value vectors with attention frozen (paper §5.7, the summarization motif).

Every layer's attention pattern is frozen to the clean run's (``harness.interventions.attention``), so each head
reads from the same positions as in the clean run; only *what* it reads changes. Within a band of
layers, the value vectors (``blocks.L.attn.hook_v``, all key/value heads) at chosen positions are
replaced by the corrupted run's; optionally the values at other positions are held at their clean
values in every layer (the pre-comma experiment: the commas cannot relay the resampled phrase).
The effect is the % change of the mean logit difference, (LD_intervened − LD_clean)/LD_clean.

- The band (``summary_band``): ``--summary-band``, or the paper's 9-14 of pythia-2.8b's 32 layers
  scaled to the model's depth (``paper_layer_band``); a band outside the model is refused.
- Corrupted values are taken slot by slot (``align_source_positions``): a clean position takes the
  value at the corrupted prompt's position of the same slot. Where a tokenizer splits a word the
  paper's did not (SmolLM2 splits " hates"), the tokens between two located slots are aligned from
  the end, so the word's last token (the one §3 uses for a multi-token placeholder) pairs with the
  other word's last token.
- Blocks before the first intervened layer see exactly the clean run, so every intervened run
  restarts there from the saved clean residual (``harness.interventions.forward.run_from``); freezing attention or
  values in those blocks would be a no-op. Interventions are stacked along the batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.attention import freeze_attention_hooks
from harness.interventions.forward import run_from
from harness.interventions.edit import edit_hook, full_patch
from harness.datasets.prompts import PromptSet

# The paper's band, layers 9-14 of pythia-2.8b's 32 (§5.7), as a fraction of depth.
PAPER_BAND, PAPER_N_LAYERS = (9, 14), 32


def paper_layer_band(n_layers: int) -> tuple[int, int]:
    """The paper's band scaled to ``n_layers`` (inclusive ends): 9-14 of 32 covers depth [9/32, 15/32)."""
    start = round(PAPER_BAND[0] / PAPER_N_LAYERS * n_layers)
    stop = round((PAPER_BAND[1] + 1) / PAPER_N_LAYERS * n_layers)
    return start, max(start, stop - 1)


def parse_layer_band(text: str) -> tuple[int, int]:
    """``"START-END"`` (inclusive, as the paper writes 9-14) to ``(START, END)``."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ValueError(f"a layer band is START-END with integers 0 <= START <= END (e.g. 9-14); got {text!r}")
    return int(match.group(1)), int(match.group(2))


def check_layer_band(band: tuple[int, int], n_layers: int) -> tuple[int, int]:
    if not 0 <= band[0] <= band[1] < n_layers:
        raise ValueError(f"layer band {band[0]}-{band[1]} is outside this model's layers 0-{n_layers - 1}")
    return band


@dataclass(frozen=True)
class SummaryBand:
    """The inclusive layer band of the §5.7 value resampling, and where it comes from."""

    layers: tuple[int, int]
    n_layers: int
    source: str

    def __str__(self) -> str:
        return f"{self.layers[0]}-{self.layers[1]}"


def summary_band(setting: tuple[int, int] | None, n_layers: int) -> SummaryBand:
    """``setting`` (``--summary-band``) or the paper's band scaled to depth; raises ``ValueError`` if
    it lies outside the model's layers."""
    band = check_layer_band(setting or paper_layer_band(n_layers), n_layers)
    source = "--summary-band" if setting else "the paper's 9-14 of 32 layers scaled to depth"
    return SummaryBand(band, n_layers, source)


def n_value_heads(cfg) -> int:
    """Key/value heads per layer (fewer than query heads under grouped-query attention)."""
    return getattr(cfg, "n_key_value_heads", None) or cfg.n_heads


@dataclass(frozen=True)
class RecordedRun:
    """From one forward: attention patterns and value vectors at layers >= ``start``, the residual
    entering each block a run may restart at (``block_inputs``) and the final-position logits."""

    start: int
    patterns: dict[int, Float[Tensor, "batch heads q k"]]
    values: dict[int, Float[Tensor, "batch pos kv_heads d_head"]]
    block_inputs: dict[int, Float[Tensor, "batch pos d_model"]]
    logits: Float[Tensor, "batch d_vocab"]

    def select(self, index: Int[Tensor, "n"]) -> "RecordedRun":
        pick = lambda tensors: {layer: tensor[index] for layer, tensor in tensors.items()}
        return RecordedRun(self.start, pick(self.patterns), pick(self.values), pick(self.block_inputs),
                           self.logits[index])

    def values_at(self, source_position: Int[Tensor, "batch pos"]) -> dict[int, Tensor]:
        """Each layer's values gathered at ``source_position`` (one source position per target position)."""
        return {layer: gather_positions(values, source_position) for layer, values in self.values.items()}


def record_run(bridge, tokens: Int[Tensor, "batch pos"], restarts: Sequence[int] = (0,)) -> RecordedRun:
    """Patterns and values from layer ``min(restarts)`` on, and the residual entering each block of
    ``restarts``, from one forward pass."""
    n_layers = bridge.cfg.n_layers
    start = min(restarts)
    layers = range(start, n_layers)
    names = {hook_names.resid_pre(layer) for layer in restarts} | {
        name for layer in layers for name in (hook_names.pattern(layer), hook_names.attn("v", layer))}
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(tokens.to(bridge.cfg.device), names_filter=lambda name: name in names)
    cpu = lambda name: cache[name].float().cpu()
    return RecordedRun(
        start=start,
        patterns={layer: cpu(hook_names.pattern(layer)) for layer in layers},
        values={layer: cpu(hook_names.attn("v", layer)) for layer in layers},
        block_inputs={layer: cpu(hook_names.resid_pre(layer)) for layer in restarts},
        logits=logits[:, -1].float().cpu(),
    )


def gather_positions(activation: Float[Tensor, "batch pos ..."], position: Int[Tensor, "batch pos"]) -> Tensor:
    """``activation[b, position[b, p]]`` for every row b and position p."""
    index = position.view(*position.shape, *([1] * (activation.dim() - 2))).expand(-1, -1, *activation.shape[2:])
    return activation.gather(1, index.to(activation.device))


def align_source_positions(target: PromptSet, source: PromptSet) -> Int[Tensor, "batch pos"]:
    """For each position of each ``target`` prompt, the position of the same slot in its ``source``
    prompt. The located positions (``PromptSet.positions``, the same names in both) are the anchors;
    positions between two anchors are aligned from the later one, staying after the earlier one;
    positions before the first anchor keep their index."""
    if target.positions.keys() != source.positions.keys() or target.tokens.shape != source.tokens.shape:
        raise ValueError("target and source prompts must have the same located slots and token shape")
    n_rows, n_positions = target.tokens.shape
    aligned = torch.arange(n_positions).repeat(n_rows, 1)
    for row in range(n_rows):
        anchors = sorted({(int(target.positions[name][row]), int(source.positions[name][row]))
                          for name in target.positions})
        targets = [t for t, _ in anchors]
        if len(set(targets)) != len(targets) or [s for _, s in anchors] != sorted(s for _, s in anchors):
            raise ValueError(f"row {row}: the slots are in a different order in the source prompt")
        previous = (-1, -1)
        for anchor in anchors:
            for position in range(previous[0] + 1, anchor[0] + 1):
                aligned[row, position] = max(anchor[1] - (anchor[0] - position), min(previous[1] + 1, anchor[1]))
            previous = anchor
        for position in range(previous[0] + 1, n_positions):
            aligned[row, position] = min(previous[1] + position - previous[0], n_positions - 1)
    return aligned


@dataclass(frozen=True)
class ValueResample:
    """One intervention: values at ``resample`` positions in ``layers`` come from the source (corrupted)
    run; values at ``freeze`` positions keep their clean values in every layer."""

    layers: Sequence[int]
    resample: Bool[Tensor, "batch pos"]
    freeze: Bool[Tensor, "batch pos"] | None = None


def value_resample_hooks(
    clean: RecordedRun, source_values: dict[int, Tensor], interventions: Sequence[ValueResample]
) -> list[tuple[str, object]]:
    """Hooks for ``interventions`` stacked along the batch (rows of intervention i follow those of
    i−1): patterns frozen to ``clean``, values resampled from ``source_values`` or held at clean."""
    n = len(interventions)
    stacked = lambda tensor: tensor.repeat(n, *([1] * (tensor.dim() - 1)))
    hooks = freeze_attention_hooks({layer: stacked(pattern) for layer, pattern in clean.patterns.items()})
    off = torch.zeros_like(interventions[0].resample)
    for layer, clean_values in clean.values.items():
        freeze = torch.cat([off if i.freeze is None else i.freeze for i in interventions])
        resample = torch.cat([i.resample if layer in i.layers else off for i in interventions])
        if freeze.any():
            hooks.append((hook_names.attn("v", layer), edit_hook(full_patch(stacked(clean_values)), freeze)))
        if resample.any():
            hooks.append((hook_names.attn("v", layer), edit_hook(full_patch(stacked(source_values[layer])), resample)))
    return hooks


def resample_values(
    bridge, clean: RecordedRun, source_values: dict[int, Tensor], interventions: Sequence[ValueResample]
) -> Float[Tensor, "intervention batch d_vocab"]:
    """Final-position logits of each intervention, from one forward for all of them, restarted from the
    clean residual at the latest recorded block at or before the first intervened layer."""
    first = min(min(i.layers) for i in interventions)
    restarts = [layer for layer in clean.block_inputs if layer <= first]
    if not restarts or first < clean.start:
        raise ValueError(f"an intervention starts at layer {first}; the clean run was recorded for restarts at "
                         f"{sorted(clean.block_inputs)} with patterns from layer {clean.start}")
    start = max(restarts)
    later = lambda tensors: {layer: tensor for layer, tensor in tensors.items() if layer >= start}
    block_input = clean.block_inputs[start]
    clean = RecordedRun(start, later(clean.patterns), later(clean.values), {start: block_input}, clean.logits)
    n, batch = len(interventions), clean.logits.shape[0]
    hooks = value_resample_hooks(clean, source_values, interventions)
    with torch.no_grad():
        logits = run_from(bridge, block_input.repeat(n, 1, 1), start, hooks)
    return logits.view(n, batch, -1)
