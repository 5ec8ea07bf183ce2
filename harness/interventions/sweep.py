"""The directional-patching layer sweep (paper §5.2, §6.2 P1–P2, the layer-sweep figure).

For each layer L and each method with a direction at L, the corrupted prompts are run with every
position of residual boundary L patched along that method's direction from the clean run:
x' = x_corr + (d·x_clean − d·x_corr) d. All methods of one layer share one forward pass (stacked
along the batch, one direction per row), restarted at L from the corrupted run's saved residual.
Clean and corrupted prompts agree before their first differing token (ToyMovieReview: ADJ; SST: the
review's first word after the scaffold's head), where the patch is then a no-op: those positions' keys and
values are computed once (``prefix``) and each run computes the positions from there on only. Prompts are
unpadded and of one length (SST's length-matched pairs run by length group:
``harness.experiments.sst_patching.sst_patching_sweep``).

The random-direction null (P2.random, P5.random; issue 25, item 4): ``null_patching_sweep`` patches each
of K seeded Gaussian directions (``null_directions``, one per layer as the paper's random baseline) at
the declared layers (``null_layers``) exactly as a method's direction is patched, on the same pairs;
``NullPatching.largest_abs`` is each direction's largest |% LD recovered| over those layers, redone on
resampled pairs (``harness.measures.null_quantile`` takes its quantile over the directions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.interventions.forward import block_inputs, run_from
from harness.interventions.edit import directional_patch, edit_hook
from harness.measures.metrics import logit_diff_recovered, logit_flip, sentiment_score
from harness.interventions.prefix_cache import PrefixKV
from harness.runtime.disk_cache import cacheable
from harness.runtime.progress import track
from harness.measures.statistics import (
    CrossFit, Estimate, LayerStatistic, TieRule, bootstrap, cross_fitted, percentile_interval, resample_indices,
)

METRICS = {"ld_recovered": logit_diff_recovered, "logit_flip": logit_flip}
_ROWS_PER_RUN = 1024  # batch rows per patched forward (memory), not a protocol number


@cacheable  # the disk cache stores it (the sweeps' entries)
@dataclass
class PatchingResults:
    """Sentiment scores of the clean, corrupted and every patched run, per pair."""

    labels: Int[Tensor, "n"]
    clean: Float[Tensor, "n"]
    corrupted: Float[Tensor, "n"]
    patched: dict[tuple[str, int], Float[Tensor, "n"]] = field(default_factory=dict)

    def metric(self, name: str, method: str, layer: int) -> float:
        return float(METRICS[name](self.patched[method, layer], self.clean, self.corrupted, self.labels))

    def at_layer(self, name: str, method: str) -> LayerStatistic:
        """``(layer, index [resamples, m]) -> [resamples]``: the metric on the pairs ``index``."""
        def statistic(layer: int, index: Tensor) -> Tensor:
            return METRICS[name](self.patched[method, layer][index], self.clean[index], self.corrupted[index],
                                 self.labels[index])
        return statistic

    def estimate(self, name: str, method: str, layer: int, unit: str = "pairs") -> Estimate:
        """The metric at one layer with its bootstrap CI over pairs."""
        return bootstrap(METRICS[name], self.patched[method, layer], self.clean, self.corrupted, self.labels, unit=unit)

    def cross_fitted(self, name: str, method: str, *, tie: TieRule, select_by: str, layers: list[int] | None = None,
                     unit: str = "pairs") -> CrossFit:
        """The metric ``name`` at the layer chosen by the metric ``select_by`` (continuous: % LD recovered)
        on the other half of the pairs, ties broken by ``tie`` (``harness.measures.statistics.cross_fitted``)."""
        return cross_fitted(self.at_layer(name, method), layers or self.layers(method), self.labels, unit=unit, tie=tie,
                            select=self.at_layer(select_by, method))

    def layer_cis(self, name: str, method: str) -> dict[int, tuple[float, float]]:
        """Each layer's 95% percentile CI over pairs, as ``estimate`` gives it (the same resamples), computed
        for all layers at once (the sweep figure's bands); a layer undefined in every resample has none."""
        layers = self.layers(method)
        index = resample_indices(len(self.labels))
        stacked = torch.stack([self.patched[method, layer] for layer in layers])
        draws = METRICS[name](stacked[:, index], self.clean[index], self.corrupted[index], self.labels[index]).double()
        intervals = {layer: percentile_interval(row) for layer, row in zip(layers, draws)}
        return {layer: interval for layer, interval in intervals.items() if interval is not None}

    def layers(self, method: str) -> list[int]:
        return sorted(layer for m, layer in self.patched if m == method)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for m, _ in self.patched))

    def best_layer(self, method: str, metric: str = "ld_recovered") -> int:
        """The layer where ``method`` recovers the most (the paper's max over layers per method)."""
        return max(self.layers(method), key=lambda layer: self.metric(metric, method, layer))

    def table(self, metric: str) -> dict[str, dict[int, float]]:
        return {m: {layer: self.metric(metric, m, layer) for layer in self.layers(m)} for m in self.methods()}


