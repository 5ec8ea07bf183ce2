"""harness.directions.das_refit: DAS continued from its full fit on bootstrap resamples of its pairs (D1, §6.3).

On the tiny GPT-2 with ToyMovieReview train pairs (``FitContext``, so the shared-prefix path is the
suite's):
- ``batched_losses`` of one row set is ``DASObjective.loss``; of several sets, each set's own loss, each
  with its own direction, in one forward pass;
- a refit with lr 0 stays at its start; refits are unit vectors, seeded, the same whatever the chunking
  (resamples sharing a forward pass train independently), and differ between resamples;
- a refit trains: on its own rows its loss falls below the start's;
- ``das_refits`` maps a resample of prompts onto DAS's pairs (a prompt is the clean prompt of one pair)
  and continues the fitted estimator with its own settings.
"""

from __future__ import annotations

import pytest
import torch

from harness.directions.das import DASSettings, DistributedAlignmentSearch
from harness.directions.das_refit import batched_losses, das_refits, pair_rows, warm_refits
from harness.directions.fitting import FitContext
from harness.interventions.forward import SplitActivations
from harness.measures.statistics import resample_indices

pytestmark = pytest.mark.unit

LAYER = 1


@pytest.fixture(scope="module")
def context(gpt2, toy, toy_resid) -> FitContext:
    return FitContext(gpt2.bridge, SplitActivations(toy.train, toy_resid["train"]), toy.train_pairs,
                      DASSettings(epochs=2, batch_size=8, layers=(LAYER,), lr=3e-3))


@pytest.fixture(scope="module")
def problem(context):
    """(objective at LAYER, clean ADJ activations of the pairs, a start direction)."""
    clean, _ = context.training_data("das", LAYER)
    start = torch.randn(clean.shape[1], generator=torch.Generator().manual_seed(3))
    return context.das_objective(LAYER), clean, start / start.norm()


def refit(problem, rows, **kwargs):
    objective, clean, start = problem
    settings = {"epochs": 1, "batch_size": 8, "lr": 3e-3, "max_grad_norm": 1.0, "seed": 0, **kwargs}
    return warm_refits(objective, clean, start, rows, **settings)


def test_batched_losses_are_das_losses(problem):
    objective, clean, start = problem
    other = torch.randn_like(start, generator=torch.Generator().manual_seed(4))
    rows = torch.stack([torch.arange(8), torch.arange(8, 16)])
    with torch.no_grad():
        batched = batched_losses(objective, torch.stack([start, other]), clean, rows)
        one = batched_losses(objective, start[None], clean, rows[:1])
        expected = torch.stack([objective.loss(start, clean, rows[0]), objective.loss(other, clean, rows[1])])
    assert objective.prefix is not None  # the suite's path: positions after the shared prefix only
    assert torch.allclose(batched, expected, atol=1e-5) and torch.allclose(one[0], expected[0], atol=1e-5)


def test_refits_start_at_the_fit_are_seeded_and_do_not_depend_on_chunking(problem):
    _, _, start = problem
    rows = resample_indices(len(problem[1]), 3, seed=5)
    assert torch.allclose(refit(problem, rows, lr=0.0), start.double().expand(3, -1), atol=1e-6)
    first = refit(problem, rows, chunk=3)
    assert torch.allclose(first.norm(dim=-1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(first, refit(problem, rows, chunk=1), atol=1e-5)
    assert torch.equal(first, refit(problem, rows, chunk=3))
    assert not torch.allclose(first, refit(problem, rows, chunk=3, seed=1), atol=1e-5)
    assert not torch.allclose(first[0], first[1], atol=1e-3) and float((first @ start.double()).min()) > 0


def test_a_refit_trains_on_its_own_rows(problem):
    objective, clean, start = problem
    rows = resample_indices(len(clean), 1, seed=6)
    moved = refit(problem, rows, epochs=3, lr=1e-2)[0].float()
    with torch.no_grad():
        before, after = objective.loss(start, clean, rows[0]), objective.loss(moved, clean, rows[0])
    assert float(after) < float(before)


def test_das_refits_continue_the_fitted_estimator_on_the_resampled_pairs(context, toy):
    rows = pair_rows(context)
    assert torch.equal(toy.train_pairs.clean_index[rows], torch.arange(len(toy.train)))
    clean, labels = context.training_data("das", LAYER)
    estimator = DistributedAlignmentSearch.for_layer(LAYER, context)
    estimator.fit(clean, labels, **estimator.fit_params(context))
    index = resample_indices(len(toy.train), 2, seed=7)
    made = das_refits(estimator, context, LAYER, index, epochs=1)
    expected = warm_refits(context.das_objective(LAYER), clean, estimator.direction_, rows[index], epochs=1,
                           batch_size=estimator.batch_size, lr=estimator.lr, max_grad_norm=estimator.max_grad_norm,
                           seed=estimator.seed)
    assert made.shape == (2, clean.shape[1]) and torch.equal(made, expected)
