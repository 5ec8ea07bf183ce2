"""The random-direction null of directional patching (P2.random, P5.random; issue 25, item 4).

- ``null_directions`` is seeded, one unit vector per (direction, layer); ``null_layers`` keeps the fitted
  layers at the declared relative depth or deeper;
- ``null_patching_sweep`` patches every null direction exactly as ``directional_patching_sweep`` patches a
  method's direction (same scores, with the ToyMovieReview key/value prefix), in chunks of rows (SST's
  length groups: ``tests/test_sst_prompts.py``);
- ``NullPatching.largest_abs`` is each direction's largest |% LD recovered| over the layers, on the pairs
  of each resample row;
- ``null_quantile`` takes the quantile over directions on all pairs; its CI resamples the directions too
  (wider than a pairs-only bootstrap when the directions differ and the pairs barely do), seeded.
"""

from __future__ import annotations

import pytest
import torch

from harness.datasets.toy_movie_review import build_toy_movie_review
from harness.interventions import sweep
from harness.interventions.forward import residual_stream
from harness.interventions.prefix_cache import PrefixKV
from harness.interventions.sweep import (NullPatching, directional_patching_sweep, null_directions, null_layers,
                                         null_patching_sweep)
from harness.measures.metrics import logit_diff_recovered
from harness.measures.null_quantile import direction_indices, null_quantile
from harness.measures.statistics import bootstrap, resample_indices, seeded


def test_null_directions_are_seeded_unit_vectors_per_layer():
    drawn = null_directions(5, [2, 4, 6], 8, seed=1)
    assert drawn.shape == (5, 3, 8)
    torch.testing.assert_close(drawn.norm(dim=-1), torch.ones(5, 3))
    assert torch.equal(drawn, null_directions(5, [2, 4, 6], 8, seed=1))
    assert not torch.equal(drawn, null_directions(5, [2, 4, 6], 8, seed=2))


def test_null_layers_keep_the_fitted_layers_from_the_declared_depth():
    assert null_layers((0, 3, 6, 9, 12), 12, 0.5) == [6, 9, 12]
    assert null_layers(range(31)[::3], 30, 0.5) == [15, 18, 21, 24, 27, 30]
    assert null_layers((0, 1), 12, 0.5) == []


@pytest.mark.parametrize("rows_per_run", [4, 1024])
def test_the_null_is_patched_exactly_like_a_method(gpt2, monkeypatch, rows_per_run):
    """ToyMovieReview test pairs with the shared key/value prefix: every null direction's scores equal
    the sweep's scores for the same direction as a method, whatever the chunking of rows."""
    monkeypatch.setattr(sweep, "_ROWS_PER_RUN", rows_per_run)
    bridge = gpt2.bridge
    pairs = build_toy_movie_review(bridge, prepend_bos=True).test_pairs
    clean, corrupted = residual_stream(bridge, pairs.clean.tokens), residual_stream(bridge, pairs.corrupted.tokens)
    prefix = PrefixKV.shared(bridge, pairs.clean.tokens, pairs.corrupted.tokens, int(pairs.clean.positions["ADJ"].min()))
    layers = [0, 2]
    null = null_directions(3, layers, bridge.cfg.d_model, seed=0)
    found = null_patching_sweep(bridge, clean, corrupted, pairs.clean.labels, pairs.answer_ids, null, layers,
                                prefix=prefix)
    as_methods = {f"k{k}": {layer: null[k, i] for i, layer in enumerate(layers)} for k in range(3)}
    reference = directional_patching_sweep(bridge, clean, corrupted, pairs.clean.labels, pairs.answer_ids, as_methods,
                                           prefix=prefix)
    assert found.patched.shape == (3, 2, len(pairs.clean.labels)) and found.layers == layers
    torch.testing.assert_close(found.clean, reference.clean)
    torch.testing.assert_close(found.corrupted, reference.corrupted)
    for k in range(3):
        for i, layer in enumerate(layers):
            torch.testing.assert_close(found.patched[k, i], reference.patched[f"k{k}", layer], atol=1e-5, rtol=0)


def synthetic_null(n: int = 20, count: int = 7, layers: int = 3, spread: float = 0.3) -> NullPatching:
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 0] * (n // 2))
    clean, corrupted = 2 * (labels * 2.0 - 1), -2 * (labels * 2.0 - 1)
    patched = corrupted + spread * torch.randn(count, layers, n, generator=generator)
    return NullPatching(labels, clean, corrupted, list(range(layers)), patched)


def test_largest_abs_is_each_directions_max_over_layers_on_each_resample():
    null = synthetic_null()
    index = torch.randint(0, 20, (5, 20), generator=torch.Generator().manual_seed(1))
    found = null.largest_abs(index)
    assert found.shape == (5, 7)
    for row in range(5):
        for k in range(7):
            by_layer = torch.stack([logit_diff_recovered(null.patched[k, layer, index[row]], null.clean[index[row]],
                                                         null.corrupted[index[row]], null.labels[index[row]])
                                    for layer in range(3)])
            torch.testing.assert_close(found[row, k], by_layer.abs().max())
    assert "over the 7 directions; 20 pairs" in null.describe((0.5, 0.975))


def test_null_quantile_is_the_quantile_over_directions_with_both_factors_resampled():
    null = synthetic_null()
    each = null.largest_abs(torch.arange(20)[None])[0]
    with seeded(0):
        estimate = null_quantile(null.largest_abs, 20, 0.5, unit="pairs")
        again = null_quantile(null.largest_abs, 20, 0.5, unit="pairs")
    assert estimate == again and estimate.n == 20 and estimate.resamples == 1000
    assert estimate.value == pytest.approx(float(torch.quantile(each.double(), 0.5)))
    assert estimate.ci_low <= estimate.value <= estimate.ci_high and "two-way" in estimate.method
    with seeded(0):  # the directions' indices are seeded apart from the pairs'
        assert direction_indices(7, 10).shape == (10, 7)
        assert not torch.equal(direction_indices(20, 10), resample_indices(20, 10))


def test_resampling_the_directions_widens_the_ci_when_they_differ():
    """Directions far apart, pairs alike: a pairs-only bootstrap of the median is narrow, the two-way one
    spans the directions' spread (the null's own sampling variation)."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 0] * 10)
    clean, corrupted = 2 * (labels * 2.0 - 1), -2 * (labels * 2.0 - 1)
    shift = torch.linspace(0.0, 1.0, 9)[:, None, None] * (clean - corrupted)  # direction k recovers 0..100%
    patched = corrupted + shift + 0.01 * torch.randn(9, 1, 20, generator=generator)
    null = NullPatching(labels, clean, corrupted, [0], patched)
    with seeded(0):
        two_way = null_quantile(null.largest_abs, 20, 0.5, unit="pairs")
        pairs_only = bootstrap(lambda index: torch.quantile(null.largest_abs(index[None] if index.dim() == 1 else index)
                                                            .double(), 0.5, dim=-1).squeeze(),
                               torch.arange(20), unit="pairs")
    assert two_way.value == pytest.approx(50.0, abs=1.0)
    assert pairs_only.ci_high - pairs_only.ci_low < 2.0 < 20.0 < two_way.ci_high - two_way.ci_low
