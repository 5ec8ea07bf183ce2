"""Renderers: the datasets the claims run on (§2.1)."""

from __future__ import annotations

from tabulate import tabulate

from harness.reporting.rendering import render
from harness.datasets.toy_movie_review import TEMPLATE, ToyMovieReviewSummary


@render.register
def _toy_movie_review(summary: ToyMovieReviewSummary, report) -> None:
    data = summary.data
    rows = [[name, len(data.kept[name]), ", ".join(data.dropped[name]) or "none"] for name in data.kept]
    positions = {name: int(pos[0]) for name, pos in data.test.positions.items()}
    report.add_section(
        "ToyMovieReview dataset (§2.1)",
        f"Template `{TEMPLATE!r}`, words inserted with a leading space, paper-era lists (prompts.yaml @0b438f2), "
        f"filtered to single tokens for this tokenizer. BOS prepended: **{data.prepend_bos}**. "
        "All single-token train adjectives are used (not the authors' size quirk, §2.1); the clean/corrupted pairs "
        "cycle the shorter class.\n\n"
        + tabulate(rows, headers=["list", "kept", "dropped (not a single token)"], tablefmt="github")
        + f"\n\nDistinct prompts: train {len(data.train)}, test {len(data.test)}; pairs: train {len(data.train_pairs)}, "
        f"test {len(data.test_pairs)}. Located positions (first test prompt): {positions}; "
        f"tokens: {summary.first_test_tokens}",
    )
