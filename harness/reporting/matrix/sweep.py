"""The ToyMovieReview sweep of every model against relative depth (layer / n_layers), as the paper compared
models of different depth: read from each column's ``results.json`` ``data``."""

from __future__ import annotations

from dataclasses import dataclass

from harness.reporting.matrix.build import Matrix

SWEEP_METHODS = ("mean_diff", "kmeans", "probe", "pca", "das", "random")


@dataclass
class Sweep:
    """Each model's ToyMovieReview sweep against relative depth: ``curves[method][model]`` is a list of
    ``[layer / n_layers, % LD recovered, ci_low, ci_high]``; ``missing`` names models without one."""

    curves: dict[str, dict[str, list[list[float | None]]]]
    missing: list[str]


def sweep_by_relative_depth(matrix: Matrix) -> Sweep:
    curves: dict[str, dict[str, list[list[float | None]]]] = {}
    missing = []
    for column in matrix.columns:
        results = column.results
        sweep = ((results.data.get("toy_sweep") or {}).get("ld_recovered") if results else None) or {}
        intervals = ((results.data.get("toy_sweep_ci") or {}).get("ld_recovered") if results else None) or {}
        n_layers = results.environment.get("n_layers") if results else None
        if not sweep or not isinstance(n_layers, int) or n_layers < 1:
            why = "no results" if results is None else "no toy_sweep data" if not sweep else "n_layers unknown"
            missing.append(f"{column.model} ({why})")
            continue
        for method, by_layer in sweep.items():
            points = []
            for layer, value in sorted(by_layer.items(), key=lambda item: int(item[0])):
                low, high = (intervals.get(method, {}).get(layer) or [None, None])[:2]
                points.append([int(layer) / n_layers, value, low, high])
            curves.setdefault(method, {})[column.model] = points
    order = [m for m in SWEEP_METHODS if m in curves] + sorted(set(curves) - set(SWEEP_METHODS))
    return Sweep({method: curves[method] for method in order}, missing)