def directional_patching_sweep(
    bridge,
    clean_resid: Float[Tensor, "boundary n pos d_model"],
    corrupted_resid: Float[Tensor, "boundary n pos d_model"],
    labels: Int[Tensor, "n"],
    answer_ids: Int[Tensor, "2 n_answers"],
    directions: dict[str, dict[int, Float[Tensor, "d_model"]]],
    prefix: PrefixKV | None = None,
) -> PatchingResults:
    """Patch every (method, layer) direction, one forward pass per layer. With ``prefix`` (the corrupted
    prompts' keys and values of the positions before ``prefix.length``, where clean and corrupted
    prompts have the same tokens, so the patch changes nothing there), each run computes only the
    positions from there on (``harness.interventions.prefix_cache``)."""
    n_layers = clean_resid.shape[0] - 1
    results = PatchingResults(labels, *unpatched_scores(bridge, clean_resid, corrupted_resid, answer_ids))
    for layer in track(range(n_layers + 1)):
        methods = [m for m in directions if layer in directions[m]]
        if not methods:
            continue
        stacked = torch.stack([directions[m][layer] for m in methods]).float()  # [M, d]
        scores = patched_scores(bridge, clean_resid, corrupted_resid, layer, stacked, answer_ids, prefix)
        for method, score in zip(methods, scores):
            results.patched[method, layer] = score
    return results


