"""The ToyMovieReview sentiment circuit, found by path patching (paper §6.4; §5.2 for the direction patch).

The circuit is *chosen* on one set of clean/corrupted pairs (the ToyMovieReview train pairs) and
*scored* on another (the test pairs, §2.1), so the data that picks the heads does not score them.
``find_circuit`` runs:

1. stage-1 path patching, every head and MLP → final residual at the last position
   (``harness.interventions.path_patching.path_patch_to_logits``), on the selection pairs (it ranks the heads) and on
   the test pairs (K1 scores the selection's top heads' share of the test effects);
2. head roles of the ``top_heads`` heads with the largest |selection effect|, from the selection pairs'
   clean attention patterns (``harness.experiments.head_roles``);
3. stage-2 path patching into the query, key and value inputs of the receivers: the ``n_receivers``
   first summary readers found in (2), or, if none is one, the top heads attending most from the last
   position to SBJ2 (``choose_receivers``), on a balanced subset of ``stage2_pairs`` selection pairs
   (``balanced_pairs``: stage 2 re-runs the layers after the receivers once per sender and pair).
   Every sender is first ranked by attribution patching (``harness.interventions.attribution_patching``: the
   receivers' outputs exact, the later layers linearised; one backward pass), and the exact path patch
   runs on the ``stage2_keep`` senders of largest estimated |effect| per input (``prune_senders``);
   ``stage2_keep=None`` runs it on every sender;
4. the circuit: the ``n_direct`` top stage-1 heads plus the ``n_writers`` top stage-2 head senders by
   their largest |effect| over q/k/v (``assemble_circuit``, "about 9" heads); its head outputs patched
   clean → corrupted on the *test* pairs, in full and along the sentiment direction only (at the
   residual layer nearest to the one each head writes into among the layers ``directions`` has: pass
   only directions that trained), at all positions and at ADJ+VRB only (K2). Without any direction the
   direction-only variants are not run;
5. the residual stream patched clean → corrupted at SBJ2 alone on the test pairs, every mid layer
   n/3 .. 2n/3 (K3; the layer is chosen by the claim, on other test pairs than it scores).

The numbers (``CircuitSettings``) are the K claims' declared protocol (``harness.verdicts.declared.
CIRCUIT_PROTOCOL``), passed in by the fixture.

Steps 1 (once per pair set), 3 (one per input kind), 4 and 5 are *stages*, each computed through a
``StageRunner`` (``run_stage(name, key, compute)``; ``key`` holds the pairs' tokens): the session fixture
caches each on disk by ``key`` and times it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

import torch
from jaxtyping import Bool, Float, Int
from scipy.stats import spearmanr
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.attention import attention_patterns
from harness.interventions.attribution_patching import estimate_path_to_heads
from harness.interventions.circuit_patching import patch_head_outputs
from harness.interventions.forward import block_inputs, run_from
from harness.experiments.head_roles import HeadRole, classify_heads
from harness.interventions.edit import edit_hook, full_patch, position_mask
from harness.measures.intervals import interval
from harness.measures.metrics import logit_diff_recovered, sentiment_score
from harness.measures.statistics import Estimate
from harness.interventions.path_patching import (
    INPUT_KINDS, ComponentCache, Node, component_cache, final_scores, path_effect, path_patch_to_heads,
    path_patch_to_logits,
)
from harness.datasets.prompts import PromptPairs

StageRunner = Callable[[str, tuple, Callable[[], Any]], Any]  # (stage name, key parts, compute) -> value


def run_uncached(name: str, key: tuple, compute: Callable[[], Any]) -> Any:
    """The plain ``StageRunner``: compute every stage."""
    return compute()


@dataclass(frozen=True)
class CircuitSettings:
    """The circuit's protocol (``from_protocol``: the K claims' declared one, where each number's reason is)."""

    top_heads: int  # heads whose roles are classified (K1's top-12 on gpt2-small)
    role_threshold: float  # a head's role: mean attention from its query to its key positions at least this
    n_receivers: int  # summary readers used as stage-2 receivers (the paper's 8.5, 9.2, 9.10)
    n_direct: int  # circuit = top stage-1 heads ...
    n_writers: int  # ... + top stage-2 writers ("about 9" heads)
    stage2_pairs: int  # a balanced subset of the selection pairs (the first half of each clean label)
    stage2_keep: int | None  # senders patched exactly in stage 2, per input, after ranking by AtP (None: all)
    direction_method: str  # the direction of the direction-only patch (§4's DAS)

    @classmethod
    def from_protocol(cls, protocol: Mapping, **overrides) -> "CircuitSettings":
        """The settings a protocol (``declared("K1").protocol``) names, with ``overrides`` replacing some."""
        return cls(**{f.name: protocol[f.name] for f in fields(cls)} | overrides)


