"""The directional-patching layer sweep (paper §5.2, §6.2 P1–P2, the layer-sweep figure).

For each layer L and each method with a direction at L, the corrupted prompts are run with every
position of residual boundary L patched along that method's direction from the clean run:
x' = x_corr + (d·x_clean − d·x_corr) d. All methods of one layer share one forward pass (stacked
along the batch, one direction per row), restarted at L from the corrupted run's saved residual.
ToyMovieReview's clean and corrupted prompts agree before ADJ, where the patch is then a no-op: those
positions' keys and values are computed once (``prefix``) and each run computes ADJ onwards only.
Prompts of different lengths (SST, §2.3) are left-padded; pass their ``attention_mask``, which clean and
corrupted must share (length-matched pairs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    CrossFit, Estimate, LayerStatistic, bootstrap, cross_fitted, percentile_interval, resample_indices,
)

METRICS = {"ld_recovered": logit_diff_recovered, "logit_flip": logit_flip}


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

    def cross_fitted(self, name: str, method: str, layers: list[int] | None = None, unit: str = "pairs") -> CrossFit:
        """The metric at the layer chosen on the other half of the pairs (``harness.measures.statistics.cross_fitted``)."""
        return cross_fitted(self.at_layer(name, method), layers or self.layers(method), self.labels, unit=unit)

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


def largest_abs_over_layers(patched: Float[Tensor, "layer *resamples n"], clean: Tensor, corrupted: Tensor,
                            labels: Tensor) -> Tensor:
    """P2.random's statistic: max over layers of |% LD recovered|, for a bootstrap over pairs that redoes
    the maximum in each resample."""
    return logit_diff_recovered(patched, clean, corrupted, labels).abs().max(0).values


def directional_patching_sweep(
    bridge,
    clean_resid: Float[Tensor, "boundary n pos d_model"],
    corrupted_resid: Float[Tensor, "boundary n pos d_model"],
    labels: Int[Tensor, "n"],
    answer_ids: Int[Tensor, "2 n_answers"],
    directions: dict[str, dict[int, Float[Tensor, "d_model"]]],
    attention_mask: Int[Tensor, "n pos"] | None = None,
    prefix: PrefixKV | None = None,
) -> PatchingResults:
    """Patch every (method, layer) direction, one forward pass per layer. With ``prefix`` (the corrupted
    prompts' keys and values of the positions before ``prefix.length``, where clean and corrupted
    prompts have the same tokens, so the patch changes nothing there), each run computes only the
    positions from there on (``harness.interventions.prefix_cache``)."""
    n_layers = clean_resid.shape[0] - 1
    n = clean_resid.shape[1]
    if prefix is not None and attention_mask is not None:
        raise ValueError("a key/value prefix needs unpadded prompts; got an attention mask too")
    start = 0 if prefix is None else prefix.length
    results = PatchingResults(
        labels=labels,
        clean=_score_final(bridge, clean_resid, answer_ids, attention_mask),
        corrupted=_score_final(bridge, corrupted_resid, answer_ids, attention_mask),
    )
    for layer in track(range(n_layers + 1)):
        methods = [m for m in directions if layer in directions[m]]
        if not methods:
            continue
        stacked = torch.stack([directions[m][layer] for m in methods]).float()  # [M, d]
        per_row = stacked.repeat_interleave(n, dim=0)[:, None, :]  # [M*n, 1, d]
        source = clean_resid[layer][:, start:].repeat(len(methods), 1, 1)
        base = block_inputs(corrupted_resid, layer)[:, start:].repeat(len(methods), 1, 1)
        hook = edit_hook(directional_patch(per_row, source))
        mask = None if attention_mask is None else attention_mask.repeat(len(methods), 1)
        cache = None if prefix is None else prefix.rows(torch.arange(n).repeat(len(methods)))
        with torch.no_grad():
            logits = run_from(bridge, base, layer, [(hook_names.resid(n_layers, layer), hook)], attention_mask=mask,
                              prefix=cache)
        scores = sentiment_score(logits, answer_ids).view(len(methods), n)
        for method, score in zip(methods, scores):
            results.patched[method, layer] = score
    return results


def _score_final(bridge, resid: Tensor, answer_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Scores of an unpatched run, from its saved residual at the last block's input."""
    n_layers = resid.shape[0] - 1
    with torch.no_grad():
        logits = run_from(bridge, block_inputs(resid, n_layers), n_layers, attention_mask=attention_mask)
    return sentiment_score(logits, answer_ids)


@dataclass(frozen=True)
class ToySweep:
    """The ToyMovieReview directional-patching sweep, as the report shows it (§5.2)."""

    results: PatchingResults
    n_layers: int
