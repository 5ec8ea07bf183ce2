"""One-dimensional DAS (harness.directions.das, paper §4) trained by early stopping on held-out pairs.

On a scripted objective (no model; the validation losses are dictated, the training loss pulls the
direction toward a fixed vector):
- it stops after ``PATIENCE`` epochs without a ``MIN_IMPROVEMENT`` gain, keeps the direction of the
  lowest-validation-loss epoch (not the last one), and says why it stopped;
- it stops at the cap while still improving and says so; a layer whose best held-out loss is not
  ``UNTRAINED_MARGIN`` below its start is flagged untrained.
On the tiny GPT-2 with ToyMovieReview train pairs:
- ``fit`` returns the estimator, a unit ``direction_``, per-epoch train and validation losses, and
  leaves the model's weights alone;
- the validation split is seeded, stratified by label, ≈ 25%, and keeps a clean prompt's pairs together;
- the seed changes the fit and the same seed reproduces it;
- the final residual boundary cannot train (patching ADJ there never reaches the answer position):
  its loss stays at 1, it stops by patience and is flagged untrained;
- the objective's loss is 1 when the patch changes nothing and does not depend on the direction's sign;
- without an objective ``fit`` raises (the model reaches DAS through ``fit(X, y, objective=...)`` only).
"""

from __future__ import annotations

import pytest
import torch

from harness.directions.das import (MIN_IMPROVEMENT, PATIENCE, STOPPED_AT_CAP, STOPPED_AT_TARGET, STOPPED_BY_PATIENCE,
                         TARGET_LOSS, UNTRAINED_MARGIN, DASObjective, DistributedAlignmentSearch, RotationFirstColumn,
                         das_settings, select_layers, validation_split)
from harness.interventions.forward import block_inputs, run_from
from harness.measures.metrics import sentiment_score
from harness.models.loading import weights_hash

EPOCHS, BATCH = 3, 16


class ScriptedObjective:
    """Training loss 1 − (r·u)² (so the direction moves every epoch); validation losses (the calls made
    without gradients) read from ``script``, the directions they were asked about recorded."""

    def __init__(self, script: list[float], d: int = 8):
        self.script = list(script)
        self.u = torch.nn.functional.normalize(torch.arange(1.0, d + 1), dim=0)
        self.validated: list[torch.Tensor] = []

    def loss(self, direction, clean_activation, rows):
        if torch.is_grad_enabled():
            return 1 - (direction @ self.u) ** 2
        self.validated.append(direction.clone())
        return torch.tensor(self.script[len(self.validated) - 1])


def scripted_fit(script: list[float], epochs: int = 20) -> tuple[DistributedAlignmentSearch, ScriptedObjective]:
    objective = ScriptedObjective(script)
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(16, 8, generator=generator)
    y = torch.arange(16) % 2
    das = DistributedAlignmentSearch(epochs=epochs, batch_size=4, lr=0.05).fit(X, y, objective=objective)
    return das, objective


def test_early_stopping_stops_by_patience_and_keeps_the_best_validation_epoch():
    script = [1.0, 0.8, 0.5, 0.6, 0.7, 0.9, 0.1]  # initial, then epochs 1..6: best at epoch 2
    das, objective = scripted_fit(script)
    assert das.best_epoch_ == 2 and das.best_validation_loss_ == pytest.approx(0.5)
    assert das.epochs_run_ == 2 + PATIENCE and das.stop_reason_ == STOPPED_BY_PATIENCE
    assert das.validation_loss_ == pytest.approx(script[1:1 + das.epochs_run_])
    assert das.initial_validation_loss_ == pytest.approx(1.0) and das.trained_
    assert len(das.train_loss_) == das.epochs_run_
    kept = torch.nn.functional.normalize(objective.validated[das.best_epoch_], dim=0)
    last = torch.nn.functional.normalize(objective.validated[-1], dim=0)
    assert abs(float(das.direction_ @ kept)) == pytest.approx(1.0, abs=1e-5)  # the best epoch's, up to the sign
    assert abs(float(das.direction_ @ last)) < 1 - 1e-4  # not the last epoch's


