"""One-dimensional distributed alignment search (DAS), as the authors trained it (paper §4, ``utils/das.py``),
trained to convergence by early stopping on held-out pairs.

A d_model × d_model rotation R, kept orthogonal by ``torch.nn.utils.parametrizations.orthogonal``
(``use_trivialization=False``, its matrix-exponential map; computed through its first column only,
``RotationFirstColumn``) from a seeded orthogonal initialisation, is learned so that, at one
position (ADJ) of residual boundary L of the *corrupted* prompt, taking the first rotated coordinate
from the clean run and the rest from the corrupted run (then rotating back) restores the clean
behaviour. With one dimension that patch is exactly x' = x_corr + (r·x_clean − r·x_corr) r for the
first column r of R, which is what the forward uses. Loss, on the clean prompt's answers:

    (LD_patched − LD_clean) / (LD_corrupted − LD_clean)        (means over the rows, uncentred LDs)

so 1 = the corrupted behaviour (the patch did nothing), 0 = the clean behaviour restored.
Adam (betas 0.9/0.999, no weight decay), gradient-norm clip 1.0, as the authors; lr 1e-3 on the paper's
models as the authors, 3e-3 elsewhere (below).

Early stopping (a suite deviation: the authors kept the epoch with the lowest summed *training* loss
after a fixed 64 epochs). The train pairs are split, seeded and stratified by label, into a fit part
and a validation part (``VALIDATION_FRACTION``); pairs sharing a clean prompt (ToyMovieReview cycles the
shorter class) stay on one side. Every epoch trains on the fit part, then the same loss is computed on
the whole validation part without gradients. The direction kept is the one with the lowest validation
loss (epoch 0 = the initialisation). Training stops when the validation loss reaches ``TARGET_LOSS``
(the clean behaviour restored on held-out pairs: the objective's goal), or once ``PATIENCE`` epochs in
a row have not brought it ``MIN_IMPROVEMENT`` below the last loss that did (Keras's ``EarlyStopping``
rule, so slow steady gains still count), or at the epoch cap. A layer whose best validation loss is not
at least ``UNTRAINED_MARGIN`` below its initial one did not train (``trained_`` False): the suite never
feeds such a layer's direction to another claim (``harness.directions.fitting``).

Paper models: the paper's 64-epoch cap (``PAPER_DAS_EPOCHS``), batch size and lr 1e-3. Other models
(CPU defaults): batch 8, lr ``DEFAULT_LR`` = 3e-3, cap ``DEFAULT_EPOCH_CAP`` = 12. Why 3e-3: Adam moves
each rotation parameter by about lr per step, so with ≈ 5 steps an epoch (39 fit pairs) lr 1e-3 is
step-limited: on SmolLM2-135M every trained layer was still improving at 12 epochs. Measured on the
held-out pairs only (seed 0; no claim's data): lr 1e-3 at the 12-epoch cap reached 0.373 / 0.010 /
0.174 at layers 3 / 12 / 21, lr 3e-3 reached 0.327 (stopped by patience at epoch 9) / 0.043 at epoch 5
(−0.155 by overshoot at 16) / 0.158 (patience, epoch 11), lr 1e-2 0.416 / 0.120 / 0.183 (noisier,
worse). An epoch costs less at later layers (``run_from`` starts at the layer); the shared prefix
(``harness.interventions.prefix_cache``) and the rotation computed through its first column
(``RotationFirstColumn``) make every step cheaper. ``benchmarks/test_das_benchmark.py`` measures an
epoch per layer.
L30 cannot train (the final residual at ADJ never reaches the answer position) and stops by patience at
epoch 3. ``--das-epochs`` overrides the cap.

The estimator contract (``harness.directions.registry``): registered as ``"das"`` with ``layers="das"``
and ``needs_model=True``. ``DistributedAlignmentSearch`` holds hyperparameters only (``layer``, ``epochs``,
``batch_size``, ``lr``, ``seed``, ...), so ``sklearn.base.clone`` copies no model; the model reaches it
as a fit parameter, ``fit(X, y, objective=DASObjective(...))`` (the corrupted runs it patches at ``layer``;
``fit_params(context)`` builds it from the ``FitContext``), and the fitted estimator keeps no reference to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.directions.finders import DirectionFinder
from harness.directions.registry import register_method
from harness.interventions.forward import run_from
from harness.interventions.edit import directional_patch, edit_hook, position_mask
from harness.measures.metrics import logit_diff, sentiment_score
from harness.models.paper import PAPER_DAS_EPOCHS, PAPER_MODELS
from harness.interventions.prefix_cache import PrefixKV

DEFAULT_EPOCH_CAP = 12  # non-paper models; with DEFAULT_LR most layers stop earlier (target or patience)
DEFAULT_BATCH_SIZE = 8
DEFAULT_LR = 3e-3  # non-paper models (module docstring); paper models keep the authors' 1e-3
PAPER_LR = 1e-3
VALIDATION_FRACTION = 0.25  # of each label's clean prompts, held out to decide when to stop and which epoch to keep
# Stop after PATIENCE epochs without a MIN_IMPROVEMENT gain. Batch-8 Adam epochs are noisy: one or two
# flat epochs happen on a still-falling curve, three in a row is a plateau.
PATIENCE = 3
# 0.005 = half a percent of the clean − corrupted logit-difference gap: an order of magnitude below the
# width of the % LD recovered CIs that judge the directions downstream, so a smaller gain changes nothing.
MIN_IMPROVEMENT = 0.005
# Loss 1 = corrupted behaviour, 0 = clean. A layer whose best held-out loss stays within 0.1 of where
# it started (recovers < 10% of the gap beyond a random rotation's) did not learn: it is flagged, not used.
UNTRAINED_MARGIN = 0.1

# 0.05 = the patch restores 95% of the clean − corrupted gap on the held-out pairs: the objective's goal
# (0, clean behaviour) is reached within the noise of a 13-pair held-out loss; what lies below it is
# overshoot past the clean logit difference, which the claims do not ask for.
TARGET_LOSS = 0.05

STOPPED_BY_PATIENCE = f"no improvement for {PATIENCE} epochs"
STOPPED_AT_TARGET = f"held-out loss reached the clean behaviour (≤ {TARGET_LOSS})"
STOPPED_AT_CAP = "epoch cap reached while still improving"


@dataclass(frozen=True)
class DASSettings:
    epochs: int  # the epoch cap (early stopping usually ends training before it)
    batch_size: int
    layers: tuple[int, ...]
    lr: float = PAPER_LR

    def describe(self) -> str:
        return (f"≤ {self.epochs} epochs (early stopping: held-out loss ≤ {TARGET_LOSS}, or patience {PATIENCE} "
                f"with min improvement {MIN_IMPROVEMENT}, "
                f"{VALIDATION_FRACTION:.0%} held out), batch {self.batch_size}, lr {self.lr}, layers {list(self.layers)}")


def select_layers(n_layers: int) -> tuple[int, ...]:
    """The authors' ``select_layers``: every boundary up to 12 layers, every 2nd up to 24, every 3rd up to 36."""
    step = max(1, math.ceil(n_layers / 12))
    return tuple(range(0, n_layers + 1, step))


