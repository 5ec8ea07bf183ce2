"""G2: ablating the transferred direction hurts the model's classification of the transfer data, beyond
what ablating random directions does (the causal counterpart of G1; the paper's §5.3 ablates DAS on SST).

- Prompts: every sampled item of a sentiment dataset in the SST CLASSIFICATION scaffold
  (``harness.datasets.sst_prompts``: ``Review Text: {TEXT} Review Sentiment:``, answers ` Positive` / ` Negative`).
- Gate: the model's centred accuracy (§5.1) over those prompts must pass P0's declared rule for the
  classification case; otherwise the claim does not apply (a model that cannot classify the data has no
  classification to hurt).
- Ablation (``harness.interventions.ablation``): the method's unit direction projected out at its layer chosen on SST
  (``harness.experiments.transfer.choose_layers``), at the boundary it was read and fitted at (the protocol's
  ``resid_pre``: no off-by-one), at every position, or every position but each prompt's first (BOS, an
  attention sink on some models). The null: each of the protocol's ``random_ablations`` seeded random
  directions (the first of G1's null) projected out exactly the same way (same layer, positions, items);
  methods sharing a layer share it. The methods, the position sets, the site, the null's size and quantile
  are G2's declared protocol (``harness.verdicts.protocols.TRANSFER_PROTOCOL``), passed in by the fixture.
  Every ablated run restarts at the ablated layer from the clean residual there
  (``run_ablations(restart=True)``: the same logits, tested); the random directions ride the batch axis.
- Statistic: the correctness margin m = (logit ` Positive` − logit ` Negative`) signed by the label, per
  item; a direction's drop is the mean over items of m_clean − m_ablated. G2 (``ablation_margin_drop``) is
  the method's drop minus the null's ``null_quantile`` quantile of the random directions' drops, both
  recomputed on every bootstrap resample of the items (paired); studentized (bootstrap-t) CI over items
  (``harness.measures.intervals.interval``; the means through ``harness.measures.unit_means``). On a
  balanced sample the mean drop of the centred margin is the same (centring shifts every item's score
  alike and the signs cancel).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from harness.interventions.ablation import Ablation, real_positions, run_ablations
from harness.interventions.edit import unit
from harness.interventions.prefix_cache import shared_prefix
from harness.measures.metrics import logit_diff, sentiment_score
from harness.datasets.sst_prompts import Scaffold, SSTCompetence, scaffold_prompts
from harness.measures.intervals import interval
from harness.measures.statistics import Estimate
from harness.measures.unit_means import column_means, unit_ids


def null_rows(labels: Int[Tensor, "n"], per_class: int, seed: int) -> Int[Tensor, "m"]:
    """The items the null runs on: ``per_class`` of each class (all of a smaller class), seeded, in order."""
    generator = torch.Generator().manual_seed(seed)
    picked = [rows[torch.randperm(len(rows), generator=generator)[:per_class]]
              for rows in ((labels == label).nonzero().flatten() for label in labels.unique(sorted=True))]
    return torch.cat(picked).sort().values


def ablation_scores(bridge, scaffold: Scaffold, sentences: Sequence[str], prepend_bos: bool,
                    chosen: dict[str, tuple[int, Float[Tensor, "d_model"]]], random: Float[Tensor, "k d_model"],
                    random_rows: Sequence[int], positions: Sequence[str], site: str, chunk_size: int = 32,
                    null_chunk_size: int = 8, group_size: int = 64) -> dict[str, Float[Tensor, "n"]]:
    """Sentiment scores (positive − negative answer logit) of every scaffolded sentence under each ablation
    at ``site``: ``"{method}:{positions}"`` on every sentence and ``"{method}:{positions}:random{k}"``
    (random direction k at the method's layer, computed once per layer) on the sentences ``random_rows``
    (NaN elsewhere), every method of ``chosen`` (method -> (layer, direction)) and position set of
    ``positions`` ("all", "all_but_first"). Prompts run in chunks of one length (unpadded; the null's in
    smaller chunks, ``null_chunk_size``, as its many directions fill the batch), the scaffold's head once per
    ablation (``run_ablations(shared_prefix=...)``), at most ``group_size`` ablations stacked on the batch axis."""
    layers = sorted({layer for layer, _ in chosen.values()})
    scores: dict[str, Tensor] = {}

    def methods(masks: dict) -> list[Ablation]:
        return [Ablation(f"{method}:{where}", "direction", {layer: unit(direction.float())}, masks[where])
                for method, (layer, direction) in chosen.items() for where in positions]

    def null(masks: dict) -> list[Ablation]:
        return [Ablation(f"random@{layer}:{where}:{k}", "direction", {layer: unit(d.float())}, masks[where])
                for layer in layers for where in positions for k, d in enumerate(random)]

    for ablations, rows, size in ((methods, range(len(sentences)), chunk_size), (null, random_rows, null_chunk_size)):
        _score_chunks(bridge, scaffold, sentences, rows, prepend_bos, ablations, site, size, group_size, scores)
    for method, (layer, _) in chosen.items():
        for where in positions:
            scores |= {f"{method}:{where}:random{k}": scores[f"random@{layer}:{where}:{k}"] for k in range(len(random))}
    return {name: score for name, score in scores.items() if not name.startswith("random@")}


def _score_chunks(bridge, scaffold: Scaffold, sentences: Sequence[str], rows: Sequence[int], prepend_bos: bool,
                  ablations, site: str, chunk_size: int, group_size: int, scores: dict[str, Tensor]) -> None:
    """Fill ``scores[name][rows]`` with each ablation's sentiment score, ``rows`` in chunks of one prompt length
    (unpadded), the scaffold's head (the tokens every prompt of a chunk starts with) run once per ablation."""
    answer_ids = scaffold.answer_ids(bridge.tokenizer)
    rows = [int(row) for row in rows]
    lengths = {i: len(bridge.tokenizer.encode(scaffold.format(sentences[i]), add_special_tokens=False)) for i in rows}
    order = sorted(rows, key=lambda i: lengths[i])
    groups = [[i for i in order if lengths[i] == length] for length in sorted(set(lengths.values()))]
    for chunk in (group[start:start + chunk_size] for group in groups for start in range(0, len(group), chunk_size)):
        prompts = scaffold_prompts(bridge, scaffold, [sentences[i] for i in chunk], [0] * len(chunk), chunk, prepend_bos)
        masks = {"all": real_positions(prompts.attention_mask),
                 "all_but_first": real_positions(prompts.attention_mask, skip_first=True)}
        head = shared_prefix(prompts.tokens, prompts.tokens[:1].expand_as(prompts.tokens))
        out = run_ablations(bridge, prompts.tokens, prompts.attention_mask, ablations(masks), site, restart=True,
                            group_size=group_size, readout=lambda logits: sentiment_score(logits, answer_ids),
                            shared_prefix=head)
        for name, value in out.items():
            scores.setdefault(name, torch.full((len(sentences),), torch.nan))[chunk] = value


@dataclass(frozen=True)
class TransferAblations:
    """One dataset's correctness margins before and under each ablation (``ablation_scores``)."""

    dataset: str
    labels: Int[Tensor, "n"]
    clean: Float[Tensor, "n"]  # margins: score signed by the label
    ablated: dict[str, Float[Tensor, "n"]]
    layers: dict[str, int]  # method -> the layer it was ablated at
    random_count: int  # random directions ablated as the null (the protocol's random_ablations)
    null_quantile: float  # the null's quantile G2 subtracts (the protocol's null_quantile)
    site: str  # where (the protocol's ablation_site)
    positions: tuple[str, ...]  # the position sets ablated (the protocol's ablation_positions)

    @classmethod
    def from_scores(cls, dataset: str, labels: Tensor, clean_scores: Tensor, scores: dict[str, Tensor],
                    layers: dict[str, int], random_count: int, null_quantile: float, site: str,
                    positions: Sequence[str]) -> "TransferAblations":
        return cls(dataset, labels, logit_diff(clean_scores, labels),
                   {name: logit_diff(score, labels) for name, score in scores.items()}, layers, random_count,
                   null_quantile, site, tuple(positions))

    def null_margins(self, method: str, positions: str) -> Float[Tensor, "k n"]:
        """Each item's margin under each random ablation at ``method``'s layer (the null; NaN on the items
        it did not run on)."""
        return torch.stack([self.ablated[f"{method}:{positions}:random{k}"] for k in range(self.random_count)])

    @property
    def null_items(self) -> Bool[Tensor, "n"]:
        """The items the null ran on (the protocol's null_items_per_class of each class)."""
        return torch.isfinite(torch.stack([v for name, v in self.ablated.items() if ":random" in name])).all(0)

    def null_drops(self, method: str, positions: str) -> Float[Tensor, "k"]:
        """Each random direction's mean margin drop over the items it ran on."""
        ran = self.null_items
        return (self.clean[ran] - self.null_margins(method, positions)[:, ran]).mean(-1)

    def null_quantile_drop(self, method: str, positions: str) -> float:
        """The null's ``null_quantile`` quantile of the random directions' mean drops."""
        return float(torch.quantile(self.null_drops(method, positions).double(), self.null_quantile))

    def ablation_margin_drop(self, method: str, positions: str) -> Estimate:
        """G2: the method's mean margin drop minus the null's quantile of the random directions' mean drops
        (over the null's items among the drawn ones), both recomputed on every resample of the items
        (paired), studentized CI over items."""
        drops = self.clean - torch.cat([self.ablated[f"{method}:{positions}"][None], self.null_margins(method, positions)])

        def statistic(index: Tensor) -> Tensor:
            means = column_means(drops, index)
            return means[0] - torch.quantile(means[1:], self.null_quantile, dim=0)

        estimate = interval(statistic, unit_ids(len(self.clean)), unit="items")
        return dataclasses.replace(estimate, method=f"paired difference, {estimate.method}")

    def mean_drop(self, method: str, positions: str, random: bool = False) -> float:
        """The mean margin drop over items: the method's, or (``random``) the null's mean drop."""
        if random:
            return float(self.null_drops(method, positions).mean())
        return float((self.clean - self.ablated[f"{method}:{positions}"]).mean())

    def accuracy(self, method: str | None = None, positions: str = "all", random: bool = False) -> float:
        """% of items with margin > 0: clean (``method=None``), under the direction's ablation, or (``random``)
        under each random direction's, over the null's items and directions."""
        if method is None:
            margin = self.clean
        else:
            margin = self.null_margins(method, positions)[:, self.null_items] if random else self.ablated[
                f"{method}:{positions}"]
        return float((margin > 0).float().mean() * 100)


@dataclass(frozen=True)
class TransferCompetence:
    """G2's gate on one dataset: the model's centred accuracy over its sampled items in the SST
    CLASSIFICATION scaffold (``harness.datasets.sst_prompts.competence``), decided by P0's classification rule."""

    dataset: str
    competence: SSTCompetence
    logits: Float[Tensor, "n 2"]  # the answers' logits (positive, negative) per item, unablated
    applies: bool  # P0's classification rule replicates on these items

    @property
    def scores(self) -> Float[Tensor, "n"]:
        return self.logits[:, 0] - self.logits[:, 1]
