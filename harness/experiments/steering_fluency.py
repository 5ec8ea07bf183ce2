"""S1's fluency control (paper §5.5; issue 26 item 6): steering counts only where the text is still text.

A strong enough activation addition turns the continuation into noise, which the lexicon labels
neutral, so a share of the steered-to label read over the whole grid rises and then falls for a reason
that has nothing to do with sentiment. The control, declared in S1's protocol (``STEERING_PROTOCOL``):

- a sample's fluency is the mean negative log-likelihood per token of its continuation alone (the
  prompt left out, so a continuation is not penalised for disagreeing with the prompt's sentiment, which
  is what steering asks of it) under the unsteered model, BOS as its context where the model prepends
  one (``text_nll``);
- a sample is fluent when that NLL is at most the protocol's ``fluency_quantile`` quantile of the
  unsteered (coefficient 0) continuations' NLLs, both prompts pooled; an empty continuation is not fluent;
- the fluent range of a run is its coefficients from 0 up to the first at which fewer than the protocol's
  ``min_fluent_share`` of the samples are fluent (``SteeringFluency.fluent_range``);
- the threshold and the range are chosen on a separate draw of continuations (the protocol's
  ``selection_samples_per_coefficient``, sampled with its own seed), and S1's trend and S1.strongest
  are read on the main draw over that range: the range is never selected on the samples it is read on.
  The report shows the degenerate coefficients beside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from harness.experiments.steering import SteeringRun
from harness.measures.statistics import Estimate, seeded


def text_nll(bridge, texts: Sequence[str], prepend_bos: bool, batch_size: int = 8) -> Float[Tensor, "n"]:
    """Each text's mean NLL per token under ``bridge`` (no hooks), every token scored from the one before
    (the first from BOS where ``prepend_bos``); NaN for a text with no scored token. Texts run right-padded
    in batches (padding after a text cannot reach it under causal attention)."""
    tokenizer = bridge.tokenizer
    bos = [tokenizer.bos_token_id] if prepend_bos and tokenizer.bos_token_id is not None else []
    encoded = [bos + tokenizer.encode(text, add_special_tokens=False) for text in texts]
    out = torch.full((len(texts),), torch.nan, dtype=torch.float64)
    for start in range(0, len(texts), batch_size):
        rows = [(i, ids) for i, ids in enumerate(encoded[start:start + batch_size], start) if len(ids) >= 2]
        if not rows:
            continue
        width = max(len(ids) for _, ids in rows)
        tokens = torch.zeros(len(rows), width, dtype=torch.long)
        scored = torch.zeros(len(rows), width - 1, dtype=torch.bool)
        for r, (_, ids) in enumerate(rows):
            tokens[r, :len(ids)] = torch.tensor(ids)
            scored[r, :len(ids) - 1] = True
        with torch.no_grad():
            logits = bridge(tokens.to(bridge.cfg.device)).float().cpu()
        logprobs = logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0].double()
        nll = -(logprobs * scored).sum(-1) / scored.sum(-1)
        for r, (i, _) in enumerate(rows):
            out[i] = nll[r]
    return out


@dataclass(frozen=True)
class SampledDraw:
    """One draw of steered continuations per run (``harness.experiments.steering.steering_run``) and each
    sample's continuation NLL (``continuation_nll``, ``[coefficient, sample]``)."""

    runs: dict[str, SteeringRun]
    nll: dict[str, Float[Tensor, "coefficients samples"]]

    def fluent(self, run_name: str, threshold: float) -> Bool[Tensor, "coefficients samples"]:
        nll = self.nll[run_name]
        return torch.isfinite(nll) & (nll <= threshold)


@dataclass(frozen=True)
class SteeringFluency:
    """S1's fluency control: the fluent range is chosen on ``selection``, a separate draw (its own sampling
    seed), and S1 reads ``main`` on it, so the range is not selected on the samples it is read on."""

    main: SampledDraw  # the draw S1, S1.strongest and S1.unsteered read
    selection: SampledDraw  # the draw the threshold and the fluent range come from
    quantile: float  # the protocol's fluency_quantile
    min_fluent_share: float  # the protocol's min_fluent_share

    def __post_init__(self) -> None:
        for name, run in self.main.runs.items():
            if self.selection.runs[name].coefficients != run.coefficients:
                raise ValueError(f"{name}: the selection draw's coefficients {self.selection.runs[name].coefficients} "
                                 f"are not the main draw's {run.coefficients}")

    @property
    def runs(self) -> dict[str, SteeringRun]:
        return self.main.runs

    @property
    def threshold(self) -> float:
        """The selection draw's unsteered continuations' ``quantile`` quantile of NLL, both runs pooled."""
        unsteered = torch.cat([nll[0] for nll in self.selection.nll.values()])
        return float(torch.quantile(unsteered[torch.isfinite(unsteered)], self.quantile))

    def fluent_share(self, run_name: str, draw: str = "selection") -> Float[Tensor, "coefficients"]:
        """Per coefficient, the share of fluent samples of the ``draw`` ("selection" or "main")."""
        return getattr(self, draw).fluent(run_name, self.threshold).double().mean(-1)

    def fluent_range(self, run_name: str) -> int:
        """How many coefficients, from 0 on, keep at least ``min_fluent_share`` of the selection draw's
        samples fluent."""
        ok = (self.fluent_share(run_name) >= self.min_fluent_share).tolist() + [False]
        return ok.index(False)

    def restricted(self, run_name: str) -> SteeringRun:
        """The main draw's run on the fluent range only (every sample of those coefficients)."""
        run, k = self.main.runs[run_name], self.fluent_range(run_name)
        return dataclasses.replace(run, coefficients=run.coefficients[:k], continuations=run.continuations[:k],
                                   labels=run.labels[:k])

    def trend(self, run_name: str, seed: int) -> Estimate:
        """S1's statistic (``SteeringRun.trend``) on the run's fluent range, the bootstrap seeded by ``seed``."""
        with seeded(seed):
            return self.restricted(run_name).trend()

    def describe(self) -> str:
        per = self.selection.nll[next(iter(self.selection.nll))].shape[1]
        return (f"the fluent range is chosen on a separate draw of {per} samples per coefficient: a sample is fluent "
                f"when its continuation's NLL per token under the unsteered model is <= {self.threshold:.2f} nats "
                f"(that draw's unsteered samples' {self.quantile:.0%} quantile), and the range runs from coefficient 0 "
                f"up to the first coefficient with < {self.min_fluent_share:.0%} fluent samples")


def continuation_nll(bridge, runs: dict[str, SteeringRun], prepend_bos: bool) -> dict[str, Float[Tensor, "c s"]]:
    """Every run's continuations' NLL per token (``text_nll``), ``[coefficient, sample]``."""
    return {name: text_nll(bridge, [text for row in run.continuations for text in row], prepend_bos).reshape(
        len(run.continuations), -1) for name, run in runs.items()}
