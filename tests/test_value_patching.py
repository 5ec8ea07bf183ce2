"""harness.interventions.value_patching (paper §5.7) on the tiny GPT-2 and NeoX models and a tiny grouped-query
Llama (the embedded model's architecture: fewer key/value heads than query heads).

- the band: the paper's 9-14 of 32 scales to the same fraction of depth, ``--summary-band`` replaces
  it; bad text or a band outside the model is refused with a message;
- slot alignment: identical slots map position to position; a word split differently is aligned
  from its last token; mismatched slots are refused;
- with attention frozen to the clean run: no resampled position gives the clean logits; at the band's
  first layer z = A_clean · v' where v' holds the corrupted values at the chosen positions (per
  key/value head, each driving its group of query heads); frozen positions keep their clean values
  in later layers; stacked interventions equal separate runs; restarting later is exact;
- nothing leaks: the tiny models' autouse check finds no hook left.
"""

from __future__ import annotations

import pytest
import torch

from harness.interventions import hook_names
from harness.interventions.forward import run_from
from harness.measures.metrics import ld_percent_change
from harness.datasets.prompts import PromptSet
from harness.interventions.value_patching import (
    SummaryBand, ValueResample, align_source_positions, check_layer_band, gather_positions, n_value_heads,
    paper_layer_band, parse_layer_band, record_run, resample_values, summary_band, value_resample_hooks,
)

PROMPTS = ["I thought this movie was great, I loved it.", "I thought this movie was awful, I hated it.",
           "I thought this movie was fine, I liked it.", "I thought this movie was bad, I disliked it."]


def tokens_of(bridge):
    tokens = bridge.to_tokens(PROMPTS, prepend_bos=True, padding_side="left")
    return tokens[:, -12:]  # equal length without padding


def masks(tokens, *position_lists):
    out = []
    for positions in position_lists:
        mask = torch.zeros(tokens.shape, dtype=torch.bool)
        mask[:, positions] = True
        out.append(mask)
    return out


def test_paper_band_scales_with_depth():
    assert paper_layer_band(32) == (9, 14)
    assert paper_layer_band(30) == (8, 13)
    assert paper_layer_band(12) == (3, 5)
    assert paper_layer_band(2) == (1, 1)


@pytest.mark.parametrize("text, band", [("9-14", (9, 14)), (" 3 - 3 ", (3, 3))])
def test_parse_layer_band(text, band):
    assert parse_layer_band(text) == band


@pytest.mark.parametrize("text", ["9:14", "14-9", "a-b", "9", "-1-3", ""])
def test_bad_layer_band_is_refused(text):
    with pytest.raises(ValueError, match="START-END"):
        parse_layer_band(text)


def test_band_outside_the_model_is_refused():
    assert check_layer_band((0, 29), 30) == (0, 29)
    with pytest.raises(ValueError, match="outside this model's layers 0-29"):
        check_layer_band((25, 30), 30)


def test_summary_band_is_the_setting_or_the_papers_scaled():
    assert summary_band(None, 30) == SummaryBand((8, 13), 30, "the paper's 9-14 of 32 layers scaled to depth")
    assert summary_band((2, 4), 30) == SummaryBand((2, 4), 30, "--summary-band")
    assert str(summary_band((2, 4), 30)) == "2-4"
    with pytest.raises(ValueError, match="outside this model's layers 0-11"):
        summary_band((10, 12), 12)


def test_value_heads_count_key_value_heads(tiny_models, tiny_llama):
    assert n_value_heads(tiny_llama.bridge.cfg) == 2
    assert n_value_heads(tiny_models["gpt2"].bridge.cfg) == tiny_models["gpt2"].bridge.cfg.n_heads == 4


def test_ld_percent_change():
    assert float(ld_percent_change(torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]))) == pytest.approx(-50.0)


def prompt_set(n_positions: int, **slots: list[int]) -> PromptSet:
    rows = len(next(iter(slots.values())))
    return PromptSet(tuple("x" * rows), torch.zeros(rows, n_positions, dtype=torch.long), torch.zeros(rows),
                     {name: torch.tensor(value) for name, value in slots.items()})


def test_alignment_by_slot():
    # row 0: the same slots; row 1: a word between A and B is one token in the target, two in the source;
    # row 2: the reverse. Position 0 precedes every slot; positions after the last slot follow it.
    target = prompt_set(8, A=[1, 1, 1], B=[3, 3, 4])
    source = prompt_set(8, A=[1, 1, 1], B=[3, 4, 3])
    aligned = align_source_positions(target, source)
    assert aligned[0].tolist() == list(range(8))
    assert aligned[1].tolist() == [0, 1, 3, 4, 5, 6, 7, 7]
    assert aligned[2].tolist() == [0, 1, 2, 2, 3, 4, 5, 6]
    activation = torch.arange(3 * 8).view(3, 8, 1).float()
    assert gather_positions(activation, aligned)[1, :, 0].tolist() == [8 + p for p in aligned[1].tolist()]


