"""ToyMoodStory (paper §2.2) built for the real SmolLM2 tokenizer, on the tiny GPT-2 bridge.

- the template is the paper's; the clean order per name pair is [orig, flip_a, name_flip, flip_b] with
  labels [excited, nervous, nervous, excited], and each corrupted prompt swaps the characters' moods
  and keeps the query name ([flip_a, orig, flip_b, name_flip]), with the opposite label;
- names are one token with and without a leading space (SmolLM2 drops "Mike") and are paired
  cyclically; positions found by token search hold their tokens; the phrase masks cover the spans;
- fillers have exactly the asked token count, in context, and an impossible count is refused.
"""

from __future__ import annotations

import re

import pytest
import torch

from harness.datasets.tokens import single_token_id
from harness.datasets.toy_mood_story import (
    FILLER_SENTENCES, TEMPLATE, VARIANTS, build_filler, build_toy_mood_story, mood_story_text,
)
from harness.datasets.prompts import paper_reference

FIRST_PROMPT = ("John loves parties, and joins them whenever possible. Anne hates parties, and avoids them whenever "
                "possible. One day, they were invited to a grand gala. John feels very")


@pytest.fixture(scope="module")
def story(gpt2):
    return build_toy_mood_story(gpt2.bridge, prepend_bos=True)


def query_name(text: str) -> str:
    return text.rsplit(" feels very", 1)[0].rsplit(" ", 1)[-1]


def test_template_is_the_papers():
    reference = paper_reference()["toy_mood_story"]["format_string"]
    assert TEMPLATE.replace("{FILLER}", "") == reference
    assert mood_story_text("John", "Anne", "orig") == FIRST_PROMPT


def test_variants_and_pairs_follow_the_paper(story, tokenizer):
    pairs, names = story.pairs, story.names
    assert len(pairs) == 4 * len(names) and story.variants == VARIANTS * len(names)
    assert pairs.clean.texts[0] == FIRST_PROMPT
    for group in range(len(names)):
        a, b = names[group], names[(group + 1) % len(names)]
        rows = range(4 * group, 4 * group + 4)
        assert [pairs.clean.texts[i] for i in rows] == [mood_story_text(a, b, v) for v in VARIANTS]
        assert [pairs.corrupted.texts[i] for i in rows] == [
            mood_story_text(a, b, v) for v in ("flip_a", "orig", "flip_b", "name_flip")]
        assert pairs.clean.labels[list(rows)].tolist() == [1, 0, 0, 1]
    assert (pairs.corrupted.labels == 1 - pairs.clean.labels).all()
    assert [query_name(t) for t in pairs.clean.texts] == [query_name(t) for t in pairs.corrupted.texts]
    assert list(pairs.corrupted.texts) == [pairs.clean.texts[i] for i in pairs.corrupted_index.tolist()]
    assert pairs.answer_ids.tolist() == [[single_token_id(tokenizer, " excited")], [single_token_id(tokenizer, " nervous")]]


def test_names_are_single_tokens_both_ways(story, tokenizer):
    reference = paper_reference()["toy_mood_story"]["names_comma_notebooks"]
    assert story.names == [n for n in reference if n not in story.dropped_names]
    assert "Mike" in story.dropped_names  # "Mike" is two tokens without a leading space on SmolLM2
    for name in story.names:
        assert single_token_id(tokenizer, name) is not None and single_token_id(tokenizer, " " + name) is not None
    assert story.split_words == {"hates": 2}


def test_positions_hold_their_tokens(story, tokenizer):
    prompts = story.pairs.clean
    tokens = prompts.tokens
    ids = lambda text: tokenizer.encode(text, add_special_tokens=False)
    for row, text in enumerate(prompts.texts):
        at = lambda slot: int(tokens[row, prompts.positions[slot][row]])
        words = text.split()
        assert at("NAME1") == ids(words[0])[0]
        assert at("NAME2") == ids(" " + text.split(". ")[1].split()[0])[0]
        assert at("QUERY") == ids(" " + query_name(text))[0]
        for sentence in (1, 2):
            assert at(f"COMMA{sentence}") == ids(",")[0] and at(f"PERIOD{sentence}") == ids(".")[0]
            assert at(f"PARTIES{sentence}") == ids(" parties")[0]
            verb = text.split(". ")[sentence - 1].split()[1]
            assert at(f"VERB{sentence}") == ids(" " + verb)[-1]
        assert prompts.positions["END"][row] == tokens.shape[1] - 1
        assert tokens[row, 1:].tolist() == ids(text)


def test_phrase_masks_cover_the_phrases(story):
    prompts, masks = story.pairs.clean, story.phrase_masks
    positions = prompts.positions
    span = sum(positions[f"PARTIES{s}"] - positions[f"NAME{s}"] + 1 for s in (1, 2))
    assert (masks["precomma"].sum(-1) == span).all()
    assert (masks["comma_period"].sum(-1) == 4).all()
    assert not (masks["precomma"] & masks["comma_period"]).any()
    assert (masks["whole_phrase"] == masks["precomma"] | masks["comma_period"]).all()
    rows = torch.arange(len(prompts))
    for slot in ("COMMA1", "PERIOD1", "COMMA2", "PERIOD2"):
        assert masks["comma_period"][rows, positions[slot]].all()


@pytest.mark.parametrize("n_tokens", [11, 22])  # the tiny GPT-2 has 64 positions
def test_fillers_have_the_exact_token_count(gpt2, story, tokenizer, n_tokens):
    filled = build_toy_mood_story(gpt2.bridge, prepend_bos=True, filler_tokens=n_tokens)
    assert filled.pairs.clean.tokens.shape[1] == story.pairs.clean.tokens.shape[1] + n_tokens
    assert len(tokenizer.encode(filled.filler, add_special_tokens=False)) == n_tokens
    sentences = re.findall(r" [^.]+\.", filled.filler)
    assert "".join(sentences) == filled.filler and set(s.strip() for s in sentences) <= set(FILLER_SENTENCES)
    assert filled.pairs.clean.texts[0] == mood_story_text("John", "Anne", "orig", filled.filler)
    # the filler sits between the character sentences and "One day"; the slots keep their tokens
    assert (filled.pairs.clean.positions["PERIOD2"] == story.pairs.clean.positions["PERIOD2"]).all()
    assert (filled.pairs.clean.positions["QUERY"] == story.pairs.clean.positions["QUERY"] + n_tokens).all()


def test_impossible_filler_length_is_refused(tokenizer):
    assert build_filler(tokenizer, 0) == ""
    with pytest.raises(ValueError, match="exactly 1 tokens"):
        build_filler(tokenizer, 1)
