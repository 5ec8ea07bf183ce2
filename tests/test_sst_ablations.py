"""harness.experiments.sst_ablations (paper §2.3, §5.3, §6.1 A1–A5): the zero-shot set and the nine ablations.

- the zero-shot set classifies only comma-holding prompts of at most 64 tokens, keeps the paper's
  filters when each class keeps at least 10 prompts, and otherwise falls back to correctness only,
  saying so in its counts (the fallback triggered on purpose); the shipped dev split's
  model-independent counts;
- every ablation of ``ABLATIONS`` equals a run with hand-written hooks (positions, per-layer
  directions, the comma mean of the site's boundary, frozen attention), at both sites, on the tiny
  models; the clean scores equal a plain forward; the first-position diagnostic is hand-checked;
- ``SSTAblations``: Δ% LD and accuracy, overall and per class.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.interventions import hook_names
from harness.interventions.attention import attention_patterns, freeze_attention_hooks
from harness.interventions.forward import residual_stream
from harness.measures.metrics import sentiment_score
from harness.datasets.sst import SSTSplit, load_sst
from harness.experiments.sst_ablations import (
    ABLATIONS, SSTAblations, ablation_directions, ablation_positions, build_zero_shot_set, sst_ablation_scores,
)
from harness.datasets.sst_prompts import ZERO_SHOT, comma_ids, scaffold_prompts
from harness.verdicts.declared import declared

PROTOCOL = {key: declared("A1").protocol[key] for key in ("max_prompt_tokens", "top_k", "max_per_class",
                                                         "min_per_class")}  # A1-A5's
MIN_PER_CLASS = PROTOCOL["min_per_class"]

N = 12  # comma-holding prompts per class
LONG = "bad , " * 40 + "film ."  # a comma, but over 64 tokens
SPLIT = SSTSplit("dev", Path("stsa.binary.dev"), (
    *(f"good film , take {i} ." for i in range(N)), *(f"bad film , take {i} ." for i in range(N)),
    "good film .", "bad film .", LONG,
), (*[1] * N, *[0] * N, 1, 0, 0))
WRONG = {"good film , take 0 .", "bad film , take 0 ."}


def fake_classifier(top: set[str]):
    """Right except on ``WRONG``; both answers ranked 0 for sentences in ``top``, else 50."""
    label = dict(zip(SPLIT.sentences, SPLIT.labels))
    asked = []

    def classify(scaffold, sentences):
        asked.append(list(sentences))
        signs = torch.tensor([(1.0 if label[s] else -1.0) * (-1 if s in WRONG else 1) for s in sentences])
        ranks = torch.tensor([[0, 0] if s in top else [50, 50] for s in sentences])
        return torch.stack([signs, -signs], dim=1), ranks

    return classify, asked


def test_zero_shot_set_keeps_the_papers_filters_when_they_leave_enough(gpt2):
    classify, asked = fake_classifier(top=set(SPLIT.sentences))
    selected = build_zero_shot_set(gpt2.bridge, SPLIT, True, classify, **PROTOCOL)
    assert asked == [list(SPLIT.sentences[:2 * N])]  # comma-holding, at most 64 tokens
    assert selected.counts == {
        "candidates": {"positive": N + 1, "negative": N + 2},
        "with a comma token": {"positive": N, "negative": N},
        "classified correctly, answer in top 10": {"positive": N - 1, "negative": N - 1},
        "balanced (seeded subsample)": {"positive": N - 1, "negative": N - 1},
    }
    assert selected.raw_accuracy == pytest.approx((2 * N - 2) / (2 * N))
    prompts = selected.prompts
    assert prompts.source_index.tolist() == [i for i in range(2 * N) if SPLIT.sentences[i] not in WRONG]
    assert list(prompts.sentences) == [SPLIT.sentences[i] for i in prompts.source_index]
    assert prompts.labels.tolist() == [SPLIT.labels[i] for i in prompts.source_index]
    assert prompts.scaffold == ZERO_SHOT


def test_zero_shot_set_falls_back_to_correctness_only(gpt2):
    few_negatives = {s for s in SPLIT.sentences if s.startswith("good")} | {f"bad film , take {i} ." for i in (1, 2, 3)}
    classify, _ = fake_classifier(top=few_negatives)
    selected = build_zero_shot_set(gpt2.bridge, SPLIT, True, classify, **PROTOCOL)
    assert selected.counts["classified correctly, answer in top 10"] == {"positive": N - 1, "negative": 3}
    assert selected.counts["balanced (seeded subsample)"] == {"positive": 3, "negative": 3}
    assert 3 < MIN_PER_CLASS
    assert selected.counts[f"fallback (< {MIN_PER_CLASS} per class): classified correctly, no top-10 filter"] == {
        "positive": N - 1, "negative": N - 1}
    assert selected.counts["balanced (seeded subsample), used"] == {"positive": N - 1, "negative": N - 1}
    assert len(selected.prompts) == 2 * (N - 1)


def test_shipped_dev_split_comma_counts(gpt2):
    """Today's report: 444 / 428 dev candidates, 258 / 223 holding a comma (at most 64 tokens)."""
    dev = load_sst()["dev"]
    label = dict(zip(dev.sentences, dev.labels))
    asked = []

    def classify(scaffold, sentences):
        asked.append(sentences)
        signs = torch.tensor([1.0 if label[s] else -1.0 for s in sentences])
        return torch.stack([signs, -signs], dim=1), torch.zeros(len(sentences), 2, dtype=torch.long)

    selected = build_zero_shot_set(gpt2.bridge, dev, True, classify, **PROTOCOL)
    assert selected.counts["candidates"] == {"positive": 444, "negative": 428}
    assert selected.counts["with a comma token"] == {"positive": 258, "negative": 223} and len(asked[0]) == 481
    assert selected.counts["balanced (seeded subsample)"] == {"positive": 100, "negative": 100}  # the cap
    assert selected.raw_accuracy == 1.0


