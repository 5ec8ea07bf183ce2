"""Activation addition along the early-layer K-means direction (paper §5.5, ``projection_neuroscope.py``).

``coef × unit(direction)`` is added at every position of the early-layer residual while the model
generates (``harness/generation.py``); each coefficient's continuations are one batched ``generate``
under the paper's seed and labelled by VADER's compound score. Coefficients (``steering_grid``): on
the paper's steering model its integer grid 0..20 at every second value, as it is; elsewhere the same
11 points scaled so that the strongest |coef| is ``STEERING_NORM_FRACTION`` of the median residual norm
at the hook over the paper prompt's tokens (BOS left out). The paper's positive prompt is steered
negative; the suite adds the mirror, a negative prompt steered positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from jaxtyping import Float, Int
from torch import Tensor

from harness.correlation import residuals_at
from harness.disk_cache import DiskCache, content_key
from harness.generation import sample_continuations, steering_hook
from harness.lexicon import NEGATIVE, POSITIVE, VaderLabeller
from harness.models import LoadedModel
from harness.paper_models import STEERING_MODEL

STEERING_STEPS = tuple(range(0, 21, 2))  # the paper's integer grid 0..20, every second value
STEERING_NORM_FRACTION = 0.5  # elsewhere the strongest |coef| is this fraction of the median residual norm
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

    @property
    def sampling(self) -> dict:
        return {"top_k": self.top_k, "temperature": self.temperature, "seed": self.seed}


def median_residual_norm(bridge, prompt: str, layer: int, prepend_bos: bool) -> float:
    """The median residual norm at boundary ``layer`` over ``prompt``'s tokens (BOS left out)."""
    return float(residuals_at(bridge, [prompt], layer, prepend_bos)[0].norm(dim=-1).median())


def steering_grid(model_name: str, paper_coefficients: tuple[float, ...],
                  residual_norm: float) -> tuple[float, tuple[float, ...]]:
    """(strongest |coef|, the unsigned grid): the paper's coefficients on ``STEERING_MODEL``, else
    ``STEERING_NORM_FRACTION × residual_norm`` as the strongest; ``STEERING_STEPS`` scaled to it."""
    strongest = float(max(abs(c) for c in paper_coefficients)) if model_name == STEERING_MODEL \
        else STEERING_NORM_FRACTION * residual_norm
    return strongest, tuple(strongest * step / max(STEERING_STEPS) for step in STEERING_STEPS)


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


def sampled_continuations(model: LoadedModel, tokens: Int[Tensor, "pos"], hook: str,
                          direction: Float[Tensor, "d_model"], coefficient: float, settings: SteeringSettings,
                          disk_cache: DiskCache) -> Int[Tensor, "samples new"]:
    """One coefficient's ``samples_per_coef`` continuations, cached on disk (namespace ``steering``)."""
    key = content_key("steering", model.weights_sha256, model.dtype, tokens, hook, direction, coefficient,
                      settings.samples_per_coef, settings.max_new_tokens, settings.sampling)
    return disk_cache.get_or_compute("steering", key, lambda: sample_continuations(
        model.bridge, tokens, settings.samples_per_coef, settings.max_new_tokens,
        fwd_hooks=[(hook, steering_hook(direction, coefficient))], **settings.sampling))


def steering_run(model: LoadedModel, prompt: str, sign: float, target: int, steps: tuple[float, ...], hook: str,
                 direction: Float[Tensor, "d_model"], settings: SteeringSettings, labeller: VaderLabeller,
                 disk_cache: DiskCache) -> SteeringRun:
    """``prompt`` steered at ``sign × step`` for every step, its continuations (without the prompt) labelled."""
    tokens = model.bridge.to_tokens(prompt, prepend_bos=model.prepend_bos)[0].cpu()
    coefficients = tuple(sign * step + 0.0 for step in steps)  # + 0.0: no -0.0
    continuations = tuple(
        tuple(model.tokenizer.decode(row, skip_special_tokens=True)
              for row in sampled_continuations(model, tokens, hook, direction, coefficient, settings, disk_cache))
        for coefficient in coefficients)
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
    strongest: float  # the largest |coefficient|
    cos_with_mean_diff: float  # how much of the steering direction is the mean-difference direction
    runs: dict[str, SteeringRun]
    settings: SteeringSettings
    model_name: str
    prepend_bos: bool
    labeller: str  # the labeller's description

    @property
    def paper_coefficients(self) -> bool:
        """Whether the paper's coefficients were used as they are (on its steering model)."""
        return self.model_name == STEERING_MODEL