@dataclass(frozen=True)
class DirectEffects:
    """Stage 1 on one set of pairs: each sender's path score per pair, with the clean/corrupted scores."""

    senders: list[Node]
    scores: Float[Tensor, "sender pair"]
    labels: Int[Tensor, "pair"]
    clean: Float[Tensor, "pair"]
    corrupted: Float[Tensor, "pair"]

    def effects(self) -> Float[Tensor, "sender"]:
        return path_effect(self.scores, self.clean, self.corrupted, self.labels)

    def head_effects(self) -> tuple[list[Node], Tensor]:
        """Effects of the heads only (MLPs dropped)."""
        return head_effects(self.senders, self.effects())

    def head_scores(self) -> tuple[list[Node], Float[Tensor, "head pair"]]:
        """The heads' per-pair scores (for a bootstrap over pairs: ``path_effect`` of resampled columns)."""
        index = [i for i, node in enumerate(self.senders) if not node.is_mlp]
        return [self.senders[i] for i in index], self.scores[index]


@dataclass(frozen=True)
class CircuitResults:
    """Everything behind claims K1–K3: stage 1 on the selection (train) and test pairs, the choices made
    on the selection pairs, and the test pairs' scores of the circuit and summary-position patches."""

    selection: DirectEffects  # stage 1 on the pairs that choose the circuit
    test: DirectEffects  # stage 1 on the pairs that score it
    roles: list[HeadRole]
    receivers: list[Node]
    to_receivers: dict[str, tuple[list[Node], Tensor]]  # kind -> (kept head senders, exact [sender, stage-2 pair])
    estimated: dict[str, tuple[list[Node], Tensor]]  # kind -> (every head sender, AtP [sender, stage-2 pair])
    stage2_pairs: Int[Tensor, "n"]  # indices of the selection pairs stage 2 uses
    circuit: list[Node]
    direction_layers: dict[int, int]  # head layer -> residual layer of the direction used ({}: no direction)
    circuit_patch: dict[str, Tensor]  # test pairs: "full/all", "full/ADJ+VRB"[, "direction/all", "direction/ADJ+VRB"]
    summary_patch: dict[int, Tensor]  # resid layer -> test-pair scores, SBJ2 patched
    n_layers: int
    n_heads: int
    settings: CircuitSettings

    @property
    def labels(self) -> Tensor:  # the test pairs' (every patch below is scored on them)
        return self.test.labels

    @property
    def clean(self) -> Tensor:
        return self.test.clean

    @property
    def corrupted(self) -> Tensor:
        return self.test.corrupted

    def head_effects(self) -> tuple[list[Node], Tensor]:
        """Stage-1 effects of the heads on the selection pairs (the ranking)."""
        return self.selection.head_effects()

    def top_heads(self, k: int) -> list[Node]:
        """The ``k`` heads of largest |effect| on the selection pairs."""
        return top_heads(*self.head_effects(), k)

    def writer_effects(self) -> tuple[list[Node], Tensor]:
        """Stage-2 head senders' largest |effect| over the query, key and value inputs (selection pairs;
        exact, over the senders kept for at least one input)."""
        s = self.selection
        return writer_effects(self.to_receivers, s.clean, s.corrupted, s.labels, self.stage2_pairs)

    def attribution_agreement(self, kind: str) -> float:
        """Spearman's ρ between AtP's and the exact |effect| over the senders kept for input ``kind``."""
        s, rows = self.selection, self.stage2_pairs
        effect = lambda scores: path_effect(scores, s.clean[rows], s.corrupted[rows], s.labels[rows]).abs()
        kept, exact = self.to_receivers[kind]
        every, estimates = self.estimated[kind]
        estimated = estimates[[every.index(node) for node in kept]]
        return float(spearmanr(effect(exact).numpy(), effect(estimated).numpy()).statistic)


def head_effects(senders: list[Node], effects: Float[Tensor, "sender"]) -> tuple[list[Node], Tensor]:
    """The heads among ``senders`` (MLPs dropped) and their effects."""
    index = [i for i, node in enumerate(senders) if not node.is_mlp]
    return [senders[i] for i in index], effects[index]


def top_heads(heads: list[Node], effects: Float[Tensor, "head"], k: int) -> list[Node]:
    """The ``k`` heads with the largest |effect|, largest first."""
    return [heads[i] for i in effects.abs().argsort(descending=True)[:k].tolist()]


