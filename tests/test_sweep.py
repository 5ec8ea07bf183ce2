"""harness.interventions.sweep's PatchingResults statistics and the ToyMovieReview sweep figure (synthetic scores).

- ``estimate``/``cross_fitted`` rest on the pairs (n = the pairs) and ``cross_fitted`` reports the layer
  each fold was scored at (the random-direction null's maximum over layers: tests/test_patching_null.py);
- ``layer_cis`` gives every layer's ``estimate`` CI at once; the sweep renderer draws it as a 95% CI band
  per method and stores the per-layer CIs.
"""

from __future__ import annotations

import matplotlib
import torch

from harness.reporting.report import ReportBuilder
from harness.interventions.sweep import PatchingResults, ToySweep
from harness.measures.statistics import TieRule

matplotlib.use("Agg")


def synthetic_results(n: int = 20, layers: int = 4) -> PatchingResults:
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 0] * (n // 2))
    signs = labels * 2.0 - 1
    clean, corrupted = 2 * signs + 0.1 * torch.randn(n, generator=generator), -2 * signs
    results = PatchingResults(labels, clean, corrupted)
    for layer in range(layers):  # "good" recovers more at layer 2; "noise" recovers nothing
        results.patched["good", layer] = corrupted + (clean - corrupted) * (1.0 if layer == 2 else 0.3) \
            + 0.5 * torch.randn(n, generator=generator)
        results.patched["noise", layer] = corrupted + 0.5 * torch.randn(n, generator=generator)
    return results


def test_estimate_and_cross_fit_rest_on_the_pairs():
    results = synthetic_results()
    estimate = results.estimate("ld_recovered", "good", 2)
    assert estimate.n == 20 and estimate.ci_low <= estimate.value <= estimate.ci_high
    assert abs(estimate.value - results.metric("ld_recovered", "good", 2)) < 1e-4
    fit = results.cross_fitted("logit_flip", "good", tie=TieRule(), select_by="ld_recovered", unit="test pairs")
    assert fit.layers == (2, 2) and fit.n == 20 and fit.estimate().unit == "test pairs"


def test_cross_fit_selects_on_its_criterion_and_breaks_ties_by_the_rule():
    """Layers 1–3 tie on the selection criterion: the declared rule picks the median (2), not argmax's
    shallowest (1); the scored metric never decides the layer."""
    results = synthetic_results(layers=5)
    for layer in (1, 2, 3):
        results.patched["flat", layer] = results.patched["good", 2].clone()
    for layer in (0, 4):
        results.patched["flat", layer] = results.corrupted.clone()
    fit = results.cross_fitted("ld_recovered", "flat", tie=TieRule(0.0, "median"), select_by="ld_recovered")
    assert fit.layers == (2, 2)
    deepest = results.cross_fitted("ld_recovered", "flat", tie=TieRule(0.0, "deepest"), select_by="ld_recovered")
    assert deepest.layers == (3, 3)


def test_layer_cis_are_each_layers_estimate():
    results = synthetic_results()
    for metric in ("ld_recovered", "logit_flip"):
        cis = results.layer_cis(metric, "good")
        assert list(cis) == [0, 1, 2, 3]
        for layer, (low, high) in cis.items():
            estimate = results.estimate(metric, "good", layer)
            assert abs(low - estimate.ci_low) < 1e-4 and abs(high - estimate.ci_high) < 1e-4


def test_sweep_figure_draws_a_band_per_method():
    from matplotlib.figure import Figure

    from harness.reporting.rendering import render

    results = synthetic_results()
    report = ReportBuilder(model_name="synthetic", settings={})
    render(ToySweep(results, n_layers=3), report)
    ci = report.data["toy_sweep_ci"]["ld_recovered"]
    assert set(ci) == {"good", "noise"} and set(ci["good"]) == {"0", "1", "2", "3"}
    low, high = ci["good"]["2"]
    assert low <= results.metric("ld_recovered", "good", 2) <= high
    figure = Figure()
    report.figures["toy_layer_sweep.png"](figure)
    assert all(len(ax.collections) == 2 for ax in figure.axes[:2])  # one band per method


def test_agreement_figure_leaves_a_method_missing_at_a_layer_blank():
    from matplotlib.figure import Figure

    from harness.directions.fitting import DirectionAgreement
    from harness.reporting.rendering import render

    generator = torch.Generator().manual_seed(0)
    vectors = {"mean_diff": {0: torch.randn(8, generator=generator), 2: torch.randn(8, generator=generator)},
               "das": {2: torch.randn(8, generator=generator)}}  # DAS not fitted (or not trained) at layer 0
    report = ReportBuilder(model_name="synthetic", settings={})
    render(DirectionAgreement(vectors, {"layer0": 0, "best": 2}), report)
    figure = Figure()
    report.figures["direction_cosines.png"](figure)
    cells = [text.get_text() for text in figure.axes[0].texts]
    assert cells == ["1.00", "–", "–", "–"]  # layer 0: mean_diff with itself; every DAS cell blank
    assert "–" not in [text.get_text() for text in figure.axes[1].texts]