def test_gains_that_add_up_to_less_than_the_minimum_over_the_patience_stop_it():
    script = [1.0] + [1.0 - MIN_IMPROVEMENT / (PATIENCE + 1) * k for k in range(1, 10)]
    das, _ = scripted_fit(script)
    assert das.epochs_run_ == PATIENCE and das.stop_reason_ == STOPPED_BY_PATIENCE
    assert das.best_epoch_ == PATIENCE  # still the lowest loss seen
    assert not das.trained_  # a few thousandths below its start: far from UNTRAINED_MARGIN


def test_epoch_cap_while_still_improving():
    das, _ = scripted_fit([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], epochs=4)
    assert das.epochs_run_ == 4 and das.best_epoch_ == 4 and das.stop_reason_ == STOPPED_AT_CAP
    assert das.trained_ and das.best_validation_loss_ == pytest.approx(0.6)


def test_reaching_the_clean_behaviour_on_held_out_pairs_stops_training():
    das, _ = scripted_fit([1.0, 0.6, TARGET_LOSS + 0.01, TARGET_LOSS - 0.01, -0.5])
    assert das.epochs_run_ == 3 and das.best_epoch_ == 3 and das.stop_reason_ == STOPPED_AT_TARGET
    assert das.best_validation_loss_ == pytest.approx(TARGET_LOSS - 0.01) and das.trained_


def test_trained_needs_the_declared_margin():
    assert not scripted_fit([1.0, 1.0 - UNTRAINED_MARGIN + 0.01, 1, 1, 1])[0].trained_
    assert scripted_fit([1.0, 1.0 - UNTRAINED_MARGIN - 0.01, 1, 1, 1])[0].trained_


def test_no_epoch_beating_the_initialisation_keeps_it():
    das, objective = scripted_fit([0.9, 1.0, 1.1, 1.2])
    assert das.best_epoch_ == 0 and not das.trained_ and das.epochs_run_ == PATIENCE
    initial = torch.nn.functional.normalize(objective.validated[0], dim=0)
    assert abs(float(das.direction_ @ initial)) == pytest.approx(1.0, abs=1e-5)


def test_the_cap_is_the_papers_on_paper_models_and_the_cpu_default_elsewhere():
    assert das_settings("gpt2-small", 12, None, None, None).epochs == 64
    assert das_settings("smollm2-135m", 30, None, None, None).epochs == 12
    assert das_settings("smollm2-135m", 30, 5, None, None).epochs == 5  # --das-epochs overrides the cap
    assert das_settings("gpt2-small", 12, None, None, None).lr == 1e-3  # the authors' lr on their models
    assert das_settings("smollm2-135m", 30, None, None, None).lr == 3e-3


@pytest.fixture(scope="module")
def das_problem(gpt2, toy, toy_resid):
    """(objective at layer 1, clean ADJ activations [n, d_model], labels, corrupted ADJ activations)."""
    return problem_at(1, gpt2, toy, toy_resid)


def problem_at(layer, gpt2, toy, toy_resid):
    pairs, resid, n_layers = toy.train_pairs, toy_resid["train"], gpt2.n_layers
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
    das = DistributedAlignmentSearch(**{"layer": objective.layer, "epochs": EPOCHS, "batch_size": BATCH, **kwargs})
    assert das.fit(X, y, objective=objective) is das
    return das


def test_fit_gives_a_unit_direction_and_losses_per_epoch(das_problem, gpt2):
    before = weights_hash(gpt2.bridge)
    das = fit(das_problem)
    assert das.direction_.shape == (gpt2.bridge.cfg.d_model,)
    assert float(das.direction_.norm()) == pytest.approx(1.0, abs=1e-5)
    assert len(das.train_loss_) == len(das.validation_loss_) == das.epochs_run_ <= EPOCHS
    assert all(torch.isfinite(torch.tensor(das.train_loss_ + das.validation_loss_)))
    assert das.best_validation_loss_ == min([das.initial_validation_loss_, *das.validation_loss_])
    # the kept direction is the one whose held-out loss is the best one recorded (the loss ignores the sign)
    objective, X, _, _ = das_problem
    with torch.no_grad():
        kept = objective.loss(das.direction_, X, das.validation_rows_).item()
    assert kept == pytest.approx(das.best_validation_loss_, abs=1e-4)
    summary = das.summary(1)
    assert (summary.epochs_run, summary.best_epoch, summary.trained) == (das.epochs_run_, das.best_epoch_, das.trained_)
    assert weights_hash(gpt2.bridge) == before  # DAS trains the rotation only


