"""The Stanford Sentiment Treebank, sentence-level binary split (SST-2), as the suite ships it (paper §2.3).

One sentence a line, ``LABEL SENTENCE``: label 1 positive, 0 negative, text lower-cased and
PTB-tokenized. The suite ships ``stsa.binary.train`` and ``stsa.binary.dev`` (harvardnlp's
redistribution of the Stanford release, neutral sentences removed); ``--sst-path DIR`` points it at
other files of the same format. The authors merged the raw release themselves (7,864 / 1,007 / 2,058
sentences, no neutral band removed), so the sizes differ from the paper's.

The claims are measured on one held-out split (``held_out_split``): test when the files have one, else
dev (the shipped SST-2 has train and dev; the toy-fitted directions never see SST, so any split is held
out, and dev keeps the cost low), else train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLIT_FILES = {"train": "stsa.binary.train", "dev": "stsa.binary.dev", "test": "stsa.binary.test"}
SHIPPED_DIR = Path(__file__).parents[1] / "data" / "sst2"  # harness/data/sst2
HELD_OUT_ORDER = ("test", "dev", "train")


class SSTFormatError(ValueError):
    """An SST file that is missing, malformed, empty or one-class."""


@dataclass(frozen=True)
class SSTSplit:
    name: str
    path: Path
    sentences: tuple[str, ...]
    labels: tuple[int, ...]  # 1 positive, 0 negative

    def __len__(self) -> int:
        return len(self.sentences)


def read_split(path: Path, name: str, labels_mean: str = "0 (negative) or 1 (positive)") -> SSTSplit:
    """Parse one ``LABEL SENTENCE`` file; a bad line is reported with its file and line number
    (``labels_mean`` says what the two labels are, for the message)."""
    sentences, labels = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            label, _, sentence = line.partition(" ")
            if label not in ("0", "1") or not sentence.strip():
                raise SSTFormatError(
                    f"{path}:{number}: expected 'LABEL SENTENCE' with LABEL {labels_mean}; "
                    f"got {line[:80]!r}"
                )
            labels.append(int(label))
            sentences.append(sentence.strip())
    if not sentences:
        raise SSTFormatError(f"{path}: no sentences; expected lines of 'LABEL SENTENCE'")
    if len(set(labels)) < 2:
        raise SSTFormatError(f"{path}: every sentence has label {labels[0]}; both classes (0 and 1) are needed")
    return SSTSplit(name, path, tuple(sentences), tuple(labels))


def load_sst(directory: Path | str | None = None) -> dict[str, SSTSplit]:
    """The splits found in ``directory`` (default: the shipped files), keyed train/dev/test."""
    directory = Path(directory) if directory is not None else SHIPPED_DIR
    if not directory.is_dir():
        raise SSTFormatError(f"SST directory {directory} does not exist; expected a directory holding "
                             f"any of {', '.join(SPLIT_FILES.values())}")
    splits = {name: read_split(directory / file, name)
              for name, file in SPLIT_FILES.items() if (directory / file).is_file()}
    if not splits:
        raise SSTFormatError(f"SST directory {directory} holds none of {', '.join(SPLIT_FILES.values())}")
    return splits


def held_out_split(splits: dict[str, SSTSplit]) -> SSTSplit:
    """The split the claims are measured on: the first of ``HELD_OUT_ORDER`` that exists."""
    return next(splits[name] for name in HELD_OUT_ORDER if name in splits)


@dataclass(frozen=True)
class SSTFiles:
    """The SST splits a session loaded, as the report lists them."""

    splits: dict[str, SSTSplit]
