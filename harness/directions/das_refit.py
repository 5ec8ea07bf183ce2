"""DAS refitted on bootstrap resamples of its train pairs, warm-started (D1's uncertainty, paper §4, §6.3).

A full DAS fit (``harness.directions.das``) is a training run of up to a dozen epochs per layer, too
costly to repeat on every resample of D1's bootstrap. ``warm_refits`` approximates it, as a declared
approximation (D1's protocol): each resample's refit *continues* DAS's training from the direction fitted
on all train pairs (``start``), on that resample's pairs only, for a declared number of ``epochs``, with
DAS's own objective, batch size, lr, Adam (betas 0.9/0.999) and gradient-norm clip (per resample), and
no early stopping (no validation split: the last epoch's direction is kept). The direction is
parametrised as r = (start + v)/‖start + v‖ with v starting at 0 (a retraction onto the sphere at
``start``; the patch normalises r), so every refit begins exactly at the full fit and moves only where
its resample's gradient pushes it.

The resamples train side by side: each step stacks one batch of every resample into one forward pass,
each row patched with its own resample's direction (``directional_patch`` takes a direction per row), and
the summed per-resample losses give each resample its own gradient (the parameter rows and Adam's
moments are separate: Adam is elementwise). ``chunk`` resamples share a pass (memory). The batch orders
are drawn up front from ``seed``, so the result does not depend on ``chunk``.

``batched_losses`` is DAS's loss (``DASObjective.loss``) for several row sets and directions at once;
with one row set it equals ``DASObjective.loss`` (``tests/test_das_refit.py``). ``das_refits`` refits a
fitted DAS estimator on resamples of the train *prompts* (a prompt is the clean prompt of exactly one
train pair, ``pair_rows``), with the estimator's own settings.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.directions.das import DASObjective
from harness.directions.fitting import FitContext
from harness.interventions import hook_names
from harness.interventions.edit import directional_patch, edit_hook, position_mask
from harness.interventions.forward import run_from
from harness.measures.metrics import logit_diff, sentiment_score

CHUNK = 10  # resamples per forward pass (80 rows at batch 8): memory only, the refits do not depend on it


def batched_losses(objective: DASObjective, directions: Float[Tensor, "sets d_model"],
                   clean_activation: Float[Tensor, "n d_model"], rows: Int[Tensor, "sets batch"]) -> Float[Tensor, "sets"]:
    """DAS's loss (``DASObjective.loss``) of each row set ``rows[s]`` patched along ``directions[s]``, in one
    forward pass over every row."""
    sets, batch = rows.shape
    flat = rows.reshape(-1)
    start = 0 if objective.prefix is None else objective.prefix.length
    base = objective.corrupted_block_input[flat][:, start:]
    source = clean_activation[flat][:, None, :].expand(-1, base.shape[1], -1)
    per_row = directions.repeat_interleave(batch, dim=0)[:, None, :]
    hook = edit_hook(directional_patch(per_row, source), position_mask(objective.positions[flat] - start, base.shape[1]))
    name = hook_names.resid(objective.bridge.cfg.n_layers, objective.layer)
    logits = run_from(objective.bridge, base, objective.layer, [(name, hook)],
                      prefix=None if objective.prefix is None else objective.prefix.rows(flat))
    labels = objective.labels[flat]
    mean = lambda score: logit_diff(score, labels).view(sets, batch).mean(-1)
    patched, clean, corrupted = (mean(sentiment_score(logits, objective.answer_ids)),
                                 mean(objective.clean_score[flat]), mean(objective.corrupted_score[flat]))
    return (patched - clean) / (corrupted - clean)


def _clip_rows(gradient: Tensor, max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_`` applied to each row (resample) of ``gradient`` separately."""
    norms = gradient.norm(dim=-1, keepdim=True)
    gradient.mul_((max_norm / (norms + 1e-6)).clamp(max=1.0))


def warm_refits(objective: DASObjective, clean_activation: Float[Tensor, "n d_model"], start: Float[Tensor, "d_model"],
                rows: Int[Tensor, "resamples m"], *, epochs: int, batch_size: int, lr: float, max_grad_norm: float,
                seed: int, chunk: int = CHUNK) -> Float[Tensor, "resamples d_model"]:
    """DAS continued from ``start`` for ``epochs`` epochs on each resample's pairs ``rows[r]`` (indices into
    the objective's rows; module docstring): ``[resamples, d_model]`` unit directions, oriented like ``start``."""
    resamples, m = rows.shape
    generator = torch.Generator().manual_seed(seed)
    orders = torch.stack([torch.stack([torch.randperm(m, generator=generator) for _ in range(resamples)])
                          for _ in range(epochs)])  # [epochs, resamples, m]
    start = start.float() / start.float().norm()
    out = []
    for first in range(0, resamples, chunk):
        part = slice(first, min(first + chunk, resamples))
        offset = torch.zeros(part.stop - part.start, start.shape[0], requires_grad=True)
        optimizer = torch.optim.Adam([offset], lr=lr, betas=(0.9, 0.999), weight_decay=0)
        for epoch in range(epochs):
            drawn = rows[part].gather(1, orders[epoch, part])
            for batch in drawn.split(batch_size, dim=1):
                directions = start + offset
                loss = batched_losses(objective, directions / directions.norm(dim=-1, keepdim=True),
                                      clean_activation, batch).sum()
                optimizer.zero_grad()
                loss.backward()
                _clip_rows(offset.grad, max_grad_norm)
                optimizer.step()
        with torch.no_grad():
            final = start + offset
            out.append((final / final.norm(dim=-1, keepdim=True)).double())
    return torch.cat(out)


def pair_rows(context: FitContext) -> Int[Tensor, "n_prompts"]:
    """The train pair whose clean prompt is each distinct train prompt (DAS's row for that prompt)."""
    clean = context.pairs.clean_index
    if sorted(clean.tolist()) != list(range(len(context.train.prompts))):
        raise ValueError("DAS refits on prompt resamples need every train prompt to be the clean prompt of exactly "
                         "one pair")
    return clean.argsort()


def das_refits(estimator, context: FitContext, layer: int, index: Int[Tensor, "resamples n_prompts"], *,
               epochs: int) -> Float[Tensor, "resamples d_model"]:
    """The fitted DAS ``estimator`` at ``layer`` continued for ``epochs`` epochs on each resample's pairs
    (``index``: prompt draws), with its own batch size, lr, gradient clip and seed (``warm_refits``)."""
    clean, _ = context.training_data("das", layer)
    return warm_refits(context.das_objective(layer), clean, estimator.direction_, pair_rows(context)[index],
                       epochs=epochs, batch_size=estimator.batch_size, lr=estimator.lr,
                       max_grad_norm=estimator.max_grad_norm, seed=estimator.seed)
