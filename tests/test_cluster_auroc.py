"""harness.measures.cluster_auroc: the AUROC of clustered units under cluster draw counts.

- with every count 1 it is sklearn's ``roc_auc_score`` of the units (ties counted half);
- under any draw counts it is the AUROC of the units repeated as often as their cluster is drawn
  (``correlation.auroc_of_counts``, which does the same one row at a time), for every scoring of a batch,
  whether clusters hold one label or both, with long runs of ties across block edges;
- a row that draws no positive (or no negative) cluster is undefined (NaN); bad inputs are refused;
- ``left_out`` is the AUROC with one draw of a cluster taken out, and ``jackknife_se`` over it is
  ``intervals.jackknife_se`` of the row's drawn units left out one by one; ``left_out_ceiling`` bounds them.
"""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import roc_auc_score

from harness.datasets.lexicon import NEGATIVE, POSITIVE
from harness.experiments.correlation import auroc_of_counts
from harness.measures import intervals
from harness.measures.cluster_auroc import jackknife_se, pair_counts


def _units(n: int, clusters: int, seed: int, mixed: bool):
    generator = torch.Generator().manual_seed(seed)
    cluster = torch.randint(0, clusters, (n,), generator=generator)
    positive = cluster % 3 == 0
    if mixed:
        positive = positive ^ (torch.rand(n, generator=generator) < 0.2)
    values = torch.randint(0, 25, (3, n), generator=generator).double()  # ties within and across blocks
    values[:, :150] = 7.0  # a run of ties longer than a block
    return values, positive, cluster, generator


@pytest.mark.parametrize("mixed", [False, True])
def test_every_count_one_is_the_units_auroc(mixed):
    values, positive, cluster, _ = _units(400, 50, 0, mixed)
    pairs = pair_counts(values, positive, cluster)
    areas = pairs.auroc(torch.ones(1, 50))[0]
    assert areas.shape == (3,)
    for row, area in zip(values, areas):
        assert float(area) == pytest.approx(roc_auc_score(positive.numpy(), row.numpy()), abs=1e-12)


@pytest.mark.parametrize("mixed", [False, True])
def test_draw_counts_weight_each_cluster(mixed):
    values, positive, cluster, generator = _units(500, 60, 1, mixed)
    pairs = pair_counts(values.reshape(3, 1, -1), positive, cluster)  # batch axes kept
    counts = torch.randint(0, 4, (30, 60), generator=generator).double()
    areas = pairs.auroc(counts)
    assert areas.shape == (30, 3, 1)
    labels = torch.where(positive, POSITIVE, NEGATIVE)
    for b, row in enumerate(values):
        assert torch.allclose(areas[:, b, 0], auroc_of_counts(row, labels, cluster)(counts), atol=1e-12, equal_nan=True)


def test_rows_without_a_class_are_undefined_and_bad_inputs_refused():
    values = torch.tensor([0.1, 0.4, 0.35, 0.8])
    positive = torch.tensor([False, False, True, True])
    pairs = pair_counts(values, positive, torch.tensor([0, 0, 1, 1]))
    areas = pairs.auroc(torch.tensor([[1.0, 1.0], [0.0, 2.0], [3.0, 0.0]]))
    assert float(areas[0]) == pytest.approx(0.75) and areas[1:].isnan().all()
    with pytest.raises(ValueError, match="positive and negative"):
        pair_counts(values, torch.ones(4, dtype=torch.bool), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="finite"):
        pair_counts(torch.tensor([0.1, float("nan"), 0.2, 0.3]), positive, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="same units"):
        pair_counts(values, positive, torch.tensor([0, 1, 1]))


@pytest.mark.parametrize("mixed", [False, True])
def test_left_out_is_the_auroc_without_one_draw_and_its_jackknife_the_libraries(mixed):
    values, positive, cluster, generator = _units(300, 30, 2, mixed)
    pairs = pair_counts(values, positive, cluster)
    counts = torch.randint(0, 3, (6, 32), generator=generator).double()  # ids 30, 31: outside W
    counts[:, cluster[0]] = torch.clamp(counts[:, cluster[0]], min=1)
    left = pairs.left_out(counts)
    assert left.shape == (6, 32, 3)
    for row in range(6):
        for k in range(32):
            if counts[row, k] == 0:
                continue
            fewer = counts[row:row + 1].clone()
            fewer[0, k] -= 1
            assert torch.allclose(left[row, k], pairs.auroc(fewer)[0], atol=1e-12, equal_nan=True)
        # the jackknife over the row's drawn units, one by one, as intervals.studentized does it
        drawn = torch.repeat_interleave(torch.arange(32), counts[row].long())
        each = torch.stack([pairs.auroc(torch.bincount(drawn[torch.arange(len(drawn)) != i], minlength=32)[None].double())[0]
                            for i in range(len(drawn))])
        assert torch.allclose(jackknife_se(left, counts)[row], intervals.jackknife_se(each), atol=1e-12)


def test_left_out_ceiling_bounds_every_leave_one_out_value():
    values, positive, cluster, generator = _units(300, 30, 3, True)
    pairs = pair_counts(values, positive, cluster)
    counts = torch.randint(0, 3, (20, 30), generator=generator).double()
    counts[:, :3] += 1
    bound = pairs.left_out_ceiling(counts)[:, None] * pairs.auroc(counts)  # [r, scorings]
    left = pairs.left_out(counts)  # [r, clusters, scorings]
    drawn = counts > 0
    assert (pairs.left_out_ceiling(counts) >= 1).all()
    assert (left[drawn] <= bound[:, None, :].expand_as(left)[drawn] + 1e-12).all()