def writer_effects(
    to_receivers: dict[str, tuple[list[Node], Tensor]], clean: Tensor, corrupted: Tensor, labels: Tensor,
    rows: Int[Tensor, "n"],
) -> tuple[list[Node], Tensor]:
    """Each stage-2 sender's largest |effect| over the receiver inputs where it was patched (scores on
    pairs ``rows``), senders in layer-head order."""
    largest: dict[Node, float] = {}
    for senders, scores in to_receivers.values():
        for node, effect in zip(senders, path_effect(scores, clean[rows], corrupted[rows], labels[rows]).abs().tolist()):
            largest[node] = max(effect, largest.get(node, 0.0))
    senders = sorted(largest)
    return senders, torch.tensor([largest[node] for node in senders])


def share_of(top: list[int]):
    """K1's statistic: the share of the summed |path effect| over heads carried by the heads ``top``
    (rows of ``scores`` [head, (resamples,) pair]); for ``harness.measures.statistics.bootstrap`` over pairs."""
    def statistic(scores, clean, corrupted, labels):
        magnitude = path_effect(scores, clean, corrupted, labels).abs()  # [head, *resamples]
        return magnitude[top].sum(0) / magnitude.sum(0)
    return statistic


def named_heads_among_top(heads: list[str], named: tuple[str, ...], k: int):
    """K1.paper_heads's statistic: how many of ``named`` heads are among the ``k`` of largest |path
    effect| (the ranking redone on each resample of pairs)."""
    is_named = torch.tensor([name in named for name in heads])

    def statistic(scores, clean, corrupted, labels):
        magnitude = path_effect(scores, clean, corrupted, labels).abs()
        return is_named[magnitude.topk(k, dim=0).indices].sum(0).double()
    return statistic


def pair_direct_effects(bridge, pairs: PromptPairs, name: str, run_stage: StageRunner = run_uncached) -> DirectEffects:
    """Stage 1 alone on ``pairs`` (K4: ToyMoodStory's), one stage ``name`` of ``run_stage``."""
    runs = _Runs(bridge, pairs)
    return direct_effects(run_stage(name, pairs_key(pairs), lambda: stage1(bridge, *runs(), pairs.answer_ids)),
                          pairs.clean.labels)


def named_heads_estimate(effects: DirectEffects, named: tuple[str, ...], k: int, clusters: Tensor,
                         unit: str) -> Estimate:
    """K4: how many ``named`` heads are among the top ``k`` by |path effect|, with its percentile CI over
    ``clusters`` of pairs resampled (each keeps its pairs; the ranking redone in each resample)."""
    heads, scores = effects.head_scores()
    return interval(named_heads_among_top([str(n) for n in heads], named, k), scores, effects.clean,
                    effects.corrupted, effects.labels, unit=unit, method="percentile", clusters=clusters)


def ld_ratio(direction, full, clean, corrupted, labels):
    """K2.direction's statistic: % LD recovered by the direction-only patch / by the full patch (paired:
    the same pairs in numerator and denominator)."""
    return logit_diff_recovered(direction, clean, corrupted, labels) / logit_diff_recovered(full, clean, corrupted, labels)


