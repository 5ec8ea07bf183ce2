"""harness.experiments.sst_ablations (paper §2.3, §5.3, §6.1 A1–A5): the zero-shot set, the ablations and the null.

- the zero-shot set classifies only comma-holding prompts of at most 64 tokens, keeps the paper's
  filters when each class keeps at least 10 prompts, and otherwise falls back to correctness only,
  saying so in its counts (the fallback triggered on purpose); the shipped dev split's
  model-independent counts;
- every ablation of ``ABLATIONS`` and every null direction at each of ``NULL_POSITIONS`` equals a run
  with hand-written hooks (positions, per-layer directions, the comma mean of the site's boundary,
  frozen attention), at both sites, on the tiny models, with the null split over several forwards; the
  clean scores equal a plain forward; the first-position diagnostic is hand-checked;
- ``SSTAblations``: Δ% LD and accuracy, overall and per class; the statistics against the null (A1's
  drop above the null's quantile, A2's spread, A3/A4's net ratio, A5's ratio) equal their hand-computed
  values, are paired, count undefined resamples, and their studentized CIs equal
  ``intervals.interval`` on the gathered series.
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
    ABLATIONS, NULL_POSITIONS, SSTAblations, ablation_directions, ablation_positions, build_zero_shot_set,
    random_null, sst_ablation_scores,
)
from harness.interventions.ablation import ld_drop
from harness.measures.intervals import interval
from harness.datasets.sst_prompts import ZERO_SHOT, comma_ids, scaffold_prompts
from harness.verdicts.declared import declared

PROTOCOL = {key: declared("A1").protocol[key] for key in ("max_prompt_tokens", "top_k", "max_per_class",
                                                         "min_per_class")}  # A1-A5's
QUANTILE = declared("A1").protocol["null_quantile"]
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
    assert selected.counts["balanced (seeded subsample)"] == {"positive": 223, "negative": 223}  # no cap: all
    assert selected.raw_accuracy == 1.0


TEXTS = ["a fine film , truly moving .", "dull , bad .", "it 's bad , really bad , sadly", "great fun , really"]


def _hand_written_scores(bridge, prompts, directions, site, answers, name, vectors=None):
    """Ablation ``name`` of ``ABLATIONS`` (or, with ``vectors``, the null direction ``vectors`` ablated at
    positions ``name``) with every piece written out here."""
    n_layers = bridge.cfg.n_layers
    vectors, where, frozen = ABLATIONS[name] if vectors is None else (vectors, name, False)
    mask = prompts.attention_mask.bool()
    first = torch.zeros_like(mask)
    first[torch.arange(len(mask)), mask.int().argmax(-1)] = True
    positions = {"all": mask, "all_but_first": mask & ~first,
                 "comma": mask & torch.isin(prompts.tokens, torch.tensor(comma_ids(bridge.tokenizer)))}[where]
    resid = residual_stream(bridge, prompts.tokens, prompts.attention_mask)
    hooks = []
    by_layer = vectors if isinstance(vectors, dict) else directions.get(vectors)
    layers = range(n_layers) if vectors == "mean" else by_layer
    for layer in layers:
        if site == "resid_post" and layer == n_layers:
            continue
        name = hook_names.resid_post(layer) if site == "resid_post" else hook_names.resid(n_layers, layer)
        if vectors == "mean":
            boundary = layer + 1 if site == "resid_post" else layer
            mean = resid[boundary][positions].mean(0)
            edit = lambda x, mean=mean: mean.expand_as(x)
        else:
            unit = by_layer[layer] / by_layer[layer].norm()
            edit = lambda x, unit=unit: x - (x @ unit)[..., None] * unit
        hooks.append((name, lambda x, hook=None, edit=edit: torch.where(positions[..., None], edit(x), x)))
    if frozen:
        hooks += freeze_attention_hooks(attention_patterns(bridge, prompts.tokens, prompts.attention_mask))
    with torch.no_grad():
        logits = bridge.run_with_hooks(prompts.tokens, fwd_hooks=hooks, attention_mask=prompts.attention_mask)[:, -1]
    return sentiment_score(logits, answers)


@pytest.mark.parametrize("site", ["resid_post", "resid_pre"])
def test_every_ablation_and_null_direction_equals_hand_written_hooks(tiny, site):
    bridge, n_layers = tiny.bridge, tiny.n_layers
    prompts = scaffold_prompts(bridge, ZERO_SHOT, TEXTS, [1, 0, 0, 1], range(4), prepend_bos=True)
    assert (prompts.attention_mask == 0).any(), "the test needs padded rows"
    answers = ZERO_SHOT.answer_ids(bridge.tokenizer)
    generator = torch.Generator().manual_seed(0)
    fitted = {method: {layer: torch.randn(bridge.cfg.d_model, generator=generator) for layer in range(n_layers + 1)}
              for method in ("das", "random", "probe")}
    layers = (0, n_layers)
    directions = ablation_directions(fitted, layers)
    assert list(directions) == ["das"] and list(directions["das"]) == list(layers)
    null = random_null(3, layers, bridge.cfg.d_model, seed=0)
    assert list(null) == list(layers) and null[0].shape == (3, bridge.cfg.d_model)
    assert not torch.equal(null[0], null[n_layers])  # one Gaussian vector per layer and direction
    torch.testing.assert_close(random_null(3, layers, bridge.cfg.d_model, seed=0)[0], null[0])  # seeded
    # chunks of 3 prompts, 2 ablations per forward: the null is split over several forwards
    scores = sst_ablation_scores(bridge, prompts, directions, null, site, answers, chunk_size=3, group_size=2)
    with torch.no_grad():
        clean = sentiment_score(bridge(prompts.tokens, attention_mask=prompts.attention_mask)[:, -1], answers)
    torch.testing.assert_close(scores["clean"], clean, atol=1e-4, rtol=0)
    assert list(scores["ablated"]) == list(ABLATIONS)
    for name in ABLATIONS:
        expected = _hand_written_scores(bridge, prompts, directions, site, answers, name)
        assert (expected - clean).abs().max() > 1e-4, f"{name} should change the scores"
        torch.testing.assert_close(scores["ablated"][name], expected, atol=1e-4, rtol=0, msg=name)
    assert list(scores["null"]) == list(NULL_POSITIONS)
    for where in NULL_POSITIONS:
        assert scores["null"][where].shape == (3, len(TEXTS))
        for k in range(3):
            expected = _hand_written_scores(bridge, prompts, directions, site, answers, where,
                                            vectors={layer: null[layer][k] for layer in layers})
            torch.testing.assert_close(scores["null"][where][k], expected, atol=1e-4, rtol=0, msg=f"{where} {k}")


def test_positions_and_first_position_diagnostic(gpt2):
    bridge = gpt2.bridge
    prompts = scaffold_prompts(bridge, ZERO_SHOT, TEXTS, [1, 0, 0, 1], range(4), prepend_bos=True)
    positions = ablation_positions(prompts, comma_ids(bridge.tokenizer))
    assert positions["comma"].sum(-1).tolist() == [text.count(",") for text in TEXTS]
    assert not (positions["comma"] & ~prompts.attention_mask.bool()).any()
    assert (positions["all"].sum(-1) - positions["all_but_first"].sum(-1)).tolist() == [1, 1, 1, 1]
    generator = torch.Generator().manual_seed(0)
    directions = {"das": {1: torch.randn(bridge.cfg.d_model, generator=generator)}}
    null = random_null(2, (1,), bridge.cfg.d_model, seed=0)
    diagnostic = sst_ablation_scores(bridge, prompts, directions, null, "resid_post",
                                     ZERO_SHOT.answer_ids(bridge.tokenizer))["first_position"]
    resid = residual_stream(bridge, prompts.tokens, prompts.attention_mask)[1]
    first = positions["all"] & ~positions["all_but_first"]
    unit = directions["das"][1] / directions["das"][1].norm()
    assert list(diagnostic) == [1]
    assert diagnostic[1]["norm_first"] == pytest.approx(float(resid[first].norm(dim=-1).mean()), rel=1e-5)
    assert diagnostic[1]["das_rest"] == pytest.approx(float((resid[positions["all_but_first"]] @ unit).abs().mean()),
                                                      rel=1e-5)
    units = null[1] / null[1].norm(dim=-1, keepdim=True)  # the null's: the mean over its directions
    assert diagnostic[1]["random_first"] == pytest.approx(
        float(sum((resid[first] @ u).abs().mean() for u in units) / 2), rel=1e-5)
    assert set(diagnostic[1]) == {"norm_first", "norm_rest", "das_first", "das_rest", "random_first", "random_rest"}


def test_sst_ablations_metrics_per_class():
    labels = torch.tensor([1, 1, 0, 0])
    scores = {"clean": torch.tensor([2.0, 4.0, -2.0, -4.0]),  # LD 2, 4, 2, 4
              "ablated": {"half": torch.tensor([1.0, 2.0, -1.0, -2.0]), "flip_neg": torch.tensor([2.0, 4.0, 1.0, 1.0])},
              "null": {"all": torch.tensor([[2.0, 4.0, -2.0, -4.0]])}, "first_position": {}}
    results = SSTAblations.from_scores(scores, labels, "resid_post", [0, 3], {"stage": {"positive": 2, "negative": 2}}, 64,
                                       QUANTILE)
    assert results.ld_orig.tolist() == [2, 4, 2, 4] and results.layers == (0, 3) and results.null_count == 1
    assert results.ld_drop("half") == pytest.approx(50) and results.accuracy("half") == 100
    assert results.ld_drop("flip_neg", 1) == pytest.approx(0) and results.accuracy("flip_neg", 1) == 100
    assert results.ld_drop("flip_neg", 0) == pytest.approx(100 * (3 - -1) / 3) and results.accuracy("flip_neg", 0) == 0
    assert results.accuracy("flip_neg") == 50
    estimate = results.estimate("accuracy", "flip_neg")
    assert estimate.value == 50 and 0 <= estimate.ci_low <= 50 <= estimate.ci_high <= 100
    assert estimate.n == 4 and estimate.unit == "prompts" and "studentized" in estimate.method


def _results(ld: dict[str, list[float]], null: dict[str, list[list[float]]],
             labels=(1, 1, 0, 0, 1, 0, 1, 0)) -> SSTAblations:
    """An ``SSTAblations`` whose clean LD is 2 for every prompt (the given LDs signed by the labels)."""
    labels = torch.tensor(labels)
    signs = labels.float() * 2 - 1
    scores = {"clean": 2.0 * signs, "ablated": {name: torch.tensor(v) * signs for name, v in ld.items()},
              "null": {where: torch.tensor(v) * signs for where, v in null.items()}, "first_position": {}}
    return SSTAblations.from_scores(scores, labels, "resid_post", [0], {}, 64, QUANTILE)


def _null(count: int = 50, seed: int = 0, spread: float = 0.4) -> list[list[float]]:
    """``count`` random directions' LDs on 8 prompts: each direction shifts every prompt alike, plus noise."""
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randn(count, 1, generator=generator) * spread
    return (2.0 - shift - 0.05 * torch.randn(count, 8, generator=generator)).tolist()


