"""harness.experiments.circuit: the ToyMovieReview circuit by path patching (§6.4), and its renderer.

Selection rules on synthetic inputs (balanced stage-2 pairs, top heads, receivers with their fallback,
circuit assembly, head → direction-layer mapping, mid layers). Then ``find_circuit`` on the tiny
random-weight GPT-2, NeoX and grouped-query Llama, choosing on the ToyMovieReview train pairs and
scoring on the test pairs: every stage equals the harness call it wraps on the pairs it should use
(stage 1 on both sets, roles and stage 2 on the train pairs, the circuit and summary patches on the
test pairs), the K3 loop equals a full forward with the residual patched at SBJ2, the circuit has the
size and members the rule gives, no direction means no direction-only patch, the receiver fallback
runs when no head is a summary reader, cached stages are served without recomputing, and the renderer
writes the section, ``report.data["circuit"]`` and the figure. (On the 2-layer tiny models the only summary reader sits in
layer 0, which has no senders, so those runs name the last layer's heads summary readers.)
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace

import matplotlib
import pytest
import torch

import harness.experiments.circuit as circuit_module
from harness.interventions import hook_names
from harness.interventions.attention import attention_patterns
from harness.experiments.circuit import (
    CircuitResults, CircuitSettings, assemble_circuit, balanced_pairs, choose_receivers, direction_layers, find_circuit,
    mid_layers, nearest_direction_layer, top_heads,
)
from harness.interventions.circuit_patching import patch_head_outputs
from harness.experiments.head_roles import HeadRole, classify_heads
from harness.interventions.edit import position_mask
from harness.measures.metrics import sentiment_score
from harness.models.loading import LoadedModel
from harness.interventions.path_patching import (
    INPUT_KINDS, Node, component_cache, final_scores, path_patch_to_heads, path_patch_to_logits,
)
from harness.datasets.prompts import PromptPairs
from harness.reporting.report import ReportBuilder
from harness.verdicts.declared import declared
from harness.datasets.toy_movie_review import build_toy_movie_review

matplotlib.use("Agg")

CIRCUIT = CircuitSettings.from_protocol(declared("K1").protocol)  # the K claims' declared settings


# selection rules ------------------------------------------------------------------------------------

def test_balanced_pairs_takes_the_first_of_each_label_in_order():
    labels = torch.tensor([1, 0, 1, 1, 0, 0, 1])
    assert balanced_pairs(labels, 4).tolist() == [0, 1, 2, 4]
    assert balanced_pairs(labels, 100).tolist() == list(range(7))


def test_top_heads_rank_by_absolute_effect():
    heads = [Node(0, 0), Node(0, 1), Node(1, 0)]
    assert top_heads(heads, torch.tensor([5.0, -9.0, 1.0]), 2) == [Node(0, 1), Node(0, 0)]


def _role(layer: int, head: int, *roles: str) -> HeadRole:
    return HeadRole(layer, head, {}, roles)


def test_receivers_are_the_summary_readers_in_role_order():
    roles = [_role(2, 0, "direct reader"), _role(3, 1, "summary reader"), _role(1, 2, "summary reader", "summary writer"),
             _role(4, 0, "summary reader")]
    assert choose_receivers(roles, [], {}, 0, 2) == [Node(3, 1), Node(1, 2)]


def test_receivers_fall_back_to_attention_from_the_last_position_to_the_summary_token():
    patterns = {layer: torch.zeros(2, 2, 5, 5) for layer in range(2)}  # [batch, head, q, k]
    patterns[0][:, 1, -1, 3] = torch.tensor([0.2, 0.4])  # 0.1: mean 0.3
    patterns[1][:, 0, -1, 3] = 0.5  # 1.0: 0.5
    patterns[1][:, 1, 2, 3] = 0.9  # 1.1: attends to SBJ2, but not from the last position
    top = [Node(0, 0), Node(0, 1), Node(1, 0), Node(1, 1)]
    roles = [_role(n.layer, n.head, "direct reader") for n in top]
    assert choose_receivers(roles, top, patterns, 3, 2) == [Node(1, 0), Node(0, 1)]


def test_circuit_is_the_direct_heads_plus_new_writers_by_effect():
    direct = [Node(3, 0), Node(1, 1)]
    writers = [Node(1, 1), Node(0, 2), Node(2, 0), Node(0, 1)]
    effects = torch.tensor([9.0, 5.0, 1.0, 7.0])
    assert assemble_circuit(direct, writers, effects, 4) == [Node(0, 1), Node(0, 2), Node(1, 1), Node(3, 0)]
    assert assemble_circuit(direct, writers, effects, 10) == sorted({*direct, *writers})  # writers run out
    assert assemble_circuit(direct, writers, effects, 2) == sorted(direct)


def test_direction_layer_is_the_nearest_fitted_to_the_one_the_head_writes_into():
    assert nearest_direction_layer([0, 5, 10], 4) == 5  # writes into 5
    assert nearest_direction_layer([0, 5, 10], 6) == 5  # 7: 5 is 2 away, 10 is 3
    assert nearest_direction_layer([3, 5], 3) == 3  # 4: a tie goes to the lower layer
    assert nearest_direction_layer([0, 30], 29) == 30
    circuit = [Node(2, 0), Node(2, 1), Node(7, 3)]
    assert direction_layers(circuit, [12, 0, 6]) == {2: 0, 7: 6}


def test_mid_layers_span_a_third_to_two_thirds():
    assert mid_layers(30) == list(range(10, 21))
    assert mid_layers(3) == [1, 2]


# find_circuit on the tiny models ---------------------------------------------------------------------

@contextmanager
def _summary_readers_in(layer: int | None):
    """Heads of ``layer`` become the only summary readers (none at all if ``layer`` is None)."""
    classify = circuit_module.classify_heads

    def classify_with_readers(*args, **kwargs):
        return [replace(r, roles=("summary reader",) if r.layer == layer else ()) for r in classify(*args, **kwargs)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(circuit_module, "classify_heads", classify_with_readers)
        yield


@dataclass
class Run:
    model: LoadedModel
    selection: PromptPairs  # train pairs: choose the circuit
    pairs: PromptPairs  # test pairs: score it
    directions: dict[int, torch.Tensor]
    results: CircuitResults
    stages: dict[str, object]  # stage name -> value, in the order find_circuit asked for them


@pytest.fixture(scope="module")
def circuit_runs(tiny_models, tiny_llama):
    """``circuit_runs(architecture, readers)``: ``find_circuit`` on a tiny model, once per module, with its
    summary readers as found or named in the last layer ("last layer")."""
    runs = {}

    def run(architecture: str, readers: str) -> Run:
        if (architecture, readers) not in runs:
            model = tiny_llama if architecture == "llama" else tiny_models[architecture]
            toy = build_toy_movie_review(model.bridge, prepend_bos=True)
            generator = torch.Generator().manual_seed(1)
            directions = {layer: torch.randn(model.bridge.cfg.d_model, generator=generator)
                          for layer in (0, model.n_layers)}
            stages = {}
            with _summary_readers_in(model.n_layers - 1) if readers == "last layer" else nullcontext():
                results = find_circuit(model.bridge, toy.train_pairs, toy.test_pairs, directions,
                                       lambda name, key, compute: stages.setdefault(name, compute()), settings=CIRCUIT)
            runs[architecture, readers] = Run(model, toy.train_pairs, toy.test_pairs, directions, results, stages)
        return runs[architecture, readers]

    return run


@pytest.mark.parametrize("architecture, readers", [
    ("gpt2", "last layer"), ("neox", "last layer"), ("llama", "last layer"), ("llama", "found"),
])
def test_find_circuit_equals_its_stages(circuit_runs, architecture, readers):
    run = circuit_runs(architecture, readers)
    bridge, pairs, directions, results = run.model.bridge, run.pairs, run.directions, run.results
    selection = run.selection
    assert list(run.stages) == ["stage1-selection", "stage1-test", "stage2-q", "stage2-k", "stage2-v", "circuit-patch",
                                "summary-patch"]

    clean, corrupted = component_cache(bridge, pairs.clean.tokens), component_cache(bridge, pairs.corrupted.tokens)
    chosen_clean = component_cache(bridge, selection.clean.tokens)
    chosen_corrupted = component_cache(bridge, selection.corrupted.tokens)
    answers = pairs.answer_ids
    for effects, (c, x), on in ((results.selection, (chosen_clean, chosen_corrupted), selection),
                                (results.test, (clean, corrupted), pairs)):
        senders, scores = path_patch_to_logits(bridge, c, x, answers)
        assert effects.senders == senders and torch.equal(effects.labels, on.clean.labels)
        torch.testing.assert_close(effects.scores, scores)
        torch.testing.assert_close(effects.clean, final_scores(bridge, c.resid[-1][:, -1], answers))
        torch.testing.assert_close(effects.corrupted, final_scores(bridge, x.resid[-1][:, -1], answers))
    assert torch.equal(results.labels, pairs.clean.labels) and torch.equal(results.clean, results.test.clean)

    heads, effects = results.head_effects()
    torch.testing.assert_close(effects, results.selection.head_effects()[1])
    top = results.top_heads(CIRCUIT.top_heads)
    assert len(top) == min(CIRCUIT.top_heads, len(heads))
    assert effects.abs()[[heads.index(n) for n in top]].tolist() == sorted(effects.abs().tolist(), reverse=True)[:len(top)]
    patterns = attention_patterns(bridge, selection.clean.tokens)
    expected_roles = classify_heads(patterns, selection.clean.positions, [(n.layer, n.head) for n in top],
                                    CIRCUIT.role_threshold)
    if readers == "last layer":
        expected_roles = [replace(r, roles=("summary reader",) if r.layer == run.model.n_layers - 1 else ())
                          for r in expected_roles]
    assert results.roles == expected_roles
    summary_readers = [Node(r.layer, r.head) for r in expected_roles if "summary reader" in r.roles]
    assert summary_readers and results.receivers == summary_readers[:CIRCUIT.n_receivers]

    rows = results.stage2_pairs
    assert len(rows) == CIRCUIT.stage2_pairs and selection.clean.labels[rows].sum() == CIRCUIT.stage2_pairs // 2
    for kind in INPUT_KINDS:
        expected_senders, expected = path_patch_to_heads(bridge, chosen_clean.rows(rows), chosen_corrupted.rows(rows),
                                                         results.receivers, kind, answers, heads_only=True)
        assert results.to_receivers[kind][0] == results.estimated[kind][0] == expected_senders
        torch.testing.assert_close(results.to_receivers[kind][1], expected)

    writers, _ = results.writer_effects()
    direct = results.top_heads(CIRCUIT.n_direct)
    assert results.circuit == sorted(results.circuit) and set(direct) <= set(results.circuit)
    assert set(results.circuit) <= set(direct) | set(writers)
    assert len(results.circuit) == min(CIRCUIT.n_direct + CIRCUIT.n_writers, len(set(direct) | set(writers)))
    assert results.direction_layers == {n.layer: nearest_direction_layer(sorted(directions), n.layer)
                                        for n in results.circuit}

    n_positions = pairs.clean.tokens.shape[1]
    at_words = position_mask(pairs.clean.positions["ADJ"], n_positions) | position_mask(pairs.clean.positions["VRB"], n_positions)
    by_head_layer = {layer: directions[resid] for layer, resid in results.direction_layers.items()}
    expected = {"full/all": patch_head_outputs(bridge, corrupted, clean, results.circuit, answers),
                "full/ADJ+VRB": patch_head_outputs(bridge, corrupted, clean, results.circuit, answers, at_words),
                "direction/all": patch_head_outputs(bridge, corrupted, clean, results.circuit, answers, None, by_head_layer),
                "direction/ADJ+VRB": patch_head_outputs(bridge, corrupted, clean, results.circuit, answers, at_words,
                                                        by_head_layer)}
    assert list(results.circuit_patch) == list(expected)
    for key, scores in expected.items():
        torch.testing.assert_close(results.circuit_patch[key], scores)


@pytest.mark.parametrize("architecture", ["gpt2", "neox", "llama"])
def test_summary_position_loop_equals_a_full_forward_patched_at_the_summary_token(circuit_runs, architecture):
    """K3's runs restart at each layer from the corrupted residual; a full corrupted forward with the
    residual at SBJ2 overwritten by the clean one gives the same scores."""
    run = circuit_runs(architecture, "last layer")
    bridge, pairs, results, n_layers = run.model.bridge, run.pairs, run.results, run.model.n_layers
    assert list(results.summary_patch) == mid_layers(n_layers)
    clean = component_cache(bridge, pairs.clean.tokens)
    rows = torch.arange(len(pairs))
    sbj2 = pairs.clean.positions["SBJ2"]
    assert torch.equal(sbj2, pairs.corrupted.positions["SBJ2"])
    for layer, scores in results.summary_patch.items():
        def at_summary(resid, hook=None, layer=layer):
            resid = resid.clone()
            resid[rows, sbj2] = clean.resid[layer][rows, sbj2].to(resid)
            return resid

        with torch.no_grad():
            logits = bridge.run_with_hooks(pairs.corrupted.tokens, fwd_hooks=[
                (hook_names.resid(n_layers, layer), at_summary)])[:, -1]
        torch.testing.assert_close(scores, sentiment_score(logits.float().cpu(), pairs.answer_ids), atol=1e-4, rtol=1e-4)
    unpatched = final_scores(bridge, component_cache(bridge, pairs.corrupted.tokens).resid[-1][:, -1], pairs.answer_ids)
    assert max(float((s - unpatched).abs().max()) for s in results.summary_patch.values()) > 1e-3


def test_receivers_fall_back_when_no_head_is_a_summary_reader(circuit_runs):
    run = circuit_runs("llama", "found")
    bridge, selection = run.model.bridge, run.selection
    settings = CircuitSettings.from_protocol(declared("K1").protocol, n_direct=2, n_writers=2)
    with _summary_readers_in(None):
        results = find_circuit(bridge, selection, run.pairs, run.directions, settings=settings)
    assert not any(r.roles for r in results.roles)
    top = results.top_heads(settings.top_heads)
    patterns = attention_patterns(bridge, selection.clean.tokens)
    sbj2 = int(selection.clean.positions["SBJ2"][0])
    to_summary = [float(patterns[n.layer][:, n.head].mean(0)[-1, sbj2]) for n in top]
    expected = [top[i] for i in sorted(range(len(top)), key=lambda i: -to_summary[i])[:settings.n_receivers]]
    assert results.receivers == expected
    assert len(results.circuit) == 4 and set(results.top_heads(2)) <= set(results.circuit)


def test_cached_stages_are_not_recomputed(circuit_runs, monkeypatch):
    run = circuit_runs("llama", "found")

    def refuse(*args, **kwargs):
        raise AssertionError("a cached stage ran the model")

    monkeypatch.setattr(circuit_module, "component_cache", refuse)
    again = find_circuit(run.model.bridge, run.selection, run.pairs, run.directions,
                         lambda name, key, compute: run.stages[name], settings=CIRCUIT)
    assert again.circuit == run.results.circuit and again.receivers == run.results.receivers
    assert again.direction_layers == run.results.direction_layers
    for key in run.results.circuit_patch:
        assert torch.equal(again.circuit_patch[key], run.results.circuit_patch[key])


def test_renderer_writes_the_section_data_and_figure(circuit_runs):
    from matplotlib.figure import Figure

    from harness.reporting.rendering import render

    run = circuit_runs("llama", "found")
    results, tiny_llama = run.results, run.model
    report = ReportBuilder(model_name="tiny-llama", settings={})
    render(results, report)
    section = report.sections["ToyMovieReview circuit by path patching (§6.4)"]
    assert f"Circuit patched for K2 (on the test pairs): {', '.join(map(str, results.circuit))}; direction: das" in section
    assert "16 train pairs, 8 of each label" in section
    assert f"chosen on the {len(run.selection)} train pairs and scored (K1–K3) on the {len(run.pairs)} test pairs" in section
    data = report.data["circuit"]
    assert set(data) == {"head_effects", "test_head_effects", "mlp_effects", "receivers", "circuit", "writer_effects",
                         "stage2_senders", "direction_layers", "roles"}
    assert "Every sender patched exactly" in section  # 4 senders (layer-0 heads), fewer than CIRCUIT.stage2_keep
    pruned = replace(results, settings=replace(results.settings, stage2_keep=3),
                     to_receivers={kind: (senders[:3], scores[:3]) for kind, (senders, scores) in results.to_receivers.items()})
    report = ReportBuilder(model_name="tiny-llama", settings={})
    render(pruned, report)
    section = report.sections["ToyMovieReview circuit by path patching (§6.4)"]
    assert "Senders patched exactly: the 3 of largest |effect| estimated by attribution patching (of 4 per input" in section
    assert report.data["circuit"]["stage2_senders"]["v"]["kept"] == 3
    assert len(data["head_effects"]) == len(data["test_head_effects"]) == tiny_llama.n_layers * tiny_llama.bridge.cfg.n_heads
    assert list(report.figures) == ["circuit_path_patching_heads.png"]
    figure = Figure()
    report.figures["circuit_path_patching_heads.png"](figure)
    shape = (tiny_llama.bridge.cfg.n_heads, tiny_llama.n_layers)
    assert [ax.images[0].get_array().shape for ax in figure.axes[:2]] == [shape, shape]


def test_without_directions_only_the_full_patch_runs(circuit_runs):
    run = circuit_runs("llama", "found")
    served = dict(run.stages)
    served.pop("circuit-patch")
    results = find_circuit(run.model.bridge, run.selection, run.pairs, {},
                           lambda name, key, compute: served[name] if name in served else compute(), settings=CIRCUIT)
    assert results.direction_layers == {} and list(results.circuit_patch) == ["full/all", "full/ADJ+VRB"]
    torch.testing.assert_close(results.circuit_patch["full/all"], run.results.circuit_patch["full/all"])


# the claims' statistics (synthetic scores) -----------------------------------------------------------

def _synthetic_paths(n: int = 10):
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 0] * (n // 2))
    signs = labels * 2.0 - 1
    clean, corrupted = 2 * signs, -2 * signs
    weights = torch.tensor([0.6, -0.3, 0.05, 0.02, 0.0])  # fraction of the gap each path carries
    scores = clean + weights[:, None] * (corrupted - clean) + 0.01 * torch.randn(5, n, generator=generator)
    return scores, clean, corrupted, labels


def test_share_of_the_top_heads_is_their_part_of_the_summed_magnitude():
    from harness.experiments.circuit import share_of
    from harness.interventions.path_patching import path_effect
    from harness.measures.statistics import bootstrap

    scores, clean, corrupted, labels = _synthetic_paths()
    magnitude = path_effect(scores, clean, corrupted, labels).abs()
    assert torch.isclose(share_of([0])(scores, clean, corrupted, labels), magnitude[0] / magnitude.sum())
    estimate = bootstrap(share_of([0, 1]), scores, clean, corrupted, labels, unit="test pairs", resamples=100)
    assert 0.9 < estimate.ci_low <= estimate.value <= estimate.ci_high <= 1


def test_named_heads_among_top_redo_the_ranking():
    from harness.experiments.circuit import named_heads_among_top

    scores, clean, corrupted, labels = _synthetic_paths()
    heads = ["0.0", "0.1", "0.2", "0.3", "1.0"]
    assert float(named_heads_among_top(heads, ("0.0", "0.3"), 2)(scores, clean, corrupted, labels)) == 1
    index = torch.randint(0, 10, (7, 10), generator=torch.Generator().manual_seed(0))
    draws = named_heads_among_top(heads, ("0.0", "0.1"), 2)(scores[..., index], clean[index], corrupted[index], labels[index])
    assert draws.tolist() == [2.0] * 7


def test_ld_ratio_is_direction_over_full_recovered():
    from harness.experiments.circuit import ld_ratio
    from harness.measures.metrics import logit_diff_recovered

    _, clean, corrupted, labels = _synthetic_paths()
    full, direction = corrupted + 0.8 * (clean - corrupted), corrupted + 0.4 * (clean - corrupted)
    assert torch.isclose(ld_ratio(direction, full, clean, corrupted, labels), torch.tensor(0.5))
    assert torch.isclose(logit_diff_recovered(full, clean, corrupted, labels), torch.tensor(80.0))


@pytest.mark.parametrize("architecture", ["gpt2", "neox"])
def test_k4_ranks_every_head_on_toy_mood_story_pairs_by_name_pair(tiny_models, architecture):
    """K4's ranking is stage 1 on ToyMoodStory's pairs (the harness call it wraps), its count of named heads
    is resampled by name pair (n = the name pairs), and its CI holds its value."""
    from harness.datasets.toy_mood_story import build_toy_mood_story
    from harness.experiments.circuit import named_heads_estimate, pair_direct_effects

    model = tiny_models[architecture]
    pairs = build_toy_mood_story(model.bridge, prepend_bos=True).pairs
    effects = pair_direct_effects(model.bridge, pairs, "stage1-mood-story")
    senders, scores = path_patch_to_logits(model.bridge, component_cache(model.bridge, pairs.clean.tokens),
                                           component_cache(model.bridge, pairs.corrupted.tokens), pairs.answer_ids)
    assert [(n.layer, n.head) for n in effects.senders] == [(n.layer, n.head) for n in senders]
    assert torch.allclose(effects.scores, scores)
    named = tuple(str(n) for n in top_heads(*effects.head_effects(), 3))  # the top 3: all among the top 4
    clusters = torch.arange(len(pairs)) // 4
    estimate = named_heads_estimate(effects, named, 4, clusters, "name pairs")
    assert estimate.value == 3 and estimate.n == len(pairs) // 4 and estimate.unit == "name pairs"
    assert estimate.ci_low <= estimate.value <= estimate.ci_high <= 3
    assert named_heads_estimate(effects, ("9.9",), 4, clusters, "name pairs").value == 0  # a head the model lacks
