"""harness.experiments.steering_fluency: S1's fluency control.

- ``text_nll`` is each text's mean NLL per token under the model, every token from the one before (the
  first from BOS where prepended), the same batched (right-padded) as one at a time; NaN without a token;
- a sample is fluent at most at the selection draw's unsteered samples' declared quantile (both runs
  pooled); the fluent range comes from the selection draw alone (the main draw's NLLs change nothing), stops
  at the first coefficient under the declared share, and a later fluent coefficient does not extend it; the
  trend on the range equals ``rank_trend`` on the main draw's coefficients of the range alone; draws on
  different grids are refused;
- the renderer writes the section, the data and the figure.
"""

from __future__ import annotations

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.datasets.lexicon import NEGATIVE, POSITIVE
from harness.experiments.steering import SteeringRun, rank_trend
from harness.experiments.steering_fluency import SampledDraw, SteeringFluency, continuation_nll, text_nll
from harness.measures.statistics import seeded
from harness.reporting.report import ReportBuilder
from harness.reporting.rendering import render

import pytest

pytestmark = pytest.mark.unit

TEXTS = ["the movie was great", " and I loved it, truly", "", "x"]


def test_text_nll_is_the_mean_next_token_loss_batched_or_not(tiny_lm):
    bridge, bos = tiny_lm.bridge, tiny_lm.prepend_bos
    batched = text_nll(bridge, TEXTS, bos, batch_size=3)
    for i, text in enumerate(TEXTS):
        ids = ([bridge.tokenizer.bos_token_id] if bos else []) + bridge.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) < 2:
            assert torch.isnan(batched[i])
            continue
        tokens = torch.tensor([ids])
        with torch.no_grad():
            logprobs = bridge(tokens).float().log_softmax(-1)[0, :-1].gather(-1, tokens[0, 1:, None])[:, 0]
        assert batched[i] == pytest.approx(float(-logprobs.mean()), rel=1e-4, abs=1e-5)
    torch.testing.assert_close(batched, text_nll(bridge, TEXTS, bos, batch_size=1), equal_nan=True)


def _run(target: int, labels: list[list[int]]) -> SteeringRun:
    labels = torch.tensor(labels)
    coefficients = tuple(float(c) for c in range(labels.shape[0]))
    return SteeringRun("p", target, coefficients, tuple(("t",) * labels.shape[1] for _ in coefficients), labels)


def test_the_fluent_range_is_chosen_on_the_selection_draw_and_read_on_the_main_one():
    selection = {"a": _run(NEGATIVE, [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]),
                 "b": _run(POSITIVE, [[1, 0, 0, 0], [2, 2, 0, 0], [2, 2, 2, 0], [2, 2, 2, 2]])}
    main = {"a": _run(NEGATIVE, [[1, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 0]]),
            "b": _run(POSITIVE, [[1, 0, 0], [2, 0, 0], [2, 2, 0], [2, 2, 2]])}
    nll = {"a": torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 9.0], [9.0, 9.0, 9.0, 1.0], [1.0] * 4]),
           "b": torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [9.0, 9.0, 9.0, 9.0]])}
    main_nll = {name: torch.full((4, 3), 99.0, dtype=torch.float64) for name in main}  # never fluent: no say
    fluency = SteeringFluency(SampledDraw(main, main_nll), SampledDraw(selection, {k: v.double() for k, v in nll.items()}),
                              quantile=1.0, min_fluent_share=0.75)
    assert fluency.threshold == 4.0  # the largest unsteered NLL of the selection draw, both runs
    assert fluency.fluent_share("a").tolist() == [1.0, 0.75, 0.25, 1.0]
    assert fluency.fluent_share("a", "main").tolist() == [0.0] * 4
    assert fluency.fluent_range("a") == 2  # coefficient 3 is fluent again, after a degenerate one: outside
    assert fluency.fluent_range("b") == 3
    restricted = fluency.restricted("b")
    assert restricted.coefficients == (0.0, 1.0, 2.0) and torch.equal(restricted.labels, main["b"].labels[:3])
    with seeded(0):
        expected = rank_trend(torch.tensor([0.0, 1.0, 2.0]), (main["b"].labels[:3] == POSITIVE).double())
    assert fluency.trend("b", 0) == expected
    nan = {k: torch.where(v > 8, torch.nan, v).double() for k, v in nll.items()}
    assert SteeringFluency(SampledDraw(main, main_nll), SampledDraw(selection, nan), 1.0, 0.75).fluent_share("b").tolist() \
        == [1.0, 1.0, 1.0, 0.0]
    shorter = {"a": _run(NEGATIVE, [[1], [0]]), "b": _run(POSITIVE, [[1], [2]])}
    with pytest.raises(ValueError, match="coefficients"):
        SteeringFluency(SampledDraw(shorter, main_nll), SampledDraw(selection, nll), 1.0, 0.75)


def test_continuation_nll_reads_every_run_and_the_renderer_shows_the_range(gpt2):
    runs = {"a": SteeringRun("p", NEGATIVE, (0.0, -1.0), (("good fun", "bad"), ("awful awful", "")),
                             torch.tensor([[1, 0], [0, 1]]))}
    nll = continuation_nll(gpt2.bridge, runs, gpt2.prepend_bos)
    assert nll["a"].shape == (2, 2) and torch.isnan(nll["a"][1, 1])
    report = ReportBuilder(model_name="tiny", settings={})
    render(SteeringFluency(SampledDraw(runs, nll), SampledDraw(runs, nll), 0.95, 0.75), report)
    section = report.sections["Steering fluency control (§5.5, S1)"]
    assert "fluent range: the first 0 of 2" in section  # one of the two unsteered samples is above the 95% quantile
    assert report.data["steering_fluency"]["runs"]["a"]["fluent_share_selection"] == [0.5, 0.5]
    assert "S1 is not applicable" in section and report.data["steering_fluency"]["runs"]["a"]["fluent_range_trend"] is None
    wide = SteeringFluency(SampledDraw(runs, nll), SampledDraw(runs, {"a": torch.zeros(2, 2)}), 0.95, 0.75)
    report.rendering_seed = 3
    render(wide, report)
    rho = wide.trend("a", 3)
    assert f"S1's Spearman ρ on it {rho.value:.3f} [{rho.ci_low:.3f}, {rho.ci_high:.3f}]" in \
        report.sections["Steering fluency control (§5.5, S1)"]
    figure = plt.figure()
    try:
        report.figures["steering_fluency.png"](figure)
        assert figure.axes
    finally:
        plt.close(figure)
