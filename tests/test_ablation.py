"""harness.interventions.ablation (paper §5.3) on the tiny models.

- the site maps a layer to the authors' ``resid_post`` (off-by-one) or to the fitted boundary;
- ``real_positions`` drops pads, and with ``skip_first`` each row's first real token;
- a batched ``run_ablations`` gives, per ablation, the logits of a separate run with hand-written hooks
  (directional projection, mean replacement, frozen attention);
- restarted at the first ablated block from the clean residual there, the same logits as a full run, also
  with a shared head (a scaffold's first tokens) run once per ablation;
- freezing attention to the clean patterns without ablating anything reproduces the clean logits;
- the §5.3 metrics: Δ% LD and accuracy.
"""

from __future__ import annotations

import pytest
import torch

from harness.interventions import hook_names
from harness.interventions.ablation import Ablation, ablated_accuracy, ablation_hook_name, ld_drop, real_positions, run_ablations
from harness.interventions.attention import attention_patterns, freeze_attention_hooks
from harness.datasets.tokens import tokenize_padded

TEXTS = ["a fine film , truly moving . Review Sentiment:", "dull , bad . Review Sentiment:"]


def test_ablation_hook_name_sites():
    assert ablation_hook_name(2, 0, "resid_post") == "blocks.0.hook_resid_post"
    assert ablation_hook_name(2, 2, "resid_post") is None  # no block 2: the final direction is unused
    assert ablation_hook_name(2, 1, "resid_pre") == "blocks.1.hook_resid_pre"
    assert ablation_hook_name(2, 2, "resid_pre") == "blocks.1.hook_resid_post"
    with pytest.raises(ValueError, match="not one of"):
        ablation_hook_name(2, 0, "attn_out")
    with pytest.raises(ValueError, match="kind"):
        Ablation("x", "zero", {}, torch.ones(1, 1, dtype=torch.bool))


def test_real_positions():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert real_positions(mask).tolist() == mask.bool().tolist()
    assert real_positions(mask, skip_first=True).tolist() == [[False, False, False, True, True],
                                                             [False, True, True, True, True]]


def _hand_written(vector: torch.Tensor, mask: torch.Tensor, kind: str, layer: int):
    """Layer ``layer``'s ablation written out: project ``vector`` out, or replace by it, where ``mask``."""
    unit = vector / vector.norm()

    def hook(x, hook=None):
        edited = x - (x @ unit)[..., None] * unit if kind == "direction" else vector.expand_as(x)
        return torch.where(mask[..., None], edited, x)

    return hook_names.resid_post(layer), hook


def test_batched_ablations_equal_separate_runs(tiny):
    bridge = tiny.bridge
    d_model = bridge.cfg.d_model
    tokens, attention_mask = tokenize_padded(bridge, TEXTS, prepend_bos=True)
    generator = torch.Generator().manual_seed(0)
    layers = range(tiny.n_layers)
    directions = {layer: torch.randn(d_model, generator=generator) for layer in layers}
    other = {layer: torch.randn(d_model, generator=generator) for layer in layers}
    means = {layer: 3 * torch.randn(d_model, generator=generator) for layer in layers}
    everywhere = real_positions(attention_mask)
    some = everywhere & (torch.arange(tokens.shape[1]) % 2 == 0)
    patterns = attention_patterns(bridge, tokens, attention_mask)
    ablations = [
        Ablation("dir_all", "direction", directions, everywhere),
        Ablation("other_some", "direction", other, some),
        Ablation("mean_some", "mean", means, some),
        Ablation("dir_all_frozen", "direction", directions, everywhere, freeze_attention=True),
    ]
    batched = run_ablations(bridge, tokens, attention_mask, ablations, "resid_post", patterns, chunk_size=1)
    with torch.no_grad():
        clean = bridge(tokens, attention_mask=attention_mask)[:, -1]
    for ablation in ablations:
        hooks = [_hand_written(ablation.vectors[layer], ablation.mask, ablation.kind, layer) for layer in layers]
        if ablation.freeze_attention:
            hooks += freeze_attention_hooks(patterns)
        with torch.no_grad():
            separate = bridge.run_with_hooks(tokens, fwd_hooks=hooks, attention_mask=attention_mask)[:, -1]
        assert (separate - clean).abs().max() > 1e-3, f"{ablation.name} should change the logits"
        torch.testing.assert_close(batched[ablation.name], separate, atol=1e-4, rtol=0)


