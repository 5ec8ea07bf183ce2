"""harness.reporting.rendering.natural_text: each §5.4-§5.6 result renders its report section, data and figure.

Synthetic results (no model): the section titles, ``report.data`` keys and figure file names the
report has always had, a table row per method, and figures that draw without error.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from harness.experiments.corpus_projections import CorpusProjections  # noqa: E402
from harness.directions.registry import methods  # noqa: E402
from harness.experiments.early_directions import early_directions  # noqa: E402
from harness.datasets.lexicon import NEGATIVE, NEUTRAL, POSITIVE  # noqa: E402
from harness.experiments.negation import CONTROL_SENTENCES, NegationResults  # noqa: E402
from harness.datasets.prompts import paper_reference  # noqa: E402
from harness.reporting.rendering import render  # noqa: E402
from harness.reporting.report import ReportBuilder  # noqa: E402
from harness.experiments.steering import SteeringRun, SteeringSettings, SteeringSetup  # noqa: E402
from harness.verdicts.declared import declared  # noqa: E402

GENERATOR = torch.Generator().manual_seed(0)


def drawn(report: ReportBuilder, name: str) -> None:
    figure = plt.figure()
    try:
        report.figures[name](figure)
        assert figure.axes
    finally:
        plt.close(figure)


@pytest.fixture
def report() -> ReportBuilder:
    return ReportBuilder(model_name="tiny", settings={})


def test_correlation(report):
    early = early_directions({m: {layer: torch.randn(8, generator=GENERATOR) for layer in range(13)}
                              for m in methods()}, 12)
    labels = torch.tensor([NEGATIVE, NEUTRAL, POSITIVE] * 400)
    projections = {m: torch.randn(1200, generator=GENERATOR) + (0.5 * labels if m != "random" else 0) for m in methods()}
    null = 0.4 + 0.2 * torch.rand(100, generator=GENERATOR)
    protocol = declared("R1").protocol
    word_ids = torch.arange(1200) % 150  # 150 word types, each with one label
    render(CorpusProjections("a corpus", 300, labels, projections, null, early, "a labeller", torch.full((300,), 4),
                             protocol["tail_quantile"], protocol["auroc_floor"], protocol["null_quantile"], word_ids,
                             torch.randn(10, 1200, generator=GENERATOR), torch.rand(10, generator=GENERATOR),
                             resamples=100), report)
    assert list(report.sections) == ["Correlational evaluation on natural text (§5.4)"]
    data = report.data["correlation"]
    assert list(data["methods"]) == methods()
    assert data["label_counts"] == {"positive": 400, "neutral": 400, "negative": 400}
    assert data["layer"] == 1 and data["direction_layers"] == early.source_layer
    assert len(data["random_null_auroc"]) == 100 and data["n_sentences"] == 300
    kmeans = data["methods"]["kmeans"]
    assert kmeans["auroc_ci"][0] < kmeans["auroc"] < kmeans["auroc_ci"][1]
    assert data["auroc_threshold"] == 0.8
    assert "cluster bootstrap over word types" in report.sections["Correlational evaluation on natural text (§5.4)"]
    assert list(report.figures) == ["correlation_label_share.png", "correlation_auroc.png"]
    drawn(report, "correlation_label_share.png")
    drawn(report, "correlation_auroc.png")


def test_steering(report):
    settings = SteeringSettings.from_reference(paper_reference()["steering"])
    run = SteeringRun("prompt", NEGATIVE, (0.0, -1.0), (("a", "b"), ("c", "d")),
                      torch.tensor([[NEUTRAL, POSITIVE], [NEGATIVE, NEGATIVE]]))
    setup = SteeringSetup("blocks.1.hook_resid_pre", 12.0, 6.0, 0.9,
                          {"paper prompt, steered negative": run, "mirror prompt, steered positive": run},
                          settings, "tiny", True, "a labeller", (0.0, 1.0), 0)
    render(setup, report)
    assert list(report.sections) == ["Activation addition, steering (§5.5)"]
    section = report.sections["Activation addition, steering (§5.5)"]
    assert "Pre-registered grid" in section and "the fractions 0, 1 of a scale, the median residual norm" in section
    mirror = report.data["steering"]["runs"]["mirror prompt, steered positive"]
    assert mirror["shares"]["negative"] == [0.0, 1.0]
    assert mirror["trend"][0] == pytest.approx(1.0)  # negative exactly at the steered coefficient
    assert list(report.figures) == ["steering_curve.png"]
    drawn(report, "steering_curve.png")


def test_negation(report):
    sentences = tuple(list(CONTROL_SENTENCES)[:4])
    values = {m: torch.randn(4, 13, generator=GENERATOR) for m in methods()}
    results = NegationResults(1, 10, sentences, ("doubt", "hesitate", "honorable", "stranger"), values, values,
                              {m: 0.0 for m in methods()}, {m: 1.0 for m in methods()})
    render(results, report)
    assert list(report.sections) == ["Negation (§5.6)"]
    assert report.data["negation"]["methods"]["kmeans"]["paired_movement"][0] == 0.0  # negated = control here
    assert list(report.data["negation"]["methods"]) == methods(controls=False)
    assert report.data["negation"]["controls"] == CONTROL_SENTENCES
    assert list(report.figures) == ["negation_layers.png"]
    drawn(report, "negation_layers.png")
