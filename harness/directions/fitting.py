"""Fitting every registered direction method at the ADJ position of ToyMovieReview train (§4).

``fit_method`` fits one registered method at its declared layers (``layers="every"``: every boundary;
``"das"``: DAS's ``--das-layers``) and returns the fitted estimators, which claims use directly
(``direction_``, ``predict``, ``score``). For each layer it builds the estimator with
``for_layer(layer, context)`` (hyperparameters only; ``context.seed``, the session's ``suite_seed``, seeds
every seeded method) and calls ``fit(X, y, **estimator.fit_params(context))``: X, y are every train
prompt at ADJ, or, for a method that ``needs_model``, the clean runs of the train pairs at ADJ, and the fit
parameters carry what such a method needs from the model (DAS: ``objective``, the corrupted train runs it
patches and their clean/corrupted scores, ``FitContext.das_objective``). The fitted estimators hold no
model, so they go to the disk cache as they are.

DAS layers that did not train (``DistributedAlignmentSearch.trained_`` False: best held-out loss not
``UNTRAINED_MARGIN`` below its start) stay in ``FittedDirections.estimators`` (the report shows them)
but are left out of ``vectors()``, ``trained_layers`` and ``trained_estimators``: no other claim is fed
a direction that did not learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor

from harness.directions.das import UNTRAINED_MARGIN, DASObjective, DASSettings, DASTrainingSummary
from harness.directions.registry import REGISTRY
from harness.directions.finders import DirectionFinder
from harness.runtime.disk_cache import content_key
from harness.interventions.forward import SplitActivations, block_inputs, run_from
from harness.measures.metrics import sentiment_score
from harness.interventions.prefix_cache import PrefixKV
from harness.runtime.progress import track
from harness.datasets.prompts import PromptPairs


@dataclass
class FitContext:
    """The model and the train pairs, for methods that patch the model while fitting (``needs_model``:
    DAS), and the seed of every seeded method."""

    bridge: object
    train: SplitActivations
    pairs: PromptPairs
    das: DASSettings
    seed: int = 0

    @cached_property
    def _runs(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        clean, corrupted = self.train.pairs(self.pairs)
        n_layers = clean.shape[0] - 1
        with torch.no_grad():
            clean_score = sentiment_score(run_from(self.bridge, block_inputs(clean, n_layers), n_layers),
                                          self.pairs.answer_ids)
            corrupted_score = sentiment_score(run_from(self.bridge, block_inputs(corrupted, n_layers), n_layers),
                                              self.pairs.answer_ids)
        return clean, corrupted, clean_score, corrupted_score

    @cached_property
    def _prefix(self) -> PrefixKV | None:
        """The corrupted prompts' keys and values before the earliest ADJ (unpadded prompts), shared by
        every DAS layer: positions before the patch are the corrupted run's whatever the direction."""
        return PrefixKV.shared(self.bridge, self.pairs.clean.tokens, self.pairs.corrupted.tokens,
                               int(self.pairs.clean.positions["ADJ"].min()))

    def das_objective(self, layer: int) -> DASObjective:
        """DAS's fit parameter at boundary ``layer``: the corrupted train runs restarted there, patched at
        ADJ (sharing the prefix cache), with their clean and corrupted scores."""
        _, corrupted, clean_score, corrupted_score = self._runs
        return DASObjective(self.bridge, layer, block_inputs(corrupted, layer), self.pairs.clean.positions["ADJ"],
                            self.pairs.answer_ids, self.pairs.clean.labels, clean_score, corrupted_score, self._prefix)

    def training_data(self, method: str, layer: int) -> tuple[Tensor, Tensor]:
        """(X, y) for ``fit``: a method that ``needs_model`` fits on the clean pair runs at ADJ (one row per
        pair, as its fit parameters patch them), the others on every train prompt."""
        if not REGISTRY[method].needs_model:
            return self.train.at("ADJ")[layer], self.train.prompts.labels
        clean = self._runs[0]
        rows = torch.arange(len(self.pairs))
        return clean[layer, rows, self.pairs.clean.positions["ADJ"]], self.pairs.clean.labels


