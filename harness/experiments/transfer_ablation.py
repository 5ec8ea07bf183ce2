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
  attention sink on some models); the control projects out each of the protocol's ``random_ablations``
  seeded random directions (the first of G1's null) the same way on the same prompts. The methods, the
  position sets, the site and the random count are G2's declared protocol
  (``harness.verdicts.declared.TRANSFER_PROTOCOL``), passed in by the fixture. Every ablated run restarts at the ablated layer
  from the clean residual there (``run_ablations(restart=True)``: the same logits, tested).
- Statistic, per item: the correctness margin m = (logit ` Positive` − logit ` Negative`) signed by the
  label; drop = m_clean − m_ablated. G2 (``ablation_margin_drop``) is the mean over items of (direction's
  drop − the mean of the random directions' drops), i.e. mean_k m_random_k − m_direction (paired); percentile bootstrap over
  items. On a balanced sample the mean drop of the centred margin is the same (centring shifts every
  item's score alike and the signs cancel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.interventions.ablation import Ablation, real_positions, run_ablations
from harness.interventions.edit import unit
from harness.measures.metrics import logit_diff, sentiment_score
from harness.datasets.sst_prompts import Scaffold, SSTCompetence, scaffold_prompts
from harness.measures.statistics import Estimate, bootstrap


def ablation_scores(bridge, scaffold: Scaffold, sentences: Sequence[str], prepend_bos: bool,
                    chosen: dict[str, tuple[int, Float[Tensor, "d_model"]]], random: Float[Tensor, "k d_model"],
                    positions: Sequence[str], site: str, chunk_size: int = 32) -> dict[str, Float[Tensor, "n"]]:
    """Sentiment scores (positive − negative answer logit) of every scaffolded sentence under each ablation
    at ``site``: ``"{method}:{positions}"`` and ``"{method}:{positions}:random{k}"`` (the random direction
    at the method's layer), every method of ``chosen`` (method -> (layer, direction)) and position set of
    ``positions`` ("all", "all_but_first"). Prompts run in chunks of similar length (sorted; each chunk
    padded to its own longest prompt)."""
    answer_ids = scaffold.answer_ids(bridge.tokenizer)
    lengths = [len(bridge.tokenizer.encode(scaffold.format(s), add_special_tokens=False)) for s in sentences]
    order = sorted(range(len(sentences)), key=lambda i: lengths[i])
    scores: dict[str, Tensor] = {}
    for start in range(0, len(order), chunk_size):
        rows = order[start:start + chunk_size]
        prompts = scaffold_prompts(bridge, scaffold, [sentences[i] for i in rows], [0] * len(rows), rows, prepend_bos)
        masks = {"all": real_positions(prompts.attention_mask),
                 "all_but_first": real_positions(prompts.attention_mask, skip_first=True)}
        ablations = []
        for method, (layer, direction) in chosen.items():
            for where in positions:
                ablations.append(Ablation(f"{method}:{where}", "direction", {layer: unit(direction.float())},
                                          masks[where]))
                ablations += [Ablation(f"{method}:{where}:random{k}", "direction", {layer: unit(d.float())},
                                       masks[where]) for k, d in enumerate(random)]
        logits = run_ablations(bridge, prompts.tokens, prompts.attention_mask, ablations, site, restart=True)
        for name, value in logits.items():
            scores.setdefault(name, torch.empty(len(sentences)))[rows] = sentiment_score(value, answer_ids)
    return scores


@dataclass(frozen=True)
class TransferAblations:
    """One dataset's correctness margins before and under each ablation (``ablation_scores``)."""

    dataset: str
    labels: Int[Tensor, "n"]
    clean: Float[Tensor, "n"]  # margins: score signed by the label
    ablated: dict[str, Float[Tensor, "n"]]
    layers: dict[str, int]  # method -> the layer it was ablated at
    random_count: int  # random directions ablated as the control (the protocol's random_ablations)
    site: str  # where (the protocol's ablation_site)
    positions: tuple[str, ...]  # the position sets ablated (the protocol's ablation_positions)

    @classmethod
    def from_scores(cls, dataset: str, labels: Tensor, clean_scores: Tensor, scores: dict[str, Tensor],
                    layers: dict[str, int], random_count: int, site: str,
                    positions: Sequence[str]) -> "TransferAblations":
        return cls(dataset, labels, logit_diff(clean_scores, labels),
                   {name: logit_diff(score, labels) for name, score in scores.items()}, layers, random_count, site,
                   tuple(positions))

    def random_margin(self, method: str, positions: str) -> Float[Tensor, "n"]:
        """Each item's margin under the random ablations at ``method``'s layer, averaged over the directions."""
        return torch.stack([self.ablated[f"{method}:{positions}:random{k}"] for k in range(self.random_count)]).mean(0)

    def excess_drop(self, method: str, positions: str) -> Float[Tensor, "n"]:
        """Per item: the direction's margin drop minus the random directions' mean drop (G2's unit)."""
        return self.random_margin(method, positions) - self.ablated[f"{method}:{positions}"]

    def ablation_margin_drop(self, method: str, positions: str) -> Estimate:
        """G2: the mean over items of ``excess_drop``, percentile bootstrap over items."""
        return bootstrap(lambda d: d.mean(-1), self.excess_drop(method, positions), unit="items")

    def mean_drop(self, method: str, positions: str, random: bool = False) -> float:
        ablated = self.random_margin(method, positions) if random else self.ablated[f"{method}:{positions}"]
        return float((self.clean - ablated).mean())

    def accuracy(self, method: str | None = None, positions: str = "all", random: bool = False) -> float:
        """% of items with margin > 0: clean (``method=None``), under the direction's or the random ablation."""
        if method is None:
            margin = self.clean
        else:
            margin = self.random_margin(method, positions) if random else self.ablated[f"{method}:{positions}"]
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
