"""ToyMovieReview (paper §2.1): ``I thought this movie was{ADJ}, I{VRB} it. \\nConclusion: This movie is``.

- Word lists are the paper-era ones (``prompts.yaml`` @0b438f2: 55 train / 30 test adjectives, 8 verbs),
  inserted with a leading space and filtered to single tokens for the model's tokenizer.
- Positive prompt i is (pos_adj[i], pos_verb[i mod 5]); negative prompt i is (neg_adj[i], neg_verb[i mod 3]).
- Deviation, on purpose: the authors' code silently fitted on only the first n = min(#pos core, #neg core)
  train adjectives of each list (the "size quirk", §2.1) and cut the test set to 14 per class. The suite
  uses *all* single-token adjectives in both splits: the fitting set is every distinct prompt.
- Pairs (§2.1 ``get_dataset``): clean = [pos0, neg0, pos1, neg1, ...], then the rest of the longer
  class; every distinct prompt is the clean prompt of exactly one pair (the pair is the resampling
  unit, so n = the number of distinct prompts: no prompt is cycled in twice as a clean prompt). The
  corrupted prompt of pos_i is neg_(i mod #neg), that of neg_j is pos_(j+1 mod #pos): with equal classes
  this is the authors' "clean shifted left by one, cyclically". The answers are the clean prompt's.
  Answers: 5 aligned pairs (great/terrible, amazing/awful, awesome/bad, good/horrible,
  perfect/disgusting); the logit difference averages them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from harness.datasets.prompts import PromptPairs, PromptSet, paper_reference
from harness.datasets.tokens import locate, single_token_id, split_single_tokens, tokenize

TEMPLATE = "I thought this movie was{ADJ}, I{VRB} it. \nConclusion: This movie is"


@dataclass(frozen=True)
class ToyMovieReview:
    train: PromptSet
    test: PromptSet
    train_pairs: PromptPairs
    test_pairs: PromptPairs
    answer_pairs: tuple[tuple[str, str], ...]
    kept: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    prepend_bos: bool = True


def build_toy_movie_review(bridge, prepend_bos: bool) -> ToyMovieReview:
    """Build the dataset for ``bridge``'s tokenizer (word filtering, prompts, positions, pairs)."""
    reference = paper_reference()["toy_movie_review"]
    if reference["format_string"] != TEMPLATE:
        raise ValueError("shipped paper_reference.json disagrees with the ToyMovieReview template")
    tokenizer = bridge.tokenizer
    lists = {
        "train_positive_adjectives": reference["adjectives_paper_era_order"]["train"]["positive"],
        "train_negative_adjectives": reference["adjectives_paper_era_order"]["train"]["negative"],
        "test_positive_adjectives": reference["adjectives_paper_era_order"]["test"]["positive"],
        "test_negative_adjectives": reference["adjectives_paper_era_order"]["test"]["negative"],
        "positive_verbs": reference["verbs_paper_era"]["positive"],
        "negative_verbs": reference["verbs_paper_era"]["negative"],
    }
    kept, dropped = {}, {}
    for name, words in lists.items():
        kept[name], dropped[name] = split_single_tokens(tokenizer, words)
        if not kept[name]:
            raise ValueError(f"no word of {name} is a single token for this tokenizer")

    answer_pairs, dropped_answers = [], []
    for positive, negative in reference["answer_pairs_with_space"]:
        if single_token_id(tokenizer, positive) is None or single_token_id(tokenizer, negative) is None:
            dropped_answers.append(f"{positive.strip()}/{negative.strip()}")
        else:
            answer_pairs.append((positive, negative))
    if not answer_pairs:
        raise ValueError("no ToyMovieReview answer pair is single-token for this tokenizer")
    dropped["answer_pairs"] = dropped_answers
    kept["answer_pairs"] = [f"{p.strip()}/{n.strip()}" for p, n in answer_pairs]
    answer_ids = torch.tensor(
        [[single_token_id(tokenizer, p) for p, _ in answer_pairs],
         [single_token_id(tokenizer, n) for _, n in answer_pairs]]
    )

    def class_prompts(split: str, sentiment: str) -> list[tuple[str, str]]:
        adjectives = kept[f"{split}_{sentiment}_adjectives"]
        verbs = kept[f"{sentiment}_verbs"]
        return [(adjective, verbs[i % len(verbs)]) for i, adjective in enumerate(adjectives)]

    def prompt_set(words: list[tuple[str, str]], labels: list[int]) -> PromptSet:
        texts = tuple(TEMPLATE.format(ADJ=" " + adj, VRB=" " + verb) for adj, verb in words)
        tokens = tokenize(bridge, texts, prepend_bos)
        adj_ids = [single_token_id(tokenizer, " " + adj) for adj, _ in words]
        verb_ids = [single_token_id(tokenizer, " " + verb) for _, verb in words]
        movie_id = single_token_id(tokenizer, " movie")
        comma_id = single_token_id(tokenizer, ",")
        positions = {"ADJ": locate(tokens, adj_ids), "VRB": locate(tokens, verb_ids)}
        if comma_id is not None:
            positions["COMMA"] = locate(tokens, [comma_id], 0)
        if movie_id is not None:
            positions["SBJ2"] = locate(tokens, [movie_id], -1)
        positions["END"] = torch.full((len(texts),), tokens.shape[1] - 1)
        return PromptSet(texts, tokens, torch.tensor(labels), positions)

    def split_sets(split: str) -> tuple[PromptSet, PromptPairs]:
        positive, negative = class_prompts(split, "positive"), class_prompts(split, "negative")
        distinct = prompt_set(positive + negative, [1] * len(positive) + [0] * len(negative))
        clean_index, corrupted_index = pair_order(len(positive), len(negative))
        pairs = PromptPairs(
            distinct.select(clean_index), distinct.select(corrupted_index), answer_ids, clean_index, corrupted_index
        )
        return distinct, pairs

    train, train_pairs = split_sets("train")
    test, test_pairs = split_sets("test")
    return ToyMovieReview(
        train=train,
        test=test,
        train_pairs=train_pairs,
        test_pairs=test_pairs,
        answer_pairs=tuple(answer_pairs),
        kept=kept,
        dropped=dropped,
        prepend_bos=prepend_bos,
    )


def pair_order(n_positive: int, n_negative: int) -> tuple[Tensor, Tensor]:
    """Clean and corrupted indices into the distinct prompts (positives first, then negatives): each
    prompt is clean once, alternating pos_i, neg_i while both classes last; pos_i is corrupted by
    neg_(i mod #neg), neg_j by pos_(j+1 mod #pos) (module docstring)."""
    clean, corrupted = [], []
    for i in range(max(n_positive, n_negative)):
        if i < n_positive:
            clean.append(i)
            corrupted.append(n_positive + i % n_negative)
        if i < n_negative:
            clean.append(n_positive + i)
            corrupted.append((i + 1) % n_positive)
    return torch.tensor(clean), torch.tensor(corrupted)


@dataclass(frozen=True)
class ToyMovieReviewSummary:
    """What the report says of the dataset built for a model: the data and the first test prompt's tokens."""

    data: ToyMovieReview
    first_test_tokens: list[str]
