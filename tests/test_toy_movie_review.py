"""ToyMovieReview (paper §2.1) built for the real SmolLM2 tokenizer, on the tiny GPT-2 bridge.

- positions are located by token search: the ADJ (VRB) position holds the prompt's adjective (verb)
  token in every prompt, END is the last position, and BOS is position 0;
- every distinct prompt is the clean prompt of exactly one pair (the resampling unit: no prompt cycled in
  twice); clean prompts alternate positive/negative while both classes last, the corrupted prompt has
  the opposite label, consistently with ``clean_index``/``corrupted_index``; with equal classes the
  corrupted prompt of pair i is the clean prompt of pair i+1 (the authors' cyclic shift);
- kept words are single tokens (with their leading space), dropped words are not, and kept ∪ dropped
  is the paper-era list.
"""

from __future__ import annotations

import re

import pytest
import torch

from harness.datasets.tokens import single_token_id
from harness.datasets.prompts import paper_reference
from harness.datasets.toy_movie_review import TEMPLATE, pair_order

PROMPT = re.compile(r"^I thought this movie was (\w+), I (\w+) it\. \nConclusion: This movie is$")
SPLITS = ("train", "test")


def adjective_and_verb(text: str) -> tuple[str, str]:
    match = PROMPT.match(text)
    assert match, text
    return match.group(1), match.group(2)


@pytest.mark.parametrize("split", SPLITS)
def test_positions_hold_their_tokens(toy, tokenizer, split):
    prompts = getattr(toy, split)
    tokens = prompts.tokens
    assert tokens.shape[0] == len(prompts.texts) == len(prompts.labels)
    assert (tokens[:, 0] == tokenizer.bos_token_id).all()
    rows = torch.arange(len(tokens))
    for row, text in enumerate(prompts.texts):
        adjective, verb = adjective_and_verb(text)
        assert tokens[row, prompts.positions["ADJ"][row]] == tokenizer.encode(" " + adjective, add_special_tokens=False)[0]
        assert tokens[row, prompts.positions["VRB"][row]] == tokenizer.encode(" " + verb, add_special_tokens=False)[0]
    assert (prompts.positions["END"] == tokens.shape[1] - 1).all()
    assert (tokens[rows, prompts.positions["END"]] == single_token_id(tokenizer, " is")).all()
    assert (prompts.positions["ADJ"] < prompts.positions["VRB"]).all()
    # without BOS the tokens are the tokenizer's own encoding of the text
    assert tokens[0, 1:].tolist() == tokenizer.encode(prompts.texts[0], add_special_tokens=False)


@pytest.mark.parametrize("split", SPLITS)
def test_distinct_prompts_follow_the_word_lists(toy, split):
    prompts = getattr(toy, split)
    positive, negative = toy.kept[f"{split}_positive_adjectives"], toy.kept[f"{split}_negative_adjectives"]
    assert prompts.labels.tolist() == [1] * len(positive) + [0] * len(negative)
    assert [adjective_and_verb(text)[0] for text in prompts.texts] == positive + negative
    verbs = {1: toy.kept["positive_verbs"], 0: toy.kept["negative_verbs"]}
    for label in (1, 0):  # prompt i of a class uses that class's verb i mod (number of verbs)
        texts = [text for text, y in zip(prompts.texts, prompts.labels.tolist()) if y == label]
        assert [adjective_and_verb(text)[1] for text in texts] == [
            verbs[label][i % len(verbs[label])] for i in range(len(texts))]
    for text in prompts.texts:
        adjective, verb = adjective_and_verb(text)
        assert text == TEMPLATE.format(ADJ=" " + adjective, VRB=" " + verb)


@pytest.mark.parametrize("split", SPLITS)
def test_each_distinct_prompt_is_clean_once_and_corrupted_has_the_other_label(toy, split):
    distinct, pairs = getattr(toy, split), getattr(toy, f"{split}_pairs")
    n = len(pairs)
    assert n == len(distinct) == len(pairs.corrupted)
    assert sorted(pairs.clean_index.tolist()) == list(range(len(distinct)))
    assert (pairs.clean.labels != pairs.corrupted.labels).all()
    both = 2 * min(int(distinct.labels.sum()), int((1 - distinct.labels).sum()))
    assert pairs.clean.labels[:both].tolist() == [1, 0] * (both // 2)
    for i in range(n):
        assert pairs.clean.texts[i] == distinct.texts[pairs.clean_index[i]]
        assert pairs.corrupted.texts[i] == distinct.texts[pairs.corrupted_index[i]]
    assert torch.equal(pairs.clean.positions["ADJ"], distinct.positions["ADJ"][pairs.clean_index])


@pytest.mark.parametrize("sizes", [(3, 3), (5, 2), (2, 4), (1, 1)])
def test_pair_order_with_equal_classes_is_the_cyclic_shift(sizes):
    n_positive, n_negative = sizes
    clean, corrupted = pair_order(n_positive, n_negative)
    labels = (torch.arange(n_positive + n_negative) < n_positive).long()
    assert sorted(clean.tolist()) == list(range(n_positive + n_negative))
    assert (labels[clean] != labels[corrupted]).all()
    if n_positive == n_negative:
        assert torch.equal(corrupted, torch.roll(clean, shifts=-1))


def test_kept_words_are_single_tokens_and_dropped_are_not(toy, tokenizer):
    reference = paper_reference()["toy_movie_review"]
    lists = {f"{split}_{side}_adjectives": reference["adjectives_paper_era_order"][split][side]
             for split in SPLITS for side in ("positive", "negative")}
    lists |= {f"{side}_verbs": reference["verbs_paper_era"][side] for side in ("positive", "negative")}
    for name, words in lists.items():
        kept, dropped = toy.kept[name], toy.dropped[name]
        assert kept and sorted(kept + dropped) == sorted(words), name
        assert all(single_token_id(tokenizer, " " + word) is not None for word in kept), name
        assert all(single_token_id(tokenizer, " " + word) is None for word in dropped), name
    assert sum(len(toy.dropped[name]) for name in lists) > 0, "the SmolLM2 tokenizer splits some paper words"
    for positive, negative in toy.answer_pairs:
        assert single_token_id(tokenizer, positive) is not None and single_token_id(tokenizer, negative) is not None
    kept_answers = [[single_token_id(tokenizer, p) for p, _ in toy.answer_pairs],
                    [single_token_id(tokenizer, n) for _, n in toy.answer_pairs]]
    assert toy.train_pairs.answer_ids.tolist() == kept_answers == toy.test_pairs.answer_ids.tolist()
    assert len(toy.answer_pairs) + len(toy.dropped["answer_pairs"]) == len(reference["answer_pairs_with_space"])