def test_validation_split_is_stratified_seeded_and_keeps_prompts_together(das_problem):
    _, X, y, _ = das_problem
    X, y = X.numpy(), y.numpy()
    fit_rows, held_out = validation_split(X, y, 0.25, torch.Generator().manual_seed(0))
    assert sorted(fit_rows.tolist() + held_out.tolist()) == list(range(len(y)))
    assert set(y[held_out.numpy()]) == {0, 1} and set(y[fit_rows.numpy()]) == {0, 1}
    assert 0.15 < len(held_out) / len(y) < 0.35
    fit_prompts = {X[i].tobytes() for i in fit_rows.tolist()}
    assert not any(X[i].tobytes() in fit_prompts for i in held_out.tolist())  # a repeated clean prompt stays on one side
    again = validation_split(X, y, 0.25, torch.Generator().manual_seed(0))[1]
    other = validation_split(X, y, 0.25, torch.Generator().manual_seed(1))[1]
    assert torch.equal(held_out, again) and not torch.equal(held_out, other)


def test_fit_is_seeded(das_problem):
    first, second = fit(das_problem), fit(das_problem)
    assert torch.equal(first.direction_, second.direction_)
    assert first.train_loss_ == second.train_loss_ and first.validation_loss_ == second.validation_loss_
    other_seed = fit(das_problem, seed=1)
    assert not torch.equal(first.direction_, other_seed.direction_)
    assert not torch.equal(first.validation_rows_, other_seed.validation_rows_)


def test_the_final_residual_boundary_cannot_train(gpt2, toy, toy_resid):
    """Patching ADJ in the last residual never reaches the answer position: loss 1, flagged untrained."""
    das = fit(problem_at(gpt2.n_layers, gpt2, toy, toy_resid), epochs=10)
    assert das.initial_validation_loss_ == pytest.approx(1.0, abs=1e-4)
    assert das.validation_loss_ == pytest.approx([1.0] * PATIENCE, abs=1e-4)
    assert das.stop_reason_ == STOPPED_BY_PATIENCE and das.epochs_run_ == PATIENCE
    assert das.best_epoch_ == 0 and not das.trained_


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


@pytest.mark.parametrize("d_model", [16, 576])
def test_rotation_first_column_is_the_authors_parametrization(d_model):
    """``RotationFirstColumn`` = the first column of ``orthogonal(..., use_trivialization=False)`` (the
    authors' call) of the same seeded parameter, in value and in gradient, at the initialisation and
    after steps away from it; d 576 is SmolLM2's. The reference runs in float64 (torch's float32 matrix
    exponential itself is off by up to ~1e-5 in the gradient at d 576)."""
    ours = RotationFirstColumn(d_model, torch.Generator().manual_seed(3))
    holder = torch.nn.Module()
    holder.weight = torch.nn.Parameter(ours.weight.detach().double().clone())
    authors = torch.nn.utils.parametrizations.orthogonal(holder, use_trivialization=False)
    original = authors.parametrizations.weight.original
    for step in range(3):
        target = torch.randn(d_model, generator=torch.Generator().manual_seed(step), dtype=torch.float64)
        column, reference = ours(), authors.weight[:, 0]
        torch.testing.assert_close(column.double(), reference, atol=1e-6, rtol=1e-6)
        assert abs(float(column.detach().norm()) - 1) < 1e-6
        (column.double() @ target).backward()
        (reference @ target).backward()
        torch.testing.assert_close(ours.weight.grad.double(), original.grad, atol=1e-6, rtol=1e-5)
        with torch.no_grad():
            step_ = 0.05 * original.grad.sign()
            ours.weight -= step_.float()
            original -= step_
            ours.weight.grad = original.grad = None