def balanced_pairs(labels: Int[Tensor, "pair"], n: int) -> Int[Tensor, "n"]:
    """The first ``n // 2`` pairs of each clean label, in order."""
    return torch.cat([(labels == label).nonzero().flatten()[: n // 2] for label in (1, 0)]).sort().values


def choose_receivers(
    roles: list[HeadRole], top: list[Node], patterns: dict[int, Float[Tensor, "batch head q k"]],
    summary_position: int, n: int,
) -> list[Node]:
    """The first ``n`` summary readers among ``roles``; if there is none, the ``n`` heads of ``top``
    with the largest mean attention from the last position to ``summary_position`` (SBJ2)."""
    readers = [Node(r.layer, r.head) for r in roles if "summary reader" in r.roles]
    if not readers:
        readers = sorted(top, key=lambda n: -float(patterns[n.layer][:, n.head].mean(0)[-1, summary_position]))
    return readers[:n]


def assemble_circuit(direct: list[Node], writers: list[Node], writer_effect: Float[Tensor, "writer"],
                     size: int) -> list[Node]:
    """``direct`` plus the writers by decreasing effect, skipping heads already in, up to ``size`` heads; sorted."""
    circuit = list(direct)
    for i in writer_effect.argsort(descending=True).tolist():
        if len(circuit) == size:
            break
        if writers[i] not in circuit:
            circuit.append(writers[i])
    return sorted(circuit)


def nearest_direction_layer(available: list[int], head_layer: int) -> int:
    """The fitted residual layer nearest to the one the head writes into (boundary head_layer + 1);
    the lower one on a tie."""
    return min(available, key=lambda layer: (abs(layer - (head_layer + 1)), layer))


def direction_layers(circuit: list[Node], available: list[int]) -> dict[int, int]:
    """Head layer → the fitted residual layer whose direction patches that layer's heads."""
    return {n.layer: nearest_direction_layer(sorted(available), n.layer) for n in circuit}


def mid_layers(n_layers: int) -> list[int]:
    """Residual boundaries n/3 .. 2n/3 (K3)."""
    return list(range(n_layers // 3, 2 * n_layers // 3 + 1))


def stage1(bridge, clean: ComponentCache, corrupted: ComponentCache, answer_ids: Tensor) -> dict:
    """Stage 1's scores with the clean and corrupted scores, senders as (layer, head) (cacheable)."""
    senders, scores = path_patch_to_logits(bridge, clean, corrupted, answer_ids)
    return {"senders": [(n.layer, n.head) for n in senders], "scores": scores,
            "clean": final_scores(bridge, clean.resid[-1][:, -1], answer_ids),
            "corrupted": final_scores(bridge, corrupted.resid[-1][:, -1], answer_ids)}


def direct_effects(stage: dict, labels: Tensor) -> DirectEffects:
    return DirectEffects([Node(*n) for n in stage["senders"]], stage["scores"], labels, stage["clean"],
                         stage["corrupted"])


def prune_senders(senders: list[Node], estimated_effect: Float[Tensor, "sender"], keep: int | None) -> list[Node]:
    """The ``keep`` senders of largest estimated |effect|, in layer-head order (all if ``keep`` is None)."""
    if keep is None or keep >= len(senders):
        return list(senders)
    return sorted(senders[i] for i in estimated_effect.abs().argsort(descending=True)[:keep].tolist())


def stage2(bridge, clean: ComponentCache, corrupted: ComponentCache, receivers: list[Node], kind: str,
           answer_ids: Tensor, reference: tuple[Tensor, Tensor, Tensor], keep: int | None) -> dict:
    """Stage 2 into the receivers' ``kind`` input (cacheable; senders as (layer, head)): AtP's estimate
    for every head sender, the exact scores for the ``keep`` it ranks highest. ``reference``: the
    pairs' (clean scores, corrupted scores, labels), to rank by effect."""
    every, estimates = estimate_path_to_heads(bridge, clean, corrupted, receivers, kind, answer_ids, heads_only=True)
    kept = prune_senders(every, path_effect(estimates, *reference), keep)
    _, scores = path_patch_to_heads(bridge, clean, corrupted, receivers, kind, answer_ids, senders=kept)
    as_pairs = lambda nodes: [(n.layer, n.head) for n in nodes]
    return {"senders": as_pairs(kept), "scores": scores, "estimated_senders": as_pairs(every), "estimates": estimates}


def patch_circuit(
    bridge, clean: ComponentCache, corrupted: ComponentCache, circuit: list[Node], answer_ids: Tensor,
    masks: dict[str, Bool[Tensor, "batch pos"] | None], directions: dict[int, Float[Tensor, "d_model"]] | None,
) -> dict[str, Tensor]:
    """K2: scores of the corrupted run with the circuit's head outputs patched from clean, ``full`` or
    along ``directions`` only (not run when ``directions`` is None), at the positions of each mask: keys
    ``"{variant}/{mask name}"``."""
    variants = ("full",) if directions is None else ("full", "direction")
    return {f"{variant}/{where}": patch_head_outputs(bridge, corrupted, clean, circuit, answer_ids, mask,
                                                      directions if variant == "direction" else None)
            for variant in variants for where, mask in masks.items()}


def patch_summary_position(
    bridge, clean: ComponentCache, corrupted: ComponentCache, summary: Bool[Tensor, "batch pos"],
    layers: list[int], answer_ids: Tensor,
) -> dict[int, Tensor]:
    """K3: scores of the corrupted run with the residual at the ``summary`` positions set to clean, at
    each boundary of ``layers`` (one run per layer)."""
    n_layers = bridge.cfg.n_layers
    out = {}
    for layer in layers:
        hook = edit_hook(full_patch(clean.resid[layer]), summary)
        with torch.no_grad():
            logits = run_from(bridge, block_inputs(corrupted.resid, layer), layer,
                              [(hook_names.resid(n_layers, layer), hook)])
        out[layer] = sentiment_score(logits, answer_ids)
    return out


class _Runs:
    """The clean and corrupted component caches of one pair set, made only when a stage is computed."""

    def __init__(self, bridge, pairs: PromptPairs):
        self.bridge, self.pairs, self._runs = bridge, pairs, []

    def __call__(self) -> list[ComponentCache]:
        if not self._runs:
            self._runs.extend([component_cache(self.bridge, self.pairs.clean.tokens),
                               component_cache(self.bridge, self.pairs.corrupted.tokens)])
        return self._runs


def pairs_key(pairs: PromptPairs) -> tuple:
    return (pairs.clean.tokens, pairs.corrupted.tokens, pairs.answer_ids)


def find_circuit(
    bridge, selection_pairs: PromptPairs, test_pairs: PromptPairs, directions: dict[int, Float[Tensor, "d_model"]],
    run_stage: StageRunner = run_uncached, *, settings: CircuitSettings,
) -> CircuitResults:
    """Steps 1–5 of the module docstring: chosen on ``selection_pairs``, scored on ``test_pairs``;
    ``directions`` are the sentiment directions by residual layer (those of ``settings.direction_method``
    at the layers where it trained; empty: no direction-only patch)."""
    answers = test_pairs.answer_ids
    selection_runs, test_runs = _Runs(bridge, selection_pairs), _Runs(bridge, test_pairs)
    selection_key, test_key = pairs_key(selection_pairs), pairs_key(test_pairs)

    chosen = direct_effects(run_stage("stage1-selection", selection_key,
                                      lambda: stage1(bridge, *selection_runs(), selection_pairs.answer_ids)),
                            selection_pairs.clean.labels)
    scored = direct_effects(run_stage("stage1-test", test_key, lambda: stage1(bridge, *test_runs(), answers)),
                            test_pairs.clean.labels)
    heads, effects = chosen.head_effects()

    positions = selection_pairs.clean.positions
    patterns = attention_patterns(bridge, selection_pairs.clean.tokens)
    top = top_heads(heads, effects, settings.top_heads)
    roles = classify_heads(patterns, positions, [(n.layer, n.head) for n in top], settings.role_threshold)
    receivers = choose_receivers(roles, top, patterns, int(positions["SBJ2"][0]), settings.n_receivers)

    receivers_key = [(n.layer, n.head) for n in receivers]
    rows = balanced_pairs(chosen.labels, settings.stage2_pairs)
    reference = (chosen.clean[rows], chosen.corrupted[rows], chosen.labels[rows])
    to_receivers, estimated = {}, {}
    for kind in INPUT_KINDS:
        compute = lambda kind=kind: stage2(bridge, *(run.rows(rows) for run in selection_runs()), receivers, kind,
                                           selection_pairs.answer_ids, reference, settings.stage2_keep)
        stage = run_stage(f"stage2-{kind}", (*selection_key, receivers_key, rows, settings.stage2_keep), compute)
        to_receivers[kind] = ([Node(*n) for n in stage["senders"]], stage["scores"])
        estimated[kind] = ([Node(*n) for n in stage["estimated_senders"]], stage["estimates"])

    writers, writer_effect = writer_effects(to_receivers, chosen.clean, chosen.corrupted, chosen.labels, rows)
    circuit = assemble_circuit(top_heads(heads, effects, settings.n_direct), writers, writer_effect,
                               settings.n_direct + settings.n_writers)
    layers = direction_layers(circuit, list(directions)) if directions else {}
    head_directions = {layer: directions[resid] for layer, resid in layers.items()}
    test_positions = test_pairs.clean.positions
    n_positions = test_pairs.clean.tokens.shape[1]
    masks = {"all": None, "ADJ+VRB": position_mask(test_positions["ADJ"], n_positions)
             | position_mask(test_positions["VRB"], n_positions)}
    circuit_key = (*test_key, [(n.layer, n.head) for n in circuit], head_directions, masks)
    circuit_patch = run_stage("circuit-patch", circuit_key,
                              lambda: patch_circuit(bridge, *test_runs(), circuit, answers, masks, head_directions or None))

    summary_layers = mid_layers(bridge.cfg.n_layers)
    summary = position_mask(test_positions["SBJ2"], n_positions)
    summary_patch = run_stage("summary-patch", (*test_key, summary_layers, summary),
                              lambda: patch_summary_position(bridge, *test_runs(), summary, summary_layers, answers))
    return CircuitResults(
        selection=chosen, test=scored, roles=roles, receivers=receivers, to_receivers=to_receivers, estimated=estimated,
        stage2_pairs=rows, circuit=circuit, direction_layers=layers, circuit_patch=circuit_patch,
        summary_patch=summary_patch, n_layers=bridge.cfg.n_layers, n_heads=bridge.cfg.n_heads, settings=settings,
    )
