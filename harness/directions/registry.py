"""The registry of direction-finding methods (paper §4): a method is one estimator class that registers
itself where it is defined, with one decorator:

    @register_method("name", control=False, layers="every", needs_model=False)
    class MyMethod(DirectionFinder):
        def _raw_direction(self, X, y): ...

The decorator records the declared properties on the class and in ``REGISTRY``, and puts the class on
the disk cache's allowlist (``harness.runtime.disk_cache.cacheable``, under its qualified name), so its
fitted estimators can be cached. Every sweep, claim parametrization and figure iterates ``methods()``,
so a registered method is picked up everywhere. The declared properties, each independent of the others:

- ``control``: a baseline, not a method claimed to find the sentiment direction (the random direction);
- ``layers``: ``"every"``, fitted at every residual boundary (cheap), or ``"das"``, only at the DAS layers
  (``--das-layers``, trained under ``DASSettings``);
- ``needs_model``: ``fit`` patches the model, so it is fitted on the train *pairs* (X: their clean runs,
  one row per pair) and takes the model-dependent inputs as fit parameters, ``estimator.fit_params(context)``
  (DAS: ``objective``); otherwise it is fitted on every train prompt with ``fit(X, y)`` alone.

Like every scikit-learn estimator, a finder takes hyperparameters only in ``__init__`` (so
``sklearn.base.clone`` copies settings, never a model); ``cls.for_layer(layer, context)`` builds the one
for a residual boundary from the ``FitContext`` (its ``seed``, the session's ``suite_seed``, seeds every
seeded method). The built-in finders live in ``finders`` and ``das``, which the package imports, so
``REGISTRY`` is complete whenever ``harness.directions`` is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from harness.runtime.disk_cache import cacheable

Layers = Literal["every", "das"]
LAYER_SETS = ("every", "das")


@dataclass(frozen=True)
class DirectionMethod:
    """A registered method: ``make(layer, context)`` returns its unfitted estimator for boundary ``layer``."""

    name: str
    make: Callable[[int, object], object]
    control: bool = False
    layers: Layers = "every"
    needs_model: bool = False
    estimator: type | None = None  # the registered class (None for a method built by hand)

    def __post_init__(self) -> None:
        if self.layers not in LAYER_SETS:
            raise ValueError(f"direction method {self.name!r}: layers must be one of {LAYER_SETS}, got {self.layers!r}")


REGISTRY: dict[str, DirectionMethod] = {}


def register_method(name: str, *, control: bool = False, layers: Layers = "every",
                    needs_model: bool = False) -> Callable[[type], type]:
    """Class decorator: register a ``DirectionFinder`` subclass as method ``name`` (module docstring) and
    allow its instances in the disk cache. A name or a cache name (qualified class name) already taken is
    a ``ValueError``."""

    def register(cls: type) -> type:
        if name in REGISTRY:
            raise ValueError(f"register_method: the method name {name!r} is already registered "
                             f"({REGISTRY[name].estimator or REGISTRY[name].make!r})")
        method = DirectionMethod(name, cls.for_layer, control, layers, needs_model, cls)
        cacheable(cls)
        cls.method_name, cls.control, cls.layers, cls.needs_model = name, control, layers, needs_model
        REGISTRY[name] = method
        return cls

    return register


def methods(controls: bool = True) -> list[str]:
    """Registered method names in registration order, the baselines after the others; ``controls=False``
    leaves the baselines out."""
    names = [name for name, method in REGISTRY.items() if not method.control]
    return names + [name for name, method in REGISTRY.items() if method.control] if controls else names


def method_pairs() -> list[tuple[str, str]]:
    """Every unordered pair of non-control methods (D1's comparisons)."""
    names = methods(controls=False)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
