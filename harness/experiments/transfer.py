"""Does the ToyMovieReview direction separate sentiment on other data, and only sentiment? (G1, G3)

The paper fits its directions on ToyMovieReview and tests them on SST (§5.2, §6.2). Here each method's
direction is read on other datasets (``harness.datasets.transfer``): sentiment datasets (MPQA) and
specificity controls without a sentiment label (subjective vs objective sentences).

- Reading (``item_residuals``): one forward per item set (batched by length) keeps, at every residual
  boundary, the residual at the item's last token and the mean over its tokens (BOS and padding left
  out); an item's score is the cosine projection (``harness.experiments.correlation.cosine_projections``) of one of
  them onto the direction. The last token is the claim's reading; the token mean is shown beside it.
- Layer and sign, chosen on SST, never on the target data (``choose_layers``): for each method, among
  its layers, the layer whose last-token projection has the highest AUROC on a seeded balanced sample
  of the SST held-out split, each layer's direction oriented (+ = positive) on that sample first.
- Null: the protocol's ``null_directions`` seeded random Gaussian directions (``harness.experiments.
  corpus_projections.null_directions``) at the method's chosen layer, each oriented on the same SST sample
  like the method's.
- G1 (per sentiment dataset and method; ``auroc_above_null``): AUROC(positive vs negative) − the
  protocol's ``null_quantile`` quantile of the null's AUROCs on the same items; CI: percentile bootstrap
  over items, both terms recomputed on each resample (paired; ``harness.experiments.correlation.by_sentence``
  with the item as the unit).
- G3 (per specificity dataset, sentiment dataset and method; ``specificity_gap``): separation
  |AUROC − 0.5| on the sentiment dataset minus that on the control; CI: each dataset's items resampled
  independently.

The null's size and quantile are the G claims' declared protocol (``harness.verdicts.declared.
TRANSFER_PROTOCOL``), passed in by the fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions import hook_names
from harness.experiments.correlation import auroc, auroc_of_counts, by_sentence, cosine_projections, of_drawn_units
from harness.interventions.forward import activations
from harness.datasets.lexicon import NEGATIVE, POSITIVE
from harness.measures.statistics import (
    SENTENCE_RESAMPLES, Estimate, current_seed, draws_estimate, resample_indices, seeded,
)
from harness.datasets.tokens import tokenize_padded
from harness.datasets.transfer import TransferSample

READINGS = ("last", "mean")  # last token (the claims), mean over the item's tokens (shown beside it)


def item_residuals(bridge, texts: Sequence[str], prepend_bos: bool, batch_size: int = 32
                   ) -> dict[str, Float[Tensor, "boundary n d_model"]]:
    """``{"last": ..., "mean": ...}``: at every residual boundary 0..n_layers, each text's residual at its
    last token and its mean over the text's tokens (BOS and padding left out); texts batched by length."""
    n_layers = bridge.cfg.n_layers
    names = hook_names.resid_all(n_layers)
    lengths = [len(bridge.tokenizer.encode(text, add_special_tokens=False)) for text in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    d_model = bridge.cfg.d_model
    out = {reading: torch.empty(n_layers + 1, len(texts), d_model) for reading in READINGS}
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        tokens, mask = tokenize_padded(bridge, [texts[i] for i in rows], prepend_bos)
        cache = activations(bridge, tokens, names, mask)
        resid = torch.stack([cache[name] for name in names])  # [boundary, batch, pos, d]
        own = mask.bool().clone()
        if prepend_bos:
            own[torch.arange(len(own)), own.int().argmax(-1)] = False  # each row's first real token: BOS
        weights = own.float() / own.sum(-1, keepdim=True)
        out["last"][:, rows] = resid[:, :, -1]
        out["mean"][:, rows] = torch.einsum("lbpd,bp->lbd", resid, weights)
    return out


def signed_labels(labels: Int[Tensor, "n"]) -> Int[Tensor, "n"]:
    """Labels 1/0 as the lexicon's POSITIVE/NEGATIVE (the AUROC helpers' convention): class 1 scores high."""
    return torch.where(torch.as_tensor(labels) == 1, POSITIVE, NEGATIVE)


def orientation(projections: Float[Tensor, "n"], labels: Int[Tensor, "n"]) -> float:
    """+1 where class 1 projects higher than class 0 (AUROC >= 0.5), else −1."""
    return 1.0 if auroc(projections, signed_labels(labels)) >= 0.5 else -1.0


@dataclass(frozen=True)
class LayerChoice:
    """A method's layer and sign, chosen on the SST sample."""

    layer: int
    signs: dict[int, float]  # layer -> +1 / −1: the orientation of that layer's direction on the SST sample
    sst_auroc: dict[int, float]  # layer -> AUROC of the oriented last-token projection on the SST sample

    @property
    def sign(self) -> float:
        return self.signs[self.layer]


def choose_layers(sst_last: Float[Tensor, "boundary n d_model"], sst_labels: Int[Tensor, "n"],
                  directions: dict[str, dict[int, Tensor]]) -> dict[str, LayerChoice]:
    """Per method: every layer's direction oriented on the SST sample, then the layer of highest AUROC."""
    chosen = {}
    for method, by_layer in directions.items():
        signs, scores = {}, {}
        for layer, direction in by_layer.items():
            projections = cosine_projections(sst_last[layer], direction)
            signs[layer] = orientation(projections, sst_labels)
            scores[layer] = auroc(signs[layer] * projections, signed_labels(sst_labels))
        best = max(scores, key=lambda layer: (scores[layer], -layer))
        chosen[method] = LayerChoice(best, signs, scores)
    return chosen


def separation_of_counts(projections: Float[Tensor, "n"], labels: Int[Tensor, "n"]):
    """``counts -> |AUROC − 0.5|`` of the items drawn ``counts`` times (``auroc_of_counts``, items as units)."""
    of_counts = auroc_of_counts(projections, signed_labels(labels), torch.arange(len(projections)))
    return lambda counts: (of_counts(counts) - 0.5).abs()


def auroc_above_null_of_counts(projections: Float[Tensor, "n"], null_projections: Float[Tensor, "r n"],
                               labels: Int[Tensor, "n"], quantile: float):
    """``counts -> AUROC(projections) − quantile(AUROC of each null row)``, both on the same draw counts."""
    items, target = torch.arange(len(projections)), signed_labels(labels)
    method = auroc_of_counts(projections, target, items)
    null = [auroc_of_counts(row, target, items) for row in null_projections]
    return lambda counts: method(counts) - torch.quantile(torch.stack([f(counts) for f in null]), quantile, dim=0)


def auroc_above_null_estimate(projections: Float[Tensor, "n"], null_projections: Float[Tensor, "r n"],
                              labels: Int[Tensor, "n"], quantile: float, resamples: int = SENTENCE_RESAMPLES
                              ) -> Estimate:
    """G1's statistic, AUROC minus the null's ``quantile`` quantile, with its paired percentile CI over items
    (the session's seed)."""
    return by_sentence(auroc_above_null_of_counts(projections, null_projections, labels, quantile), len(projections),
                       resamples, unit="items")


def separation_difference(sentiment: tuple[Tensor, Tensor], control: tuple[Tensor, Tensor],
                          resamples: int = SENTENCE_RESAMPLES) -> Estimate:
    """G3's statistic: |AUROC − 0.5| on ``sentiment`` (projections, labels) minus on ``control``, each dataset's items
    resampled independently (seeds: the session's, and the next)."""
    sides = []
    for offset, (projections, labels) in enumerate((sentiment, control)):
        n = len(projections)
        of_index = of_drawn_units(separation_of_counts(projections, labels), n)
        index = resample_indices(n, resamples, seed=current_seed() + offset)
        sides.append((float(of_index(torch.arange(n)[None])[0]), of_index(index)))
    (a, draws_a), (b, draws_b) = sides
    n = len(sentiment[0]) + len(control[0])
    return draws_estimate(a - b, draws_a - draws_b, n, "items (both datasets)",
                          "percentile bootstrap, each dataset's items resampled independently")


@dataclass(frozen=True)
class TransferProjections:
    """One dataset's items projected onto every method's direction (oriented on SST) at every layer."""

    sample: TransferSample
    by_layer: dict[str, dict[str, Float[Tensor, "layers n"]]]  # reading -> method -> [len(layers of method), n]
    layers: dict[str, tuple[int, ...]]  # method -> its layers (rows of by_layer)
    null: dict[str, Float[Tensor, "r n"]]  # method -> the oriented null's last-token projections at its layer

    @property
    def labels(self) -> Int[Tensor, "n"]:
        return self.sample.labels

    def at(self, method: str, layer: int, reading: str = "last") -> Float[Tensor, "n"]:
        return self.by_layer[reading][method][self.layers[method].index(layer)]

    def auroc_by_layer(self, method: str, reading: str = "last") -> dict[int, float]:
        target = signed_labels(self.labels)
        return {layer: auroc(row, target) for layer, row in zip(self.layers[method], self.by_layer[reading][method])}


def null_signs(null: Float[Tensor, "r d_model"], sst_last: Float[Tensor, "boundary n d_model"],
               sst_labels: Int[Tensor, "n"], layer: int) -> Float[Tensor, "r"]:
    """Each null direction's orientation on the SST sample at ``layer`` (as a method's direction is oriented)."""
    return torch.tensor([orientation(cosine_projections(sst_last[layer], d), sst_labels) for d in null])


def project_sample(residuals: dict[str, Tensor], sample: TransferSample, directions: dict[str, dict[int, Tensor]],
                   chosen: dict[str, LayerChoice], null: Float[Tensor, "r d_model"],
                   sst_last: Float[Tensor, "boundary n d_model"], sst_labels: Int[Tensor, "n"]) -> TransferProjections:
    """``residuals`` (``item_residuals`` of the sample) projected onto every direction, each layer's sign
    from the SST sample, and the null at each method's chosen layer (oriented on the SST sample)."""
    by_layer: dict[str, dict[str, Tensor]] = {reading: {} for reading in READINGS}
    layers, null_rows = {}, {}
    for method, by in directions.items():
        layers[method], signs = tuple(sorted(by)), chosen[method].signs
        for reading in READINGS:
            by_layer[reading][method] = torch.stack([signs[layer] * cosine_projections(residuals[reading][layer], by[layer])
                                                     for layer in layers[method]])
        layer = chosen[method].layer
        signs_null = null_signs(null, sst_last, sst_labels, layer)
        null_rows[method] = torch.stack([sign * cosine_projections(residuals["last"][layer], d)
                                         for sign, d in zip(signs_null, null)])
    return TransferProjections(sample, by_layer, layers, null_rows)


@dataclass(frozen=True)
class TransferResults:
    """Every dataset's projections, the layer choices made on SST, and the claims' estimates (computed
    once, under the session's seed)."""

    datasets: dict[str, TransferProjections]
    chosen: dict[str, LayerChoice]
    sst: TransferSample
    n_layers: int
    null_count: int  # random directions in the null (the protocol's null_directions)
    null_quantile_level: float  # the null's quantile G1 subtracts (the protocol's null_quantile)
    seed: int = 0
    _estimates: dict = field(default_factory=dict, repr=False, compare=False)

    def sentiment(self) -> list[str]:
        return [name for name, data in self.datasets.items() if not data.sample.dataset.specificity]

    def specificity(self) -> list[str]:
        return [name for name, data in self.datasets.items() if data.sample.dataset.specificity]

    def auroc(self, dataset: str, method: str, reading: str = "last") -> float:
        data = self.datasets[dataset]
        return auroc(data.at(method, self.chosen[method].layer, reading), signed_labels(data.labels))

    def null_quantile(self, dataset: str, method: str) -> float:
        data = self.datasets[dataset]
        values = torch.tensor([auroc(row, signed_labels(data.labels)) for row in data.null[method]], dtype=torch.float64)
        return float(torch.quantile(values, self.null_quantile_level))

    def auroc_above_null(self, dataset: str, method: str) -> Estimate:
        """G1: the method's AUROC on ``dataset`` minus the oriented null's quantile (paired CI over items)."""
        if ("auroc_above_null", dataset, method) not in self._estimates:
            data = self.datasets[dataset]
            with seeded(self.seed):
                self._estimates["auroc_above_null", dataset, method] = auroc_above_null_estimate(
                    data.at(method, self.chosen[method].layer), data.null[method], data.labels,
                    self.null_quantile_level)
        return self._estimates["auroc_above_null", dataset, method]

    def specificity_gap(self, control: str, dataset: str, method: str) -> Estimate:
        """G3: the method's separation on ``dataset`` minus on the specificity ``control``."""
        if ("specificity_gap", control, dataset, method) not in self._estimates:
            layer = self.chosen[method].layer
            sides = [(self.datasets[name].at(method, layer), self.datasets[name].labels) for name in (dataset, control)]
            with seeded(self.seed):
                self._estimates["specificity_gap", control, dataset, method] = separation_difference(*sides)
        return self._estimates["specificity_gap", control, dataset, method]
