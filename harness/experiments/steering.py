"""Activation addition along the early-layer K-means direction (paper §5.5, ``projection_neuroscope.py``).

``coef × unit(direction)`` is added at every position of the early-layer residual while the model
generates (``harness/interventions/generation.py``); a prompt's continuations at every coefficient are one batched
``generate`` (each row steered by its own coefficient) under one seed (the paper's seed + the session's
seed) and labelled by VADER's compound score. The
grid is pre-registered in the S1 declaration's protocol (``STEERING_PROTOCOL``), fixed before
measuring: coefficients = fractions (0, ¼, ½, ¾, 1) of a scale, the median residual norm at the hook
over the paper prompt's tokens (BOS left out), so that the strongest edit is as large as the typical
residual itself; on the paper's steering model the scale is its strongest integer coefficient (20), so
the grid is 0, 5, 10, 15, 20, all in the paper's integer grid (``steering_grid``). The paper's
positive prompt is steered negative; the suite adds the mirror, a negative prompt steered positive.

The statistics of a run (``SteeringRun``): per coefficient, the steered-to label's share with its
Wilson interval over samples; and ``rank_trend``, Spearman's ρ over all samples between |coef| and
whether the sample has the steered-to label (0/1), its CI a percentile bootstrap that resamples the
samples within each coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.experiments.correlation import residuals_at
from harness.runtime.disk_cache import DiskCache, content_key
from harness.interventions.generation import sample_continuations, steering_hook
from harness.datasets.lexicon import NEGATIVE, POSITIVE, VaderLabeller
from harness.models.loading import LoadedModel
from harness.models.paper import STEERING_MODEL
from harness.measures.statistics import RESAMPLES, Estimate, current_seed, draws_estimate, seeded, wilson

MIRROR_PROMPT = "I really hated the movie, in fact I loathed it. I thought the movie was just very"


@dataclass(frozen=True)
class SteeringSettings:
    """The paper's steering configuration (``paper_reference()["steering"]``)."""

    prompt: str
    coefficients: tuple[float, ...]
    samples_per_coef: int
    max_new_tokens: int
    top_k: int
    temperature: float
    seed: int

    @classmethod
    def from_reference(cls, config: Mapping) -> "SteeringSettings":
        return cls(config["prompt"], tuple(config["coefficients"]), config["samples_per_coef"],
                   config["max_new_tokens"], config["top_k"], config["temperature"], config["seed"])

    @classmethod
    def pre_registered(cls, config: Mapping, protocol: Mapping, seed: int = 0) -> "SteeringSettings":
        """The paper's settings with the protocol's samples per coefficient and the paper's sampling seed
        shifted by the session's ``seed`` (seed 0: the paper's)."""
        paper = cls.from_reference(config)
        return replace(paper, samples_per_coef=int(protocol["samples_per_coefficient"]), seed=paper.seed + seed)

    @property
    def sampling(self) -> dict:
        return {"top_k": self.top_k, "temperature": self.temperature, "seed": self.seed}


def median_residual_norm(bridge, prompt: str, layer: int, prepend_bos: bool) -> float:
    """The median residual norm at boundary ``layer`` over ``prompt``'s tokens (BOS left out)."""
    return float(residuals_at(bridge, [prompt], layer, prepend_bos)[0].norm(dim=-1).median())


def steering_grid(model_name: str, fractions: tuple[float, ...], paper_coefficients: tuple[float, ...],
                  residual_norm: float) -> tuple[float, tuple[float, ...]]:
    """(scale, the unsigned grid ``fraction × scale``): the scale is the paper's strongest |coef| on
    ``STEERING_MODEL``, else ``residual_norm`` (the protocol's, fixed before measuring)."""
    scale = float(max(abs(c) for c in paper_coefficients)) if model_name == STEERING_MODEL else float(residual_norm)
    return scale, tuple(scale * fraction for fraction in fractions)


def rank_trend(magnitudes: Float[Tensor, "coefficients"], hits: Float[Tensor, "coefficients samples"],
               resamples: int = RESAMPLES) -> Estimate:
    """Spearman's ρ over samples between the coefficient magnitude and ``hits`` (0/1 per sample), with
    its percentile bootstrap CI, samples resampled within each coefficient (seeded by the session).

    With a 0/1 variable ρ is the Pearson correlation of the magnitudes' average ranks with the 0/1
    values (ranking 0/1 is an increasing affine map). A resample where every sample has the same value
    has no ρ: dropped and counted. When the data themselves are constant (no sample has the label, or
    all have) ρ is undefined and reported as 0 (no rise) with a degenerate CI, and ``method`` says so."""
    from scipy.stats import rankdata

    n_coefficients, per = hits.shape
    x = torch.tensor(rankdata(magnitudes.repeat_interleave(per).numpy()), dtype=torch.float64)
    x = x - x.mean()

    def rho(y: Tensor) -> Tensor:  # [r, n] -> [r]
        centred = y - y.mean(-1, keepdim=True)
        return (centred * x).sum(-1) / (x.norm() * centred.norm(dim=-1))

    y = hits.double().flatten()
    n = y.numel()
    if bool((y == y[0]).all()):
        return Estimate(0.0, 0.0, 0.0, n, "samples", f"no CI: every sample is {int(y[0])}, ρ undefined, taken as 0")
    generator = torch.Generator().manual_seed(current_seed())
    index = torch.randint(0, per, (resamples, n_coefficients, per), generator=generator)
    draws = rho(hits.double()[torch.arange(n_coefficients)[None, :, None], index].reshape(resamples, n))
    return draws_estimate(float(rho(y[None])[0]), draws, n, "samples",
                          f"percentile bootstrap, samples resampled within each of {n_coefficients} coefficients")