@pytest.mark.parametrize("site", ["resid_pre", "resid_post"])
def test_restarted_ablations_equal_full_runs(tiny, site):
    bridge = tiny.bridge
    tokens, attention_mask = tokenize_padded(bridge, TEXTS, prepend_bos=True)
    generator = torch.Generator().manual_seed(1)
    groups = [(1,), (0, 1)] + ([(tiny.n_layers,)] if site == "resid_pre" else [])  # the final boundary: resid_pre
    ablations = [Ablation(f"{where}@{layers}", "direction",
                          {layer: torch.randn(bridge.cfg.d_model, generator=generator) for layer in layers},
                          real_positions(attention_mask, skip_first=where == "rest"))
                 for layers in groups for where in ("all", "rest")]
    full = run_ablations(bridge, tokens, attention_mask, ablations, site)
    restarted = run_ablations(bridge, tokens, attention_mask, ablations, site, restart=True)
    for name, logits in full.items():
        torch.testing.assert_close(restarted[name], logits, atol=1e-4, rtol=0)
    frozen = Ablation("f", "direction", {1: torch.ones(bridge.cfg.d_model)}, real_positions(attention_mask),
                      freeze_attention=True)
    with pytest.raises(ValueError, match="restarted"):
        run_ablations(bridge, tokens, attention_mask, [frozen], site, {}, restart=True)


@pytest.mark.parametrize("site", ["resid_pre", "resid_post"])
def test_a_shared_head_run_once_per_ablation_equals_full_runs(tiny, site):
    """``shared_prefix``: unpadded prompts that start alike (a scaffold's head) run the head once per
    ablation, with the ablation acting there too (all positions, or all but the first); the same logits."""
    bridge = tiny.bridge
    texts = ["Review Text: a fine film Review Sentiment:", "Review Text: a dull film Review Sentiment:"]
    tokens, attention_mask = tokenize_padded(bridge, texts, prepend_bos=True)
    assert bool((attention_mask == 1).all())
    head = int((tokens[0] != tokens[1]).nonzero()[0])
    generator = torch.Generator().manual_seed(4)
    ablations = [Ablation(f"{where}@{layers}", "direction",
                          {layer: torch.randn(bridge.cfg.d_model, generator=generator) for layer in layers},
                          real_positions(attention_mask, skip_first=where == "rest"))
                 for layers in [(1,), (0, 1)] for where in ("all", "rest")]
    full = run_ablations(bridge, tokens, attention_mask, ablations, site)
    shared = run_ablations(bridge, tokens, attention_mask, ablations, site, restart=True, shared_prefix=head,
                           group_size=3)
    for name, logits in full.items():
        torch.testing.assert_close(shared[name], logits, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="shared prefix"):
        run_ablations(bridge, tokens, attention_mask, ablations, site, restart=True, shared_prefix=head + 1)


def test_ablations_split_over_forwards_and_read_out_equal_one_stacked_forward(tiny):
    """``group_size`` (at most that many ablations stacked per forward) and ``readout`` (applied to each
    part's logits) change nothing but the cost: the null's 50 random directions ride the batch axis."""
    bridge = tiny.bridge
    tokens, attention_mask = tokenize_padded(bridge, TEXTS, prepend_bos=True)
    generator = torch.Generator().manual_seed(2)
    ablations = [Ablation(f"r{k}", "direction", {0: torch.randn(bridge.cfg.d_model, generator=generator)},
                          real_positions(attention_mask)) for k in range(5)]
    stacked = run_ablations(bridge, tokens, attention_mask, ablations, "resid_pre")
    split = run_ablations(bridge, tokens, attention_mask, ablations, "resid_pre", chunk_size=2, group_size=2,
                          readout=lambda logits: logits[:, :3])
    for name, logits in stacked.items():
        torch.testing.assert_close(split[name], logits[:, :3], atol=1e-4, rtol=0)


def test_freezing_clean_patterns_alone_changes_nothing(tiny):
    bridge = tiny.bridge
    tokens, attention_mask = tokenize_padded(bridge, TEXTS, prepend_bos=True)
    patterns = attention_patterns(bridge, tokens, attention_mask)
    with torch.no_grad():
        clean = bridge(tokens, attention_mask=attention_mask)[:, -1]
        frozen = bridge.run_with_hooks(tokens, fwd_hooks=freeze_attention_hooks(patterns), attention_mask=attention_mask)[:, -1]
    torch.testing.assert_close(frozen, clean, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="clean_patterns"):
        run_ablations(bridge, tokens, attention_mask, [Ablation("f", "direction", {}, real_positions(attention_mask),
                                                               freeze_attention=True)], "resid_post")


def test_ld_drop_and_accuracy():
    orig = torch.tensor([2.0, 4.0, 6.0])
    assert float(ld_drop(orig, orig)) == 0
    assert float(ld_drop(orig, torch.tensor([1.0, 2.0, 3.0]))) == pytest.approx(50)
    assert float(ablated_accuracy(torch.tensor([1.0, -1.0, 0.5, 0.0]))) == pytest.approx(50)
    boot = torch.stack([orig, orig * 0])  # a leading resample axis
    assert ld_drop(torch.stack([orig, orig]), boot).tolist() == pytest.approx([0, 100])
