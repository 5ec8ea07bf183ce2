"""Keys and values of the positions before a patch, computed once (paper §4's DAS, made cheaper).

A patch at position p of a causal model leaves positions < p unchanged at every layer: their keys and
values in every block are those of the unpatched (corrupted) run. ``PrefixKV`` holds them, from one
forward pass over the prompts' first p tokens, and hands a batch's rows to a run restarted at some
boundary as a Hugging Face ``DynamicCache``, so that the run computes positions p.. only (the suffix)
and attends to the cached prefix. Logits, DAS's loss and its gradient equal the full run's to float32 rounding
(``tests/test_prefix_cache.py``).
On ToyMovieReview (ADJ at position 6 of 19) a DAS step then costs ≈ 13/19 of the full one.

Needs every row to share p and no padding (the same tokenised length): ToyMovieReview with single-token
words. ``kv_cache_passed_through`` (``harness.interventions.generation``) makes the bridge's attention read and write
the cache under the name transformers 5 passes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformers import DynamicCache

from harness.interventions.generation import kv_cache_passed_through


@dataclass(frozen=True)
class PrefixKV:
    """Per block, the (keys, values) of the first ``length`` positions of ``n`` prompts."""

    length: int
    layers: tuple[tuple[Float[Tensor, "n kv_heads p d_head"], Float[Tensor, "n kv_heads p d_head"]], ...]

    @classmethod
    def of(cls, bridge, tokens: Int[Tensor, "n pos"], length: int, fwd_hooks: Sequence = ()) -> "PrefixKV":
        """The prefix keys and values of ``tokens[:, :length]`` (unpadded prompts), from one forward pass
        with ``fwd_hooks`` active (an ablation that also acts on the prefix: their hooks see ``length``
        positions)."""
        if not 0 < length < tokens.shape[1]:
            raise ValueError(f"prefix length must lie in 1..{tokens.shape[1] - 1}; got {length}")
        with torch.no_grad(), kv_cache_passed_through(bridge), bridge.hooks(fwd_hooks=list(fwd_hooks)):
            _, cache = bridge(tokens[:, :length].to(bridge.cfg.device), return_type="logits_and_cache")
        layers = tuple((layer.keys, layer.values) for layer in cache.layers)
        if any(keys is None for keys, _ in layers):
            raise RuntimeError("the bridge did not fill the key/value cache (see harness.interventions.generation)")
        return cls(length, layers)

    @classmethod
    def shared(cls, bridge, clean: Int[Tensor, "n pos"], corrupted: Int[Tensor, "n pos"],
               length: int) -> "PrefixKV | None":
        """The corrupted prompts' prefix of ``length`` positions, or None when ``length`` is 0; the clean
        prompts must have the same tokens there (a patch from clean then changes nothing before ``length``)."""
        if length == 0:
            return None
        if not torch.equal(clean[:, :length], corrupted[:, :length]):
            raise ValueError(f"clean and corrupted prompts differ before position {length}: no shared prefix")
        return cls.of(bridge, corrupted, length)

    def rows(self, index: Int[Tensor, "batch"]) -> DynamicCache:
        """A fresh cache holding ``index``'s rows (a run appends its own positions to it)."""
        index = index.to(self.layers[0][0].device)
        return DynamicCache(ddp_cache_data=[(keys[index], values[index]) for keys, values in self.layers])


def shared_prefix(first: Int[Tensor, "n pos"], second: Int[Tensor, "n pos"]) -> int:
    """The number of leading positions where every row of ``first`` has the tokens of the same row of
    ``second`` (a clean and its corrupted prompt; every prompt and the first: a scaffold's head), at most
    ``pos - 1`` (a run computes one position at least)."""
    differs = (first != second).any(0).nonzero().flatten()
    return min(int(differs[0]) if len(differs) else first.shape[1], first.shape[1] - 1)