@dataclass(frozen=True)
class SteeringRun:
    """Continuations sampled at each coefficient of activation addition, with their VADER labels."""

    prompt: str
    target: int  # the label steering pushes toward (NEGATIVE for the paper's positive prompt)
    coefficients: tuple[float, ...]
    continuations: tuple[tuple[str, ...], ...]  # [coefficient][sample]
    labels: torch.Tensor  # [coefficient, sample]

    def share(self, label: int) -> torch.Tensor:
        """Per coefficient, the share of continuations with ``label``."""
        return (self.labels == label).double().mean(dim=1)

    def share_estimate(self, index: int, label: int | None = None) -> Estimate:
        """The share (%) of ``label`` (default: the target) at coefficient ``index``, Wilson CI over samples."""
        row = self.labels[index] == (self.target if label is None else label)
        return wilson(int(row.sum()), len(row), unit="samples")

    def trend(self) -> Estimate:
        """S1's statistic: Spearman ρ between |coef| and having the target label, over samples (``rank_trend``)."""
        return rank_trend(torch.tensor([abs(c) for c in self.coefficients]), (self.labels == self.target).double())


def sampled_continuations(model: LoadedModel, tokens: Int[Tensor, "pos"], hook: str,
                          direction: Float[Tensor, "d_model"], coefficients: tuple[float, ...],
                          settings: SteeringSettings, disk_cache: DiskCache) -> Int[Tensor, "coef samples new"]:
    """Every coefficient's ``samples_per_coef`` continuations from one seeded, batched generation (each
    row steered by its own coefficient: one decoding loop instead of one per coefficient), cached on
    disk (namespace ``steering``)."""
    key = content_key("steering-grid", model.weights_sha256, model.dtype, tokens, hook, direction, coefficients,
                      settings.samples_per_coef, settings.max_new_tokens, settings.sampling)
    per_row = torch.tensor(coefficients).repeat_interleave(settings.samples_per_coef)
    sampled = disk_cache.get_or_compute("steering", key, lambda: sample_continuations(
        model.bridge, tokens, len(per_row), settings.max_new_tokens,
        fwd_hooks=[(hook, steering_hook(direction, per_row))], **settings.sampling))
    return sampled.reshape(len(coefficients), settings.samples_per_coef, -1)


def steering_run(model: LoadedModel, prompt: str, sign: float, target: int, steps: tuple[float, ...], hook: str,
                 direction: Float[Tensor, "d_model"], settings: SteeringSettings, labeller: VaderLabeller,
                 disk_cache: DiskCache) -> SteeringRun:
    """``prompt`` steered at ``sign × step`` for every step, its continuations (without the prompt) labelled."""
    tokens = model.bridge.to_tokens(prompt, prepend_bos=model.prepend_bos)[0].cpu()
    coefficients = tuple(sign * step + 0.0 for step in steps)  # + 0.0: no -0.0
    sampled = sampled_continuations(model, tokens, hook, direction, coefficients, settings, disk_cache)
    continuations = tuple(tuple(model.tokenizer.decode(row, skip_special_tokens=True) for row in by_coefficient)
                          for by_coefficient in sampled)
    labels = torch.tensor([[labeller.text_label(text) for text in row] for row in continuations])
    return SteeringRun(prompt, target, coefficients, continuations, labels)


def steering_prompts(settings: SteeringSettings) -> dict[str, tuple[str, float, int]]:
    """Run name -> (prompt, sign of the coefficients, the label steered toward)."""
    return {"paper prompt, steered negative": (settings.prompt, -1.0, NEGATIVE),
            "mirror prompt, steered positive": (MIRROR_PROMPT, 1.0, POSITIVE)}


@dataclass(frozen=True)
class SteeringSetup:
    hook: str
    residual_norm: float  # median norm at the hook over the paper prompt's tokens (BOS left out)
    strongest: float  # the largest |coefficient| (the protocol's scale)
    cos_with_mean_diff: float  # how much of the steering direction is the mean-difference direction
    runs: dict[str, SteeringRun]
    settings: SteeringSettings
    model_name: str
    prepend_bos: bool
    labeller: str  # the labeller's description
    fractions: tuple[float, ...] = ()  # the protocol's coefficient fractions of the scale
    seed: int = 0  # the session's seed (sampling: the paper's seed + this; the bootstrap)

    def trend(self, run_name: str) -> Estimate:
        """The run's ``trend()`` under the session's seed."""
        with seeded(self.seed):
            return self.runs[run_name].trend()

    @property
    def paper_coefficients(self) -> bool:
        """Whether the paper's coefficients were used as they are (on its steering model)."""
        return self.model_name == STEERING_MODEL