def method_layers(method: str, n_layers: int, das: DASSettings) -> tuple[int, ...]:
    return tuple(range(n_layers + 1)) if REGISTRY[method].layers == "every" else tuple(das.layers)


def fit_method(method: str, context: FitContext, layers: tuple[int, ...]) -> dict[int, DirectionFinder]:
    """``{layer: fitted estimator}`` for one registered method (module docstring)."""
    fitted = {}
    for layer in track(layers):
        estimator = REGISTRY[method].make(layer, context)
        estimator.fit(*context.training_data(method, layer), **estimator.fit_params(context))
        fitted[layer] = estimator
    return fitted


def fit_cache_key(method: str, weights_sha256: str, dtype: str, context: FitContext, layers: tuple[int, ...]) -> str:
    """The disk-cache key of ``fit_method(method, context, layers)``: the model, the train prompts and
    pairs, the layers, the ``DASSettings`` (for a method fitted at the DAS layers) and the seed."""
    settings = context.das.__dict__ if REGISTRY[method].layers == "das" else None
    return content_key("directions", method, weights_sha256, dtype, context.train.prompts.tokens,
                       context.pairs.clean_index, context.pairs.corrupted_index, context.pairs.answer_ids, layers,
                       settings, context.seed)


def is_trained(estimator: DirectionFinder) -> bool:
    """False only for an estimator that trains and did not (DAS's ``trained_``)."""
    return bool(getattr(estimator, "trained_", True))


@dataclass(frozen=True)
class DASTraining:
    """Every DAS layer's training (recorded for the report, ``harness/reporting/rendering/das.py``)."""

    method: str
    settings: DASSettings
    n_train_pairs: int
    seed: int
    layers: dict[int, DASTrainingSummary]

    def dropped(self) -> dict[int, str]:
        """``{layer: why}`` for the layers that did not train (their directions feed no claim)."""
        return {layer: (f"best held-out loss {s.best_validation_loss:.3f} (epoch {s.best_epoch}) not "
                        f"{UNTRAINED_MARGIN} below its initial {s.initial_validation_loss:.3f}")
                for layer, s in self.layers.items() if not s.trained}


@dataclass(frozen=True)
class FittedDirections:
    """``estimators[method][layer]``: every registered method's fitted estimators (untrained DAS
    layers included, for the report); ``vectors()`` and ``trained_*`` leave the untrained ones out."""

    estimators: dict[str, dict[int, DirectionFinder]] = field(default_factory=dict)
    das: DASSettings | None = None  # how the layer-selective methods (DAS) were trained
    n_train_pairs: int = 0
    seed: int = 0  # the suite_seed the seeded methods were fitted with

    def trained_layers(self, method: str) -> tuple[int, ...]:
        """The layers whose direction of ``method`` may feed a claim (every layer but an untrained DAS one)."""
        return tuple(layer for layer, e in self.estimators[method].items() if is_trained(e))

    def trained_estimators(self, method: str) -> dict[int, DirectionFinder]:
        return {layer: self.estimators[method][layer] for layer in self.trained_layers(method)}

    def vectors(self) -> dict[str, dict[int, Tensor]]:
        """``[method][layer]``: unit directions (sign-oriented, + = positive, but the random baseline's),
        at the trained layers only."""
        return {method: {layer: e.direction_ for layer, e in self.trained_estimators(method).items()}
                for method in self.estimators}

    def training(self) -> list[DASTraining]:
        """The training summaries of the methods trained at the DAS layers (DAS), for the report."""
        return [DASTraining(method, self.das, self.n_train_pairs, self.seed,
                            {layer: e.summary(layer) for layer, e in by_layer.items()})
                for method, by_layer in self.estimators.items() if REGISTRY[method].layers == "das"]


@dataclass(frozen=True)
class DirectionAgreement:
    """The layers at which D1 compares the methods (§6.3): layer 0 and DAS's best patching layer."""

    vectors: dict[str, dict[int, Tensor]]
    layers: dict[str, int]  # "layer0" -> 0, "best" -> DAS's best ToyMovieReview patching layer