def test_a1_is_the_drop_above_the_nulls_quantile_and_is_paired():
    null = _null()
    das = [1.5, 0.2, 1.0, 0.4, 1.8, 0.3, 1.2, 0.6]  # prompts differ a lot
    results = _results({"das_all": das}, {"all": null})
    estimate = results.above_null("ld_drop", "das_all", "all")
    null_drops = torch.tensor([100 * (2 - torch.tensor(row).mean()) / 2 for row in null])
    expected = float(100 * (2 - torch.tensor(das).mean()) / 2 - torch.quantile(null_drops.double(), QUANTILE))
    assert estimate.value == pytest.approx(expected, abs=1e-4)
    assert results.null_quantile_drop("ld_drop", "all") == pytest.approx(float(torch.quantile(null_drops.double(),
                                                                                              QUANTILE)))
    assert estimate.n == 8 and estimate.method.startswith("paired, studentized")
    # the same CI as intervals.interval over the gathered series (the column means are only a shortcut)
    orig, das_ld, null_ld = results.ld_orig, results.ld["das_all"], results.null["all"]
    gathered = interval(lambda o, d, r: ld_drop(o, d) - torch.quantile(ld_drop(o, r), QUANTILE, dim=0),
                        orig.double(), das_ld.double(), null_ld.double(), unit="prompts")
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx((gathered.ci_low, gathered.ci_high), rel=1e-6)


