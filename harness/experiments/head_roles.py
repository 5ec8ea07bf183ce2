"""Head roles in the ToyMovieReview circuit from attention patterns (paper §6.4).

The paper's gpt2-small circuit has three kinds of heads, named by where they attend on clean prompts:

- direct reader: from the final position (END) to the adjective or verb (ADJ/VRB): 7.1, 10.1, 10.4, 11.9;
- summary reader: from END to the summary token, the second " movie" (SBJ2): 8.5, 9.2, 9.10;
- summary writer: from SBJ2 to ADJ/VRB, writing sentiment at the summary token: 7.1, 7.5 (9.2 does both).

A head has a role when its mean attention weight (over prompts) from the query position to the key
positions (ADJ and VRB summed) is at least ``threshold`` (the K claims' declared ``role_threshold``,
0.1: about twice the uniform weight over the 19 tokens of a ToyMovieReview prompt). Weights are raw softmax probabilities, so heads that park
most of their attention on the first token (an attention sink on the embedded model) can still qualify.
A head may have several roles or none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

ROLES = {  # role: (query position, key positions)
    "direct reader": ("END", ("ADJ", "VRB")),
    "summary reader": ("END", ("SBJ2",)),
    "summary writer": ("SBJ2", ("ADJ", "VRB")),
}


@dataclass(frozen=True)
class HeadRole:
    layer: int
    head: int
    attention: dict[str, float]  # role -> mean attention weight from its query to its key positions
    roles: tuple[str, ...]


def attention_between(
    pattern: Float[Tensor, "batch q k"], positions: dict[str, Int[Tensor, "batch"]], query: str, keys: tuple[str, ...]
) -> float:
    """Mean over prompts of the attention weight from ``query`` to the ``keys`` positions (summed)."""
    rows = torch.arange(pattern.shape[0])
    return float(sum(pattern[rows, positions[query], positions[key]] for key in keys).mean())


def classify_heads(
    patterns: dict[int, Float[Tensor, "batch head q k"]], positions: dict[str, Int[Tensor, "batch"]],
    heads: list[tuple[int, int]], threshold: float,
) -> list[HeadRole]:
    """The roles of ``heads`` ((layer, head) pairs) from clean-run attention patterns."""
    needed = {query for query, _ in ROLES.values()} | {key for _, keys in ROLES.values() for key in keys}
    missing = needed - set(positions)
    if missing:
        raise ValueError(f"head roles need the positions {sorted(missing)}; got {sorted(positions)}")
    classified = []
    for layer, head in heads:
        attention = {role: attention_between(patterns[layer][:, head], positions, query, keys)
                     for role, (query, keys) in ROLES.items()}
        classified.append(HeadRole(layer, head, attention, tuple(r for r, w in attention.items() if w >= threshold)))
    return classified
