"""One-dimensional DAS (harness.das, paper §4) on the tiny GPT-2 with ToyMovieReview train pairs.

- ``fit`` returns the estimator, a unit ``direction_``, one summed loss per epoch and the best epoch;
- it is deterministic (seeded rotation and batch order) and leaves the model's weights alone;
- the objective's loss is 1 when the patch changes nothing (source = corrupted activation) and its
  value does not depend on the direction's sign;
- without an objective ``fit`` raises.
"""

from __future__ import annotations

import pytest
import torch

from harness.das import DASObjective, DistributedAlignmentSearch, select_layers
from harness.forward import block_inputs, run_from
from harness.metrics import sentiment_score
from harness.models import weights_hash

EPOCHS, BATCH = 3, 16


@pytest.fixture(scope="module")
def das_problem(gpt2, toy, toy_resid):
    """(objective at layer 1, clean ADJ activations [n, d_model], labels, corrupted ADJ activations)."""
    pairs, resid, n_layers, layer = toy.train_pairs, toy_resid["train"], gpt2.n_layers, 1
    clean, corrupted = resid[:, pairs.clean_index], resid[:, pairs.corrupted_index]
    with torch.no_grad():
        clean_score = sentiment_score(run_from(gpt2.bridge, block_inputs(clean, n_layers), n_layers), pairs.answer_ids)
        corrupted_score = sentiment_score(run_from(gpt2.bridge, block_inputs(corrupted, n_layers), n_layers), pairs.answer_ids)
    adj, rows = pairs.clean.positions["ADJ"], torch.arange(len(pairs))
    objective = DASObjective(gpt2.bridge, layer, block_inputs(corrupted, layer), adj, pairs.answer_ids,
                             pairs.clean.labels, clean_score, corrupted_score)
    return objective, clean[layer, rows, adj], pairs.clean.labels, corrupted[layer, rows, adj]


def fit(das_problem, **kwargs):
    objective, X, y, _ = das_problem
    das = DistributedAlignmentSearch(objective, epochs=EPOCHS, batch_size=BATCH, **kwargs)
    assert das.fit(X, y) is das
    return das


def test_fit_gives_a_unit_direction_and_a_loss_per_epoch(das_problem, gpt2):
    before = weights_hash(gpt2.bridge)
    das = fit(das_problem)
    assert das.direction_.shape == (gpt2.bridge.cfg.d_model,)
    assert float(das.direction_.norm()) == pytest.approx(1.0, abs=1e-5)
    assert len(das.loss_history_) == EPOCHS
    assert all(torch.isfinite(torch.tensor(das.loss_history_)))
    assert das.best_epoch_ == min(range(EPOCHS), key=das.loss_history_.__getitem__)
    assert weights_hash(gpt2.bridge) == before  # DAS trains the rotation only


def test_fit_is_deterministic(das_problem):
    first, second = fit(das_problem), fit(das_problem)
    assert torch.equal(first.direction_, second.direction_)
    assert first.loss_history_ == second.loss_history_
    other_seed = fit(das_problem, seed=1)
    assert not torch.equal(first.direction_, other_seed.direction_)


def test_objective_loss_is_one_without_a_change(das_problem):
    """Patching the corrupted activation into itself leaves the corrupted run: loss = 1."""
    objective, _, _, corrupted_adj = das_problem
    rows = torch.arange(len(corrupted_adj))
    direction = torch.randn(corrupted_adj.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert objective.loss(direction, corrupted_adj, rows).item() == pytest.approx(1.0, abs=1e-3)


def test_objective_loss_ignores_the_sign_of_the_direction(das_problem):
    objective, clean_adj, _, _ = das_problem
    rows = torch.arange(8)
    direction = torch.randn(clean_adj.shape[1], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plus, minus = objective.loss(direction, clean_adj, rows), objective.loss(-direction, clean_adj, rows)
    assert plus.item() == pytest.approx(minus.item(), abs=1e-5)


def test_fit_without_objective_raises():
    X = torch.randn(6, 4)
    y = torch.tensor([1, 0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="objective"):
        DistributedAlignmentSearch(epochs=1).fit(X, y)


@pytest.mark.parametrize("n_layers,expected", [(2, (0, 1, 2)), (12, tuple(range(13))), (24, tuple(range(0, 25, 2))),
                                               (32, tuple(range(0, 33, 3)))])
def test_select_layers_follows_the_authors(n_layers, expected):
    """Every boundary up to 12 layers, every 2nd up to 24, every 3rd up to 36."""
    assert select_layers(n_layers) == expected
