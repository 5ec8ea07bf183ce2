"""pytest-benchmark measurements on the embedded model (the issue's performance targets).

- building the activation cache: one forward pass with every residual boundary saved;
- the directional-patching layer sweep (6 methods, the first ``N_PAIRS`` ToyMovieReview test pairs,
  every 8th layer), and in
  the same run, as ratios: the sweep against the plain (unhooked) forward passes of the same batches,
  and against looping TransformerLens's own ``transformer_lens.patching.generic_activation_patch``
  over the same patches (one forward per method and layer). The three give the same numbers (asserted);
  the ratios are printed and stored in the benchmark JSON (``extra_info``), and asserted as regression
  guards with room for one round's timing noise: sweep / plain forwards <= 1.0 (its floor is about 0.5,
  the mean share of layers after the patched one) and TransformerLens loop / sweep >= 1.3. A ratio of 3
  for the second is out of reach: the loop's forwards cost what the plain forwards do, so 3x would need
  the sweep at a third of them.
"""

from __future__ import annotations

import time

import pandas as pd
import torch
from transformer_lens.patching import generic_activation_patch

from harness.interventions.forward import residual_stream
from harness.interventions.edit import directional_patch
from harness.measures.metrics import sentiment_score
from harness.interventions.sweep import directional_patching_sweep

LAYER_STEP = 8
N_PAIRS = 8  # the claims' sweep runs 27; the ratios below do not depend on the batch size much
MAX_SWEEP_OVER_PLAIN = 1.0
MIN_LOOP_OVER_SWEEP = 1.3


def _timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def test_benchmark_activation_cache(benchmark, model, toy_movie_review):
    tokens = toy_movie_review.test.tokens
    resid = benchmark.pedantic(residual_stream, args=(model.bridge, tokens), rounds=3, iterations=1)
    assert resid.shape[:2] == (model.n_layers + 1, len(tokens))


def test_benchmark_directional_patching_sweep(benchmark, model, toy_movie_review, toy_activations, toy_directions):
    bridge, pairs = model.bridge, toy_movie_review.test_pairs
    layers = list(range(0, model.n_layers, LAYER_STEP))  # resid_pre boundaries, which the TL utility can index
    directions = {m: {layer: by_layer[layer] for layer in layers if layer in by_layer} for m, by_layer in toy_directions.items()}
    clean, corrupted = (resid[:, :N_PAIRS] for resid in toy_activations["test"].pairs(pairs))
    answers, labels = pairs.answer_ids, pairs.clean.labels[:N_PAIRS]
    clean_tokens, corrupted_tokens = pairs.clean.tokens[:N_PAIRS], pairs.corrupted.tokens[:N_PAIRS]

    results = benchmark.pedantic(directional_patching_sweep, args=(bridge, clean, corrupted, labels, answers, directions),
                                 rounds=1, iterations=1)
    sweep_seconds = benchmark.stats.stats.mean

    def plain_forwards():
        with torch.no_grad():
            for layer in layers:
                n_methods = sum(layer in d for d in directions.values())
                bridge(corrupted_tokens.repeat(n_methods, 1), logits_to_keep=1)
            for tokens in (clean_tokens, corrupted_tokens):  # the two unpatched runs
                bridge(tokens, logits_to_keep=1)

    _, plain_seconds = _timed(plain_forwards)

    def transformer_lens_loop():
        _, clean_cache = bridge.run_with_cache(clean_tokens)
        values = {}
        for method, by_layer in directions.items():
            def setter(corrupted_activation, index, clean_activation, by_layer=by_layer):
                return directional_patch(by_layer[index[0]], clean_activation)(corrupted_activation)

            patched = generic_activation_patch(
                bridge, corrupted_tokens, clean_cache,
                lambda logits: sentiment_score(logits[:, -1], answers), setter, "resid_pre",
                index_df=pd.DataFrame({"layer": list(by_layer)}), reduce="none",
            )
            for row, layer in enumerate(by_layer):
                values[method, layer] = patched.values[row]
        return values

    with torch.no_grad():
        reference, loop_seconds = _timed(transformer_lens_loop)
    for key, score in results.patched.items():
        torch.testing.assert_close(score, reference[key].float().cpu(), atol=1e-3, rtol=1e-4)

    ratios = {
        "sweep_seconds": sweep_seconds,
        "plain_forward_seconds": plain_seconds,
        "transformer_lens_loop_seconds": loop_seconds,
        "sweep_over_plain_forwards": sweep_seconds / plain_seconds,
        "transformer_lens_loop_over_sweep": loop_seconds / sweep_seconds,
        "targets": f"sweep_over_plain_forwards <= {MAX_SWEEP_OVER_PLAIN}; "
                   f"transformer_lens_loop_over_sweep >= {MIN_LOOP_OVER_SWEEP} (asserted)",
    }
    benchmark.extra_info.update(ratios)
    print("\n" + "\n".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in ratios.items()))
    assert ratios["sweep_over_plain_forwards"] <= MAX_SWEEP_OVER_PLAIN, ratios
    assert ratios["transformer_lens_loop_over_sweep"] >= MIN_LOOP_OVER_SWEEP, ratios
