"""One-dimensional distributed alignment search (DAS), as the authors trained it (paper §4, ``utils/das.py``).

A d_model × d_model rotation R, kept orthogonal by ``torch.nn.utils.parametrizations.orthogonal``
(``use_trivialization=False``) from an orthogonal initialisation (seed 0), is learned so that, at one
position (ADJ) of residual boundary L of the *corrupted* prompt, taking the first rotated coordinate
from the clean run and the rest from the corrupted run (then rotating back) restores the clean
behaviour. With one dimension that patch is exactly x' = x_corr + (r·x_clean − r·x_corr) r for the
first column r of R, which is what the forward uses. Loss, on the clean prompt's answers:

    (LD_patched − LD_clean) / (LD_corrupted − LD_clean)        (batch means, uncentred LDs)

Adam (lr 1e-3, betas 0.9/0.999, no weight decay), gradient-norm clip 1.0; the epoch with the lowest
summed training loss is kept and ``direction_`` is its r, sign-oriented like every other method.
The paper trained 64 epochs with a per-model batch size (``harness.paper_models``); on models the paper
did not use, the suite's default is 8 epochs of batch 8, the same number of optimizer steps (64) as
the paper's gpt2-small run, because the CPU budget allows no more (the report states what was used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness import hook_names
from harness.directions import DirectionFinder
from harness.forward import run_from
from harness.interventions import directional_patch, edit_hook, position_mask
from harness.metrics import logit_diff, sentiment_score
from harness.paper_models import PAPER_DAS_EPOCHS, PAPER_MODELS

DEFAULT_EPOCHS = 8
DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class DASSettings:
    epochs: int
    batch_size: int
    layers: tuple[int, ...]
    lr: float = 1e-3
    seed: int = 0

    def describe(self) -> str:
        return f"{self.epochs} epochs, batch {self.batch_size}, lr {self.lr}, layers {list(self.layers)}"


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
        epochs=epochs or (PAPER_DAS_EPOCHS if paper else DEFAULT_EPOCHS),
        batch_size=batch_size or (paper.das_batch_size if paper else DEFAULT_BATCH_SIZE),
        layers=chosen,
    )


@dataclass
class DASObjective:
    """The corrupted runs DAS patches: restarted at boundary ``layer``, patched at ``positions``."""

    bridge: object
    layer: int
    corrupted_block_input: Float[Tensor, "n pos d_model"]
    positions: Int[Tensor, "n"]
    answer_ids: Int[Tensor, "2 n_answers"]
    labels: Int[Tensor, "n"]
    clean_score: Float[Tensor, "n"]
    corrupted_score: Float[Tensor, "n"]

    def loss(self, direction: Tensor, clean_activation: Tensor, rows: Tensor) -> Tensor:
        base = self.corrupted_block_input[rows]
        source = clean_activation[rows][:, None, :].expand(-1, base.shape[1], -1)
        hook = edit_hook(directional_patch(direction, source), position_mask(self.positions[rows], base.shape[1]))
        name = hook_names.resid(self.bridge.cfg.n_layers, self.layer)
        logits = run_from(self.bridge, base, self.layer, [(name, hook)])
        labels = self.labels[rows]
        patched = logit_diff(sentiment_score(logits, self.answer_ids), labels).mean()
        clean = logit_diff(self.clean_score[rows], labels).mean()
        corrupted = logit_diff(self.corrupted_score[rows], labels).mean()
        return (patched - clean) / (corrupted - clean)


class _Rotation(torch.nn.Module):
    def __init__(self, d_model: int, generator: torch.Generator):
        super().__init__()
        weight = torch.empty(d_model, d_model)
        torch.nn.init.orthogonal_(weight, generator=generator)
        self.weight = torch.nn.Parameter(weight)


class DistributedAlignmentSearch(DirectionFinder):
    """``fit(X, y)``: X = the clean runs' activations at the patch position, one row per pair of
    ``objective``; y = the clean labels."""

    def __init__(self, objective: DASObjective | None = None, epochs: int = PAPER_DAS_EPOCHS,
                 batch_size: int = 32, lr: float = 1e-3, max_grad_norm: float = 1.0, seed: int = 0):
        self.objective = objective
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_grad_norm = max_grad_norm
        self.seed = seed

    def _raw_direction(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.objective is None:
            raise ValueError("DistributedAlignmentSearch needs an objective (the corrupted runs to patch)")
        clean = torch.tensor(X, dtype=torch.float32)
        generator = torch.Generator().manual_seed(self.seed)
        rotation = torch.nn.utils.parametrizations.orthogonal(
            _Rotation(clean.shape[1], generator), use_trivialization=False
        )
        optimizer = torch.optim.Adam(rotation.parameters(), lr=self.lr, betas=(0.9, 0.999), weight_decay=0)
        best_loss, best_direction, self.loss_history_ = math.inf, None, []
        for _ in range(self.epochs):
            order = torch.randperm(len(clean), generator=generator)
            total = 0.0
            for rows in order.split(self.batch_size):
                loss = self.objective.loss(rotation.weight[:, 0], clean, rows)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(rotation.parameters(), self.max_grad_norm)
                optimizer.step()
                total += loss.item() * len(rows) / len(clean)
            self.loss_history_.append(total)
            if total < best_loss:
                with torch.no_grad():
                    best_loss, best_direction = total, rotation.weight[:, 0].clone()
        self.best_epoch_ = int(np.argmin(self.loss_history_))
        return best_direction.double().numpy()