TEXTS = ["a fine film , truly moving .", "dull , bad .", "it 's bad , really bad , sadly", "great fun , really"]


def _hand_written_scores(bridge, prompts, directions, site, answers, name):
    """Ablation ``name`` of ``ABLATIONS`` with every piece written out here."""
    n_layers = bridge.cfg.n_layers
    vectors, where, frozen = ABLATIONS[name]
    mask = prompts.attention_mask.bool()
    first = torch.zeros_like(mask)
    first[torch.arange(len(mask)), mask.int().argmax(-1)] = True
    positions = {"all": mask, "all_but_first": mask & ~first,
                 "comma": mask & torch.isin(prompts.tokens, torch.tensor(comma_ids(bridge.tokenizer)))}[where]
    resid = residual_stream(bridge, prompts.tokens, prompts.attention_mask)
    hooks = []
    layers = range(n_layers) if vectors == "mean" else directions[vectors]
    for layer in layers:
        if site == "resid_post" and layer == n_layers:
            continue
        name = hook_names.resid_post(layer) if site == "resid_post" else hook_names.resid(n_layers, layer)
        if vectors == "mean":
            boundary = layer + 1 if site == "resid_post" else layer
            mean = resid[boundary][positions].mean(0)
            edit = lambda x, mean=mean: mean.expand_as(x)
        else:
            unit = directions[vectors][layer] / directions[vectors][layer].norm()
            edit = lambda x, unit=unit: x - (x @ unit)[..., None] * unit
        hooks.append((name, lambda x, hook=None, edit=edit: torch.where(positions[..., None], edit(x), x)))
    if frozen:
        hooks += freeze_attention_hooks(attention_patterns(bridge, prompts.tokens, prompts.attention_mask))
    with torch.no_grad():
        logits = bridge.run_with_hooks(prompts.tokens, fwd_hooks=hooks, attention_mask=prompts.attention_mask)[:, -1]
    return sentiment_score(logits, answers)


@pytest.mark.parametrize("site", ["resid_post", "resid_pre"])
def test_every_ablation_equals_hand_written_hooks(tiny, site):
    bridge, n_layers = tiny.bridge, tiny.n_layers
    prompts = scaffold_prompts(bridge, ZERO_SHOT, TEXTS, [1, 0, 0, 1], range(4), prepend_bos=True)
    assert (prompts.attention_mask == 0).any(), "the test needs padded rows"
    answers = ZERO_SHOT.answer_ids(bridge.tokenizer)
    generator = torch.Generator().manual_seed(0)
    fitted = {method: {layer: torch.randn(bridge.cfg.d_model, generator=generator) for layer in range(n_layers + 1)}
              for method in ("das", "random", "probe")}
    layers = (0, n_layers)
    directions = ablation_directions(fitted, layers)
    assert list(directions) == ["das", "random"] and all(list(d) == list(layers) for d in directions.values())
    scores = sst_ablation_scores(bridge, prompts, directions, site, answers)
    with torch.no_grad():
        clean = sentiment_score(bridge(prompts.tokens, attention_mask=prompts.attention_mask)[:, -1], answers)
    torch.testing.assert_close(scores["clean"], clean, atol=1e-4, rtol=0)
    assert list(scores["ablated"]) == list(ABLATIONS)
    for name in ABLATIONS:
        expected = _hand_written_scores(bridge, prompts, directions, site, answers, name)
        assert (expected - clean).abs().max() > 1e-4, f"{name} should change the scores"
        torch.testing.assert_close(scores["ablated"][name], expected, atol=1e-4, rtol=0, msg=name)


