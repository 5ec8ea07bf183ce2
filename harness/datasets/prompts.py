"""Prompt types shared by every dataset (§2): a set of prompts with located positions, and
clean/corrupted pairs for patching; plus the paper-era reference data the datasets are built from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from jaxtyping import Int
from torch import Tensor


def paper_reference() -> dict:
    """The paper-era word lists, templates and numbers shipped with the harness."""
    return json.loads(resources.files("harness").joinpath("data/paper_reference.json").read_text())


@dataclass(frozen=True)
class PromptSet:
    """Prompts of one template: tokens, labels (1 positive, 0 negative), located positions."""

    texts: tuple[str, ...]
    tokens: Int[Tensor, "batch pos"]
    labels: Int[Tensor, "batch"]
    positions: dict[str, Int[Tensor, "batch"]]

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, index: Int[Tensor, "n"]) -> "PromptSet":
        return PromptSet(
            texts=tuple(self.texts[i] for i in index.tolist()),
            tokens=self.tokens[index],
            labels=self.labels[index],
            positions={name: pos[index] for name, pos in self.positions.items()},
        )


@dataclass(frozen=True)
class PromptPairs:
    """Clean/corrupted prompts for patching; ``answer_ids`` rows: positive answers, negative answers.
    ``clean_index``/``corrupted_index`` point into the split's distinct prompts, so activations are
    computed once per distinct prompt and gathered per pair."""

    clean: PromptSet
    corrupted: PromptSet
    answer_ids: Int[Tensor, "2 n_answers"]
    clean_index: Int[Tensor, "n"]
    corrupted_index: Int[Tensor, "n"]

    def __len__(self) -> int:
        return len(self.clean)
