"""Renderers: the datasets the claims run on (§2.1)."""

from __future__ import annotations

from tabulate import tabulate

from harness.datasets.data_files import DataFiles
from harness.reporting.rendering import render, shown_path
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


@render.register
def _data_files(result: DataFiles, report) -> None:
    report.data["data_files"] = [{"option": f.option, "name": f.name, "path": shown_path(f.path), "sentences": f.sentences,
                                  "positive": f.positive, "blank_lines_skipped": f.blank_lines} for f in result.files]
    rows = [[f.name, f.option, shown_path(f.path), f.sentences, f.positive, f.sentences - f.positive, f.blank_lines]
            for f in result.files]
    report.add_section(
        "Data files (read at session start)",
        "Every data file was read and checked before any test ran (a line that is not `LABEL SENTENCE`, a label "
        "with no sentence included, stops the session naming file and line); blank lines separate nothing and "
        "are skipped, counted here.\n\n"
        + tabulate(rows, headers=["data", "from", "path", "sentences", "label 1", "label 0", "blank lines skipped"],
                   tablefmt="github"))
