"""What the session read from every data file at its start (issue 27): each SST and transfer file, its
sentences, and the blank lines it skipped.

The files are parsed once, before any test runs, by their one reader (``harness.datasets.sst.read_split``,
which ``harness.datasets.transfer`` reuses): a line holding a label and no sentence, or any other line that
is not ``LABEL SENTENCE``, stops the session naming file and line; a blank (empty or whitespace-only) line
separates nothing and is skipped, and ``blank_lines`` counts it here for the report's data-file table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataFile:
    option: str  # where it came from: "--sst-path", "--transfer-data" or "shipped"
    name: str
    path: Path
    sentences: int
    positive: int  # label 1
    blank_lines: int


@dataclass(frozen=True)
class DataFiles:
    """Every data file read at session start."""

    files: tuple[DataFile, ...]


def blank_lines(path: Path) -> int:
    """The empty or whitespace-only lines of ``path`` (UTF-8), which the reader skips."""
    with open(path, encoding="utf-8") as handle:
        return sum(not line.strip() for line in handle)


def data_file(option: str, name: str, path: Path, labels: tuple[int, ...]) -> DataFile:
    return DataFile(option, name, path, len(labels), sum(labels), blank_lines(path))