def das_settings(model_name: str, n_layers: int, epochs: int | None, batch_size: int | None,
                 layers: str | None) -> DASSettings:
    """The paper's settings for a paper model, the suite's CPU defaults otherwise; options override."""
    paper = PAPER_MODELS.get(model_name)
    if layers in (None, "paper"):
        chosen = select_layers(n_layers)
    elif layers == "all":
        chosen = tuple(range(n_layers + 1))
    else:
        chosen = tuple(sorted({int(part) for part in layers.split(",")}))
        if not all(0 <= layer <= n_layers for layer in chosen):
            raise ValueError(f"--das-layers {layers!r}: layers must lie in 0..{n_layers}")
    return DASSettings(
        epochs=epochs or (PAPER_DAS_EPOCHS if paper else DEFAULT_EPOCH_CAP),
        batch_size=batch_size or (paper.das_batch_size if paper else DEFAULT_BATCH_SIZE),
        layers=chosen,
        lr=PAPER_LR if paper else DEFAULT_LR,
    )


@dataclass
class DASObjective:
    """The corrupted runs DAS patches: restarted at boundary ``layer``, patched at ``positions``. With
    ``prefix`` (the corrupted prompts' keys and values before the earliest patched position), each run
    computes only the positions from there on (``harness.interventions.prefix_cache``): the same loss, cheaper."""

    bridge: object
    layer: int
    corrupted_block_input: Float[Tensor, "n pos d_model"]
    positions: Int[Tensor, "n"]
    answer_ids: Int[Tensor, "2 n_answers"]
    labels: Int[Tensor, "n"]
    clean_score: Float[Tensor, "n"]
    corrupted_score: Float[Tensor, "n"]
    prefix: PrefixKV | None = None

    def __post_init__(self) -> None:
        if self.prefix is not None and int(self.positions.min()) < self.prefix.length:
            raise ValueError(f"a patched position ({int(self.positions.min())}) lies inside the cached prefix "
                             f"(positions < {self.prefix.length})")

    def loss(self, direction: Tensor, clean_activation: Tensor, rows: Tensor) -> Tensor:
        start = 0 if self.prefix is None else self.prefix.length
        base = self.corrupted_block_input[rows][:, start:]
        source = clean_activation[rows][:, None, :].expand(-1, base.shape[1], -1)
        hook = edit_hook(directional_patch(direction, source),
                         position_mask(self.positions[rows] - start, base.shape[1]))
        name = hook_names.resid(self.bridge.cfg.n_layers, self.layer)
        logits = run_from(self.bridge, base, self.layer, [(name, hook)],
                          prefix=None if self.prefix is None else self.prefix.rows(rows))
        labels = self.labels[rows]
        patched = logit_diff(sentiment_score(logits, self.answer_ids), labels).mean()
        clean = logit_diff(self.clean_score[rows], labels).mean()
        corrupted = logit_diff(self.corrupted_score[rows], labels).mean()
        return (patched - clean) / (corrupted - clean)


