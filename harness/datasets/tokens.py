"""Tokenizer helpers: single-token filtering and locating positions by token search (paper §2).

The authors hard-coded positions per model (ADJ = 6 on gpt2-small); the suite finds every position by
searching the tokenized prompt for the token it names, so a new tokenizer cannot silently shift them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Int
from torch import Tensor


def single_token_id(tokenizer, text: str) -> int | None:
    """The id of ``text`` if the tokenizer encodes it as exactly one token, else ``None``."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def split_single_tokens(tokenizer, words: Sequence[str]) -> tuple[list[str], list[str]]:
    """Words whose leading-space form is one token, and the ones dropped (paper §2: filter_length=1)."""
    kept = [word for word in words if single_token_id(tokenizer, " " + word) is not None]
    return kept, [word for word in words if word not in kept]


def tokenize(bridge, texts: Sequence[str], prepend_bos: bool) -> Int[Tensor, "batch pos"]:
    """Token ids for ``texts`` with BOS handled explicitly; prompts must share one length."""
    tokens = bridge.to_tokens(list(texts), prepend_bos=prepend_bos, padding_side="left")
    lengths = {len(bridge.tokenizer.encode(text, add_special_tokens=False)) for text in texts}
    if len(lengths) != 1:
        raise ValueError(f"prompts tokenize to different lengths {sorted(lengths)}; expected one")
    return tokens.to("cpu")


def locate(
    tokens: Int[Tensor, "batch pos"], token_ids: Sequence[int] | Int[Tensor, "batch"], occurrence: int = 0
) -> Int[Tensor, "batch"]:
    """Per row, the position of the ``occurrence``-th match of that row's token id (negative counts
    from the end). Raises if a row has fewer matches, naming the row and the token."""
    ids = torch.as_tensor(token_ids).expand(tokens.shape[0])
    positions = []
    for row, (sequence, token_id) in enumerate(zip(tokens, ids)):
        hits = (sequence == token_id).nonzero().flatten().tolist()
        if not -len(hits) <= occurrence < len(hits):
            raise ValueError(
                f"row {row}: token id {int(token_id)} occurs {len(hits)} times; "
                f"occurrence {occurrence} was asked for"
            )
        positions.append(hits[occurrence])
    return torch.tensor(positions)


def tokenize_padded(
    bridge, texts: Sequence[str], prepend_bos: bool
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Left-padded token ids and their attention mask (1 = real token) for prompts of any lengths, so
    that the final position is every prompt's last real token (paper §2.3: "Tokens are left-padded").
    The mask comes from each prompt's own length, not from the pad id (GPT-2 pads with its BOS id)."""
    tokens = bridge.to_tokens(list(texts), prepend_bos=prepend_bos, padding_side="left", truncate=False).to("cpu")
    lengths = torch.tensor([bridge.to_tokens(text, prepend_bos=prepend_bos, truncate=False).shape[-1] for text in texts])
    mask = torch.arange(tokens.shape[1]) >= (tokens.shape[1] - lengths)[:, None]
    return tokens, mask.long()