def patched_scores(bridge, clean_resid: Tensor, corrupted_resid: Tensor, layer: int, stacked: Float[Tensor, "M d_model"],
                   answer_ids: Tensor, prefix: PrefixKV | None) -> Float[Tensor, "M n"]:
    """Sentiment scores of the corrupted runs patched at boundary ``layer`` along each of the M directions
    ``stacked`` (every position from ``prefix.length`` on), the directions stacked along the batch, at most
    ``_ROWS_PER_RUN`` rows per forward."""
    n_layers, n = clean_resid.shape[0] - 1, clean_resid.shape[1]
    start = 0 if prefix is None else prefix.length
    per_run = max(1, _ROWS_PER_RUN // n)
    out = []
    for chunk in stacked.split(per_run):
        m = len(chunk)
        per_row = chunk.repeat_interleave(n, dim=0)[:, None, :]  # [m*n, 1, d]
        source = clean_resid[layer][:, start:].repeat(m, 1, 1)
        base = block_inputs(corrupted_resid, layer)[:, start:].repeat(m, 1, 1)
        hook = edit_hook(directional_patch(per_row, source))
        cache = None if prefix is None else prefix.rows(torch.arange(n).repeat(m))
        with torch.no_grad():
            logits = run_from(bridge, base, layer, [(hook_names.resid(n_layers, layer), hook)], prefix=cache)
        out.append(sentiment_score(logits, answer_ids).view(m, n))
    return torch.cat(out)


def null_directions(count: int, layers: Sequence[int], d_model: int, seed: int) -> Float[Tensor, "count layer d_model"]:
    """The random-direction null: ``count`` seeded Gaussian directions, one vector per layer of ``layers``
    (as the paper's random baseline draws one per layer), unit-normalised. The sign is immaterial: the
    patch x + (d·(x_clean − x)) d is the same for −d."""
    drawn = torch.randn(count, len(layers), d_model, generator=torch.Generator().manual_seed(seed))
    return drawn / drawn.norm(dim=-1, keepdim=True)


def null_layers(fitted_layers: Sequence[int], n_layers: int, min_depth: float) -> list[int]:
    """The null's declared layer grid: the layers of ``fitted_layers`` (DAS's) at relative depth
    ``min_depth`` or deeper."""
    return [layer for layer in fitted_layers if layer >= min_depth * n_layers]


def null_patching_sweep(
    bridge,
    clean_resid: Float[Tensor, "boundary n pos d_model"],
    corrupted_resid: Float[Tensor, "boundary n pos d_model"],
    labels: Int[Tensor, "n"],
    answer_ids: Int[Tensor, "2 n_answers"],
    null: Float[Tensor, "count layer d_model"],
    layers: Sequence[int],
    prefix: PrefixKV | None = None,
) -> "NullPatching":
    """Every null direction patched at its layer of ``layers``, exactly as a method's direction is
    (``directional_patching_sweep``: the same positions, pairs and clean/corrupted runs)."""
    if null.shape[1] != len(layers):
        raise ValueError(f"{null.shape[1]} null directions per draw for {len(layers)} layers")
    scored = torch.stack([patched_scores(bridge, clean_resid, corrupted_resid, layer, null[:, i], answer_ids, prefix)
                          for i, layer in enumerate(track(layers))], dim=1)
    return NullPatching(labels, *unpatched_scores(bridge, clean_resid, corrupted_resid, answer_ids), list(layers), scored)


@cacheable  # the disk cache stores it (the null sweeps' entries)
@dataclass
class NullPatching:
    """The random-direction null's patched scores, ``patched[k, i, pair]`` for direction k at ``layers[i]``,
    with the clean and corrupted scores of the same pairs (§5.2, §6.2: P2.random, P5.random)."""

    labels: Int[Tensor, "n"]
    clean: Float[Tensor, "n"]
    corrupted: Float[Tensor, "n"]
    layers: list[int]
    patched: Float[Tensor, "count layer n"]

    def __len__(self) -> int:
        return self.patched.shape[0]

    def ld_recovered(self, index: Tensor) -> Float[Tensor, "resamples count layer"]:
        """% LD recovered of every direction at every layer on the pairs of each row of ``index``."""
        return logit_diff_recovered(self.patched[:, :, index].permute(2, 0, 1, 3), self.clean[index][:, None, None],
                                    self.corrupted[index][:, None, None], self.labels[index][:, None, None])

    def largest_abs(self, index: Tensor) -> Float[Tensor, "resamples count"]:
        """P2.random's and P5.random's statistic per direction: the largest |% LD recovered| over the
        layers, redone on the pairs of each row of ``index`` (``[resamples, m]``)."""
        return self.ld_recovered(index).abs().amax(-1)

    def describe(self, quantiles: Sequence[float]) -> str:
        """The spread of the directions' statistic on all pairs, for a row's details."""
        each = self.largest_abs(torch.arange(len(self.labels))[None])[0].double()
        spread = ", ".join(f"{q:.1%} quantile {float(torch.quantile(each, q)):.2f}" for q in quantiles)
        return (f"each direction's largest |% LD recovered| over layers {self.layers}: {spread}, max "
                f"{float(each.max()):.2f} over the {len(self)} directions; {len(self.labels)} pairs")


def unpatched_scores(bridge, clean_resid: Tensor, corrupted_resid: Tensor, answer_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Scores of the clean and the corrupted runs, each from its saved residual at the last block's input."""
    n_layers = clean_resid.shape[0] - 1
    with torch.no_grad():
        return tuple(sentiment_score(run_from(bridge, block_inputs(resid, n_layers), n_layers), answer_ids)
                     for resid in (clean_resid, corrupted_resid))


@dataclass(frozen=True)
class ToySweep:
    """The ToyMovieReview directional-patching sweep, as the report shows it (§5.2)."""

    results: PatchingResults
    n_layers: int