@dataclass(frozen=True)
class DASTrainingSummary:
    """One layer's DAS training, for the report (losses: 1 = corrupted behaviour, 0 = clean)."""

    layer: int
    epochs_run: int
    best_epoch: int  # 0 = the initialisation
    initial_validation_loss: float
    best_validation_loss: float
    final_train_loss: float
    stop_reason: str
    trained: bool
    train_loss: tuple[float, ...]
    validation_loss: tuple[float, ...]
    n_fit: int
    n_validation: int


def validation_split(X: np.ndarray, y: np.ndarray, fraction: float,
                     generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(fit rows, validation rows): ``fraction`` of each label's distinct rows of X (a clean prompt;
    pairs repeating it stay together), drawn with ``generator``."""
    _, group = np.unique(X, axis=0, return_inverse=True)
    group = group.reshape(-1)
    validation = []
    for label in (0, 1):
        groups = np.unique(group[y == label])
        if len(groups) < 2:
            raise ValueError(f"DAS early stopping needs >= 2 distinct clean prompts of label {label}; got {len(groups)}")
        take = min(len(groups) - 1, max(1, round(fraction * len(groups))))
        validation += groups[torch.randperm(len(groups), generator=generator)[:take].numpy()].tolist()
    held_out = np.isin(group, validation)
    return torch.from_numpy(np.flatnonzero(~held_out)), torch.from_numpy(np.flatnonzero(held_out))


class RotationFirstColumn(torch.nn.Module):
    """r = exp(A) e₀, A = tril(X) − tril(X)ᵀ: the first column of the rotation that the authors'
    ``torch.nn.utils.parametrizations.orthogonal(..., use_trivialization=False)`` makes of the parameter X
    (its ``matrix_exp`` map; X starts as a seeded orthogonal matrix, which that call keeps as X). Only r
    enters the 1-D patch, so exp(A) is never formed: r is the action of the exponential on e₀ (its
    Taylor series of matrix-vector products, in float64), the same function of X with the same gradient
    to float32 rounding (``tests/test_das.py``), at O(d²) per term instead of the full matrix exponential's
    O(d³) forward and backward."""

    MAX_TERMS = 400

    def __init__(self, d_model: int, generator: torch.Generator):
        super().__init__()
        weight = torch.empty(d_model, d_model)
        torch.nn.init.orthogonal_(weight, generator=generator)
        self.weight = torch.nn.Parameter(weight)

    def forward(self) -> Float[Tensor, "d_model"]:
        lower = self.weight.double().tril()
        skew = lower - lower.T
        basis = torch.zeros(skew.shape[0], dtype=skew.dtype)
        basis[0] = 1.0
        term = total = basis
        # A is skew-symmetric, so ‖Aᵏe₀‖/k! ≤ ‖A‖₂ᵏ/k!: the terms shrink for good once k passes ‖A‖₂ (≈ 2
        # at the initialisation on d 576), and stopping below float64 resolution of the sum loses nothing.
        for k in range(1, self.MAX_TERMS + 1):
            term = skew @ term / k
            total = total + term
            if float(term.detach().norm()) <= 1e-17 * float(total.detach().norm()):
                return total.float()
        raise RuntimeError(f"exp(A)e0 did not converge in {self.MAX_TERMS} terms (‖A‖ too large)")


@register_method("das", layers="das", needs_model=True)
class DistributedAlignmentSearch(DirectionFinder):
    """``fit(X, y, objective=...)``: X = the clean runs' activations at the patch position, one row per
    pair of ``objective`` (a ``DASObjective`` at boundary ``layer``: the corrupted runs to patch, holding
    the model; used during ``fit`` only, never stored); y = the clean labels. Hyperparameters only in
    ``__init__``: ``layer`` (the residual boundary patched; ``None`` = the objective's), ``epochs`` (the
    cap), ``seed`` (seeds the rotation's initialisation, the validation split and the batch order), ...

    Fitted: ``direction_`` (the best-validation epoch's r, sign-oriented like every other method),
    ``initial_validation_loss_``, ``train_loss_`` and ``validation_loss_`` (one per epoch run),
    ``best_epoch_`` (0 = the initialisation), ``best_validation_loss_``, ``epochs_run_``, ``stop_reason_``,
    ``trained_``, ``fit_rows_`` and ``validation_rows_``."""

    def __init__(self, layer: int | None = None, epochs: int = PAPER_DAS_EPOCHS, batch_size: int = 32,
                 lr: float = 1e-3, max_grad_norm: float = 1.0, seed: int = 0,
                 validation_fraction: float = VALIDATION_FRACTION, patience: int = PATIENCE,
                 min_improvement: float = MIN_IMPROVEMENT, target_loss: float = TARGET_LOSS):
        self.layer = layer
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_grad_norm = max_grad_norm
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.min_improvement = min_improvement
        self.target_loss = target_loss

    @classmethod
    def for_layer(cls, layer: int, context) -> DistributedAlignmentSearch:
        """DAS at boundary ``layer`` with the context's ``DASSettings`` (epoch cap, batch size, lr) and seed."""
        return cls(layer=layer, epochs=context.das.epochs, batch_size=context.das.batch_size, lr=context.das.lr,
                   seed=context.seed)

    def fit_params(self, context) -> dict:
        """``{"objective": ...}``: the context's corrupted train runs, patched at this estimator's layer."""
        return {"objective": context.das_objective(self.layer)}

    def fit(self, X, y, objective: DASObjective | None = None) -> DistributedAlignmentSearch:
        return super().fit(X, y, objective=objective)

    def _raw_direction(self, X: np.ndarray, y: np.ndarray, objective: DASObjective | None = None) -> np.ndarray:
        if objective is None:
            raise ValueError("DistributedAlignmentSearch.fit needs objective= (the corrupted runs to patch)")
        if self.layer is not None and getattr(objective, "layer", self.layer) != self.layer:
            raise ValueError(f"DistributedAlignmentSearch(layer={self.layer}) got an objective at layer {objective.layer}")
        clean = torch.tensor(X, dtype=torch.float32)
        generator = torch.Generator().manual_seed(self.seed)
        rotation = RotationFirstColumn(clean.shape[1], generator)
        self.fit_rows_, self.validation_rows_ = validation_split(X, y, self.validation_fraction, generator)
        optimizer = torch.optim.Adam(rotation.parameters(), lr=self.lr, betas=(0.9, 0.999), weight_decay=0)

        def validation_loss() -> tuple[float, Tensor]:
            with torch.no_grad():
                direction = rotation()
                return objective.loss(direction, clean, self.validation_rows_).item(), direction

        self.initial_validation_loss_, best_direction = validation_loss()
        best = reference = self.initial_validation_loss_  # reference: the last loss that improved by MIN_IMPROVEMENT
        self.best_epoch_, waited = 0, 0
        self.train_loss_, self.validation_loss_ = [], []
        self.stop_reason_ = STOPPED_AT_CAP
        for epoch in range(1, self.epochs + 1):
            order = self.fit_rows_[torch.randperm(len(self.fit_rows_), generator=generator)]
            total = 0.0
            for rows in order.split(self.batch_size):
                loss = objective.loss(rotation(), clean, rows)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(rotation.parameters(), self.max_grad_norm)
                optimizer.step()
                total += loss.item() * len(rows) / len(order)
            held_out, direction = validation_loss()
            self.train_loss_.append(total)
            self.validation_loss_.append(held_out)
            if held_out < reference - self.min_improvement:
                reference, waited = held_out, 0
            else:
                waited += 1
            if held_out < best:
                best, best_direction, self.best_epoch_ = held_out, direction, epoch
            if held_out <= self.target_loss:
                self.stop_reason_ = STOPPED_AT_TARGET
                break
            if waited >= self.patience:
                self.stop_reason_ = STOPPED_BY_PATIENCE
                break
        self.epochs_run_ = len(self.train_loss_)
        self.best_validation_loss_ = best
        self.trained_ = bool(best <= self.initial_validation_loss_ - UNTRAINED_MARGIN)
        return best_direction.double().numpy()

    def summary(self, layer: int | None = None) -> DASTrainingSummary:
        """This fitted estimator's training, as the report shows it (``layer``: where it was fitted;
        default ``self.layer``)."""
        return DASTrainingSummary(
            self.layer if layer is None else layer, self.epochs_run_, self.best_epoch_, self.initial_validation_loss_, self.best_validation_loss_,
            self.train_loss_[-1] if self.train_loss_ else math.nan, self.stop_reason_, self.trained_,
            tuple(self.train_loss_), tuple(self.validation_loss_), len(self.fit_rows_), len(self.validation_rows_))