def test_a1_pairing_cancels_what_the_ablations_share():
    # every prompt's LD falls by the same amount under DAS and under every null direction, plus a
    # per-prompt part shared by all of them: paired, the difference is exact
    shared = [0.9, 0.1, 0.5, 0.0, 0.7, 0.2, 0.8, 0.3]
    null = [[2.0 - s - 0.01 * k for s in shared] for k in range(50)]
    results = _results({"das_all": [2.0 - s - 1.0 for s in shared]}, {"all": null})
    estimate = results.above_null("ld_drop", "das_all", "all")
    gap = 100 * (1.0 - 0.01 * torch.quantile(torch.arange(50).double(), QUANTILE).item()) / 2
    assert estimate.value == pytest.approx(gap, abs=1e-4)
    assert estimate.ci_high - estimate.ci_low < 0.05 * estimate.value


def test_a2_is_the_median_absolute_drop_over_directions_with_the_two_way_bootstrap():
    null = _null(spread=0.02)
    results = _results({}, {"all": null})
    estimate = results.null_spread("all", 0.5)
    drops = torch.tensor([100 * (2 - torch.tensor(row).mean()) / 2 for row in null]).double()
    assert estimate.value == pytest.approx(float(torch.quantile(drops.abs(), 0.5)), abs=1e-4)
    assert estimate.ci_low <= estimate.value <= estimate.ci_high and "two-way" in estimate.method
    assert estimate.n == 8 and estimate.unit == "prompts"