def test_positions_and_first_position_diagnostic(gpt2):
    bridge = gpt2.bridge
    prompts = scaffold_prompts(bridge, ZERO_SHOT, TEXTS, [1, 0, 0, 1], range(4), prepend_bos=True)
    positions = ablation_positions(prompts, comma_ids(bridge.tokenizer))
    assert positions["comma"].sum(-1).tolist() == [text.count(",") for text in TEXTS]
    assert not (positions["comma"] & ~prompts.attention_mask.bool()).any()
    assert (positions["all"].sum(-1) - positions["all_but_first"].sum(-1)).tolist() == [1, 1, 1, 1]
    generator = torch.Generator().manual_seed(0)
    directions = {m: {1: torch.randn(bridge.cfg.d_model, generator=generator)} for m in ("das", "random")}
    diagnostic = sst_ablation_scores(bridge, prompts, directions, "resid_post",
                                     ZERO_SHOT.answer_ids(bridge.tokenizer))["first_position"]
    resid = residual_stream(bridge, prompts.tokens, prompts.attention_mask)[1]
    first = positions["all"] & ~positions["all_but_first"]
    unit = directions["das"][1] / directions["das"][1].norm()
    assert list(diagnostic) == [1]
    assert diagnostic[1]["norm_first"] == pytest.approx(float(resid[first].norm(dim=-1).mean()), rel=1e-5)
    assert diagnostic[1]["das_rest"] == pytest.approx(float((resid[positions["all_but_first"]] @ unit).abs().mean()),
                                                      rel=1e-5)
    assert set(diagnostic[1]) == {"norm_first", "norm_rest", "das_first", "das_rest", "random_first", "random_rest"}


def test_sst_ablations_metrics_per_class():
    labels = torch.tensor([1, 1, 0, 0])
    scores = {"clean": torch.tensor([2.0, 4.0, -2.0, -4.0]),  # LD 2, 4, 2, 4
              "ablated": {"half": torch.tensor([1.0, 2.0, -1.0, -2.0]), "flip_neg": torch.tensor([2.0, 4.0, 1.0, 1.0])},
              "first_position": {}}
    results = SSTAblations.from_scores(scores, labels, "resid_post", [0, 3], {"stage": {"positive": 2, "negative": 2}}, 64)
    assert results.ld_orig.tolist() == [2, 4, 2, 4] and results.layers == (0, 3)
    assert results.ld_drop("half") == pytest.approx(50) and results.accuracy("half") == 100
    assert results.ld_drop("flip_neg", 1) == pytest.approx(0) and results.accuracy("flip_neg", 1) == 100
    assert results.ld_drop("flip_neg", 0) == pytest.approx(100 * (3 - -1) / 3) and results.accuracy("flip_neg", 0) == 0
    assert results.accuracy("flip_neg") == 50
    estimate = results.estimate("accuracy", "flip_neg")
    assert estimate.value == 50 and 0 <= estimate.ci_low <= 50 <= estimate.ci_high <= 100
    assert estimate.n == 4 and estimate.unit == "prompts"


def _results(ld: dict[str, list[float]], labels=(1, 1, 0, 0, 1, 0)) -> SSTAblations:
    """An ``SSTAblations`` whose clean LD is 2 for every prompt (labels all positive: LD = score)."""
    labels = torch.tensor(labels)
    signs = labels.float() * 2 - 1
    scores = {"clean": 2.0 * signs, "ablated": {name: torch.tensor(v) * signs for name, v in ld.items()},
              "first_position": {}}
    return SSTAblations.from_scores(scores, labels, "resid_post", [0], {}, 64)


def test_paired_difference_is_paired_over_prompts():
    # DAS always drops LD by 1 more than random on the same prompt: the paired CI is that exactly
    random = [2.0, 1.5, 1.0, 2.5, 0.5, 1.8]
    results = _results({"das": [r - 1 for r in random], "random": random})
    estimate = results.paired_difference("ld_drop", "das", "random")
    assert estimate.value == pytest.approx(50) and estimate.ci_low == pytest.approx(50) == estimate.ci_high
    accuracy = results.paired_difference("accuracy", "das", "random")  # das: 1.0 → 0, 0.5 → -0.5: two lost
    assert accuracy.value == pytest.approx(200 / 6)


def test_net_ratio_and_ratio_count_undefined_resamples():
    results = _results({"comma": [1.0, 2.0, 2.0, 2.0, 2.0, 2.0], "random_comma": [2.0] * 6,
                        "all": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0], "random_all": [2.0] * 6})
    ratio = results.net_ratio("ld_drop", "comma", "random_comma", "all", "random_all")
    assert ratio.value == pytest.approx((0.5 / 6) / (1.5 / 6))
    assert ratio.undefined > 0 and ratio.resamples == 1000  # resamples without prompts 0-2: denominator 0
    frozen = results.ratio("comma", "all")
    assert frozen.value == pytest.approx(1 / 3) and frozen.undefined == ratio.undefined


def test_zero_shot_set_reports_its_fallback(gpt2):
    few_negatives = {s for s in SPLIT.sentences if s.startswith("good")} | {f"bad film , take {i} ." for i in (1, 2, 3)}
    fallback = build_zero_shot_set(gpt2.bridge, SPLIT, True, fake_classifier(top=few_negatives)[0], **PROTOCOL)
    paper = build_zero_shot_set(gpt2.bridge, SPLIT, True, fake_classifier(top=set(SPLIT.sentences))[0], **PROTOCOL)
    assert fallback.fallback and "DEVIATION" in fallback.deviation()
    assert not paper.fallback and "DEVIATION" not in paper.deviation()
