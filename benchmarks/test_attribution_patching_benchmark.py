"""pytest-benchmark: attribution patching (AtP) of every node against exact activation patching.

``harness.interventions.attribution_patching`` on the embedded model and the first ``N_PAIRS`` ToyMovieReview test pairs,
noising (the clean run with one node's activation from the corrupted run). Nodes: every attention head
(``hook_z``, all positions), every MLP and every residual position (boundaries 0..30, positions from the
adjective on: before it the two prompts are the same).

- AtP of every node (270 heads, 30 MLPs, 31 × 13 residual positions): one clean forward and backward and
  the corrupted run's cache; the fastest of 3 rounds (the least disturbed by the machine's other work).
- The exact patch, batched (``exact_activation_patching``), timed once, both runs' caches included, for the
  heads and MLPs of every ``LAYER_STEP``-th layer and the positions of every ``BOUNDARY_STEP``-th boundary
  (54 heads, 6 MLPs, 4 × 13 residual positions), to keep it short in the README's test command: every node
  would take minutes (a run restarted at layer 0 costs a full forward of 40 head and MLP rows, or of a
  boundary's 52 position rows, later layers less in proportion).
- On the exact side's nodes (``attribution_agreement``): Spearman's ρ between the signed node effects and
  recall@k of the exact top k by |effect| among AtP's top k (k = ``TOP_K``), per node kind. They are stored in
  the benchmark JSON (``extra_info``) and printed, not asserted: one measurement does not tell a threshold.
- Asserted: both sides agree on the clean and corrupted scores, and the exact side takes at least
  ``MIN_RATIO`` × AtP's time although it covers fewer nodes (the per-node ratio is stored too).

The report's benchmark table has the figures of each run.
"""

from __future__ import annotations

import time

import torch

from harness.interventions.attribution_patching import (
    NODE_KINDS, attribution_agreement, estimate_activation_patching, exact_activation_patching,
)
from harness.interventions.path_patching import component_cache

N_PAIRS = 4
LAYER_STEP = 5
BOUNDARY_STEP = 10
TOP_K = {"heads": 10, "mlps": 5, "resid": 10}
MIN_RATIO = 5


def test_benchmark_attribution_patching_vs_exact(benchmark, model, toy_movie_review):
    bridge, pairs = model.bridge, toy_movie_review.test_pairs
    clean_tokens, corrupted_tokens = pairs.clean.tokens[:N_PAIRS], pairs.corrupted.tokens[:N_PAIRS]
    layers = tuple(range(0, model.n_layers, LAYER_STEP))
    boundaries = tuple(range(0, model.n_layers + 1, BOUNDARY_STEP))

    def attribution():
        return estimate_activation_patching(bridge, clean_tokens, component_cache(bridge, corrupted_tokens),
                                            pairs.answer_ids)

    def exact():
        clean, corrupted = component_cache(bridge, clean_tokens), component_cache(bridge, corrupted_tokens)
        return exact_activation_patching(bridge, clean, corrupted, pairs.answer_ids, layers, boundaries)

    estimate = benchmark.pedantic(attribution, rounds=3, iterations=1)
    atp_seconds = benchmark.stats.stats.min
    start = time.perf_counter()
    reference = exact()
    exact_seconds = time.perf_counter() - start
    for run in ("clean", "corrupted"):
        torch.testing.assert_close(getattr(estimate, run), getattr(reference, run), atol=1e-3, rtol=1e-3)

    agreement = attribution_agreement(estimate.restricted(layers, boundaries), reference, TOP_K)
    count = lambda scores: sum(len(effects) for effects in scores.effects().values())
    ratio = exact_seconds / atp_seconds
    per_node = ratio * count(estimate) / count(reference)
    benchmark.extra_info.update({
        "pairs": N_PAIRS, "atp_nodes": count(estimate), "exact_nodes": count(reference),
        "exact_layers": list(layers), "exact_boundaries": list(boundaries), "positions": list(estimate.positions),
        "atp_seconds": atp_seconds, "exact_seconds": exact_seconds, "exact_over_atp": ratio,
        "exact_over_atp_per_node": per_node, "target": f"exact_over_atp >= {MIN_RATIO}",
        **{f"{kind}_{name}": value for kind in NODE_KINDS for name, value in agreement[kind].items()},
        "top_k": TOP_K,
    })
    print(f"\nAtP of {count(estimate)} nodes: {atp_seconds:.1f} s; exact patch of {count(reference)}: "
          f"{exact_seconds:.0f} s ({ratio:.0f}x, {per_node:.0f}x per node; target >= {MIN_RATIO}x)")
    for kind in NODE_KINDS:
        print(f"  {kind}: Spearman {agreement[kind]['spearman']:.3f}, "
              f"recall@{TOP_K[kind]} {agreement[kind]['recall']:.2f}")
    assert ratio >= MIN_RATIO