def test_alignment_refuses_mismatched_slots():
    with pytest.raises(ValueError, match="same located slots"):
        align_source_positions(prompt_set(8, A=[1]), prompt_set(8, B=[1]))
    with pytest.raises(ValueError, match="different order"):
        align_source_positions(prompt_set(8, A=[1], B=[3]), prompt_set(8, A=[3], B=[1]))


def clean_and_corrupted(model, restarts=(0,)):
    tokens = tokens_of(model.bridge)
    run = record_run(model.bridge, tokens, restarts=restarts)
    corrupted = torch.tensor([1, 0, 3, 2])
    return tokens, run, run.select(corrupted).values


def test_nothing_resampled_gives_the_clean_logits(tiny_lm):
    model = tiny_lm
    tokens, clean, source = clean_and_corrupted(model)
    (none,) = masks(tokens, [])
    logits = resample_values(model.bridge, clean, source, [ValueResample(range(model.n_layers), none)])
    with torch.no_grad():
        expected = model.bridge(tokens)[:, -1]
    torch.testing.assert_close(logits[0], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(clean.logits, expected, atol=1e-5, rtol=1e-5)


def capture(bridge, clean, source, interventions, names):
    """Run ``interventions`` (restart 0) and capture activations after every edit."""
    captured = {}
    hooks = value_resample_hooks(clean, source, interventions)
    hooks += [(name, lambda activation, hook, name=name: captured.__setitem__(name, activation.detach().clone()))
              for name in names]
    with torch.no_grad():
        run_from(bridge, clean.block_inputs[0].repeat(len(interventions), 1, 1), 0, hooks)
    return captured


def test_frozen_attention_reads_the_resampled_values(tiny_lm):
    model = tiny_lm
    tokens, clean, source = clean_and_corrupted(model)
    resample, _ = masks(tokens, [3, 7], [])
    layer = model.n_layers - 1
    z_name = hook_names.attn("z", layer)
    captured = capture(model.bridge, clean, source, [ValueResample([layer], resample)], [z_name, hook_names.attn("v", layer)])
    mixed = torch.where(resample[..., None, None], source[layer], clean.values[layer])
    torch.testing.assert_close(captured[hook_names.attn("v", layer)], mixed)
    pattern = clean.patterns[layer]  # [batch, heads, q, k]; each key/value head drives a group of query heads
    group = pattern.shape[1] // mixed.shape[2]
    expected = torch.einsum("bhqk,bkhd->bqhd", pattern, mixed.repeat_interleave(group, dim=2))
    torch.testing.assert_close(captured[z_name], expected, atol=1e-5, rtol=1e-4)


def test_frozen_values_stay_clean_in_every_layer(tiny_lm):
    model = tiny_lm
    tokens, clean, source = clean_and_corrupted(model)
    resample, freeze = masks(tokens, [3], [5, 9])
    names = [hook_names.attn("v", layer) for layer in range(model.n_layers)]
    captured = capture(model.bridge, clean, source, [ValueResample([0], resample, freeze)], names)
    for layer in range(1, model.n_layers):
        torch.testing.assert_close(captured[names[layer]][:, [5, 9]], clean.values[layer][:, [5, 9]])
        assert not torch.allclose(captured[names[layer]][:, 6:], clean.values[layer][:, 6:])  # the edit propagates


def test_stacked_interventions_equal_separate_runs(tiny_lm):
    model = tiny_lm
    tokens, clean, source = clean_and_corrupted(model)
    first, second, freeze = masks(tokens, [2, 3], [8], [5])
    interventions = [ValueResample([0], first), ValueResample(range(model.n_layers), second, freeze)]
    stacked = resample_values(model.bridge, clean, source, interventions)
    for i, intervention in enumerate(interventions):
        alone = resample_values(model.bridge, clean, source, [intervention])[0]
        torch.testing.assert_close(stacked[i], alone, atol=1e-5, rtol=1e-4)


def test_restarting_at_the_band_is_exact(tiny_lm):
    model = tiny_lm
    tokens, clean, source = clean_and_corrupted(model, restarts=(0, 1))
    (resample,) = masks(tokens, [4, 6])
    intervention = [ValueResample([1], resample)]
    from_band = resample_values(model.bridge, clean, source, intervention)
    only_start = record_run(model.bridge, tokens, restarts=(0,))
    torch.testing.assert_close(from_band, resample_values(model.bridge, only_start, source, intervention),
                               atol=1e-4, rtol=1e-4)
    late = record_run(model.bridge, tokens, restarts=(1,))
    with pytest.raises(ValueError, match="starts at layer 0"):
        resample_values(model.bridge, late, source, [ValueResample([0], resample)])


def test_tiny_llama_has_grouped_values(tiny_llama):
    tokens = tokens_of(tiny_llama.bridge)
    run = record_run(tiny_llama.bridge, tokens)
    assert run.values[0].shape[2] == 2 and run.patterns[0].shape[1] == 4  # 2 key/value heads, 4 query heads