def test_net_ratio_and_ratio_are_fieller_intervals_of_the_paired_drops():
    null_comma, null_all = [[2.0] * 8] * 50, [[2.0] * 8] * 50
    results = _results({"comma": [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
                        "all": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]}, {"comma": null_comma, "all": null_all})
    ratio = results.net_ratio("ld_drop", "comma", "comma", "all", "all")
    assert ratio.value == pytest.approx((0.5 / 8) / (1.5 / 8))
    assert ratio.method.startswith("paired, Fieller") and ratio.resamples == 1000
    assert ratio.ci_low <= ratio.value <= ratio.ci_high
    assert results.net_drop("ld_drop", "comma", "comma").value == pytest.approx(100 * 1 / 16)
    frozen = results.ratio("comma", "all")
    assert frozen.value == pytest.approx(1 / 3) and frozen.ci_low <= frozen.value <= frozen.ci_high
    # a null shifted by a constant comes off both terms of the ratio
    shifted = _results({"comma": [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0], "all": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]},
                       {"comma": [[1.9] * 8] * 50, "all": [[1.9] * 8] * 50})
    net = shifted.net_ratio("ld_drop", "comma", "comma", "all", "all")
    assert net.value == pytest.approx((100 * 1 / 16 - 5) / (100 * 3 / 16 - 5))


def test_null_measured_on_some_prompts_is_averaged_over_those():
    null = _null(count=50)
    partial = [[v if i < 6 else float("nan") for i, v in enumerate(row)] for row in null]
    results = _results({"das_all": [1.0] * 8}, {"all": partial})
    drops = results.null_drops("ld_drop", "all")
    expected = torch.tensor([100 * (2 - torch.tensor(row[:6]).mean()) / 2 for row in null])
    torch.testing.assert_close(drops, expected.to(drops.dtype), atol=1e-5, rtol=0)
    estimate = results.above_null("ld_drop", "das_all", "all")
    assert estimate.value == pytest.approx(50 - float(torch.quantile(expected.double(), QUANTILE)), abs=1e-4)


def test_zero_shot_set_reports_its_fallback(gpt2):
    few_negatives = {s for s in SPLIT.sentences if s.startswith("good")} | {f"bad film , take {i} ." for i in (1, 2, 3)}
    fallback = build_zero_shot_set(gpt2.bridge, SPLIT, True, fake_classifier(top=few_negatives)[0], **PROTOCOL)
    paper = build_zero_shot_set(gpt2.bridge, SPLIT, True, fake_classifier(top=set(SPLIT.sentences))[0], **PROTOCOL)
    assert fallback.fallback and "DEVIATION" in fallback.deviation()
    assert not paper.fallback and "DEVIATION" not in paper.deviation()


def test_the_gate_reads_each_class_margin_on_the_ablated_prompts(gpt2):
    """A1–A5's gate: each class's mean clean LD on the set itself, the margins named in the precondition."""
    selected = build_zero_shot_set(gpt2.bridge, SPLIT, True, fake_classifier(top=set(SPLIT.sentences))[0], **PROTOCOL)
    assert selected.logit_diffs.tolist() == [2.0] * len(selected.prompts)  # the fake logits ±1 each: LD 2, signed
    assert selected.class_margins() == {"positive": 2.0, "negative": 2.0}
    (held_name, held), = selected.gate(2.0).items()
    (failed_name, failed), = selected.gate(2.5).items()
    assert held and not failed
    assert "(positive 2.00, negative 2.00)" in failed_name and ">= 2.5 " in failed_name
