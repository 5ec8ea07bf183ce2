"""ToyMovieReview (paper §2.1) built for the real SmolLM2 tokenizer, on the tiny GPT-2 bridge.

- positions are located by token search: the ADJ (VRB) position holds the prompt's adjective (verb)
  token in every prompt, END is the last position, and BOS is position 0;
- pairs alternate positive/negative clean prompts, the corrupted prompt of pair i is the clean prompt
  of pair i+1 (cyclically), consistently with ``clean_index``/``corrupted_index``, with opposite
  labels, and every distinct prompt is a clean prompt at least once;
- kept words are single tokens (with their leading space), dropped words are not, and kept ∪ dropped
  is the paper-era list.
"""

from __future__ import annotations

import re

import pytest
import torch

from harness.tokens import single_token_id
from harness.prompts import paper_reference
from harness.toy_movie_review import TEMPLATE

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
def test_pairs_alternate_and_corrupted_is_the_next_clean(toy, split):
    distinct, pairs = getattr(toy, split), getattr(toy, f"{split}_pairs")
    n = len(pairs)
    assert n % 2 == 0 and len(pairs.corrupted) == n
    assert pairs.clean.labels.tolist() == [1, 0] * (n // 2)
    assert torch.equal(pairs.corrupted_index, pairs.clean_index[(torch.arange(n) + 1) % n])
    assert (pairs.clean.labels != pairs.corrupted.labels).all()
    for i in range(n):
        assert pairs.clean.texts[i] == distinct.texts[pairs.clean_index[i]]
        assert pairs.corrupted.texts[i] == pairs.clean.texts[(i + 1) % n]
    assert torch.equal(pairs.corrupted.tokens, torch.roll(pairs.clean.tokens, shifts=-1, dims=0))
    assert torch.equal(pairs.clean.positions["ADJ"], distinct.positions["ADJ"][pairs.clean_index])
    assert set(pairs.clean_index.tolist()) == set(range(len(distinct)))


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
