"""The toy prompt dataset's renderer, added as a renderer is (``harness/reporting/rendering/<name>.py``)."""

from __future__ import annotations

from harness.reporting.rendering import render
from tests.toy_prompt_dataset import ToyFeelingsSummary


@render.register
def _toy_feelings(summary: ToyFeelingsSummary, report) -> None:
    labels = summary.prompts.labels.tolist()
    report.add_section("Toy feelings dataset", f"{len(labels)} prompts, {sum(labels)} positive: "
                                               + "; ".join(summary.prompts.texts))
