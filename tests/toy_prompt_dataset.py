"""A toy prompt dataset, added as a dataset module is (``harness/datasets/<name>.py``): "I feel ADJ." with
the adjective located, built for any tokenizer, and the summary its fixture records for the report.
``tests/test_extension_contracts.py`` builds it; its renderer is ``tests/toy_prompt_rendering.py``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.datasets.prompts import PromptSet
from harness.datasets.tokens import locate, split_single_tokens, tokenize

TEMPLATE = "I feel {ADJ}."
POSITIVE, NEGATIVE = ("good", "happy", "great"), ("bad", "sad", "awful")


def build_toy_feelings(bridge, prepend_bos: bool) -> PromptSet:
    """One prompt per single-token adjective, labelled 1 (positive) or 0 (negative), ADJ located."""
    positive, _ = split_single_tokens(bridge.tokenizer, POSITIVE)
    negative, _ = split_single_tokens(bridge.tokenizer, NEGATIVE)
    words = [*positive, *negative]
    texts = tuple(TEMPLATE.format(ADJ=word) for word in words)
    tokens = tokenize(bridge, texts, prepend_bos)
    word_ids = [bridge.tokenizer.encode(" " + word, add_special_tokens=False)[0] for word in words]
    labels = torch.tensor([1] * len(positive) + [0] * len(negative))
    return PromptSet(texts, tokens, labels, {"ADJ": locate(tokens, word_ids)})


@dataclass(frozen=True)
class ToyFeelingsSummary:
    """What the report shows of the dataset (its renderer: ``tests/toy_prompt_rendering.py``)."""

    prompts: PromptSet
