"""ToyMoodStory (paper §2.2): two characters, one who loves parties and one who hates them.

    {N1} {loves|hates} parties, and {joins|avoids} them whenever possible. {N2} {hates|loves} parties,
    and {avoids|joins} them whenever possible. One day, they were invited to a grand gala. {QUERY} feels very

- Answers ` excited` (positive) / ` nervous` (negative), one pair (the authors' ``n_pairs=1``).
- Names: the comma notebooks' list (``paper_reference.json``, duplicates kept), filtered to names that
  are one token both without a leading space (N1 opens the prompt) and with one (N2, QUERY); the
  kept list is used cyclically as (names[i], names[i+1]), wrapping at the end.
- Four variants per name pair, in the paper's clean order [orig, flip_a, name_flip, flip_b]:
  orig (N1 loves, query N1 → excited), flip_a (N1 hates, query N1 → nervous), name_flip (N1 loves,
  query N2 → nervous), flip_b (N1 hates, query N2 → excited). The corrupted prompt of each is
  [flip_a, orig, flip_b, name_flip]: the characters' moods swapped, the query name kept.
- Positions are found by token search, never hard-coded: NAME1/2, VERB1/2 (the verb's last token: a
  tokenizer may split " hates"), PARTIES1/2, COMMA1/2 and PERIOD1/2 of the two character sentences,
  QUERY and END. The pre-comma phrase of a sentence is every token from its name to " parties".
- Filler (the distance effect, §6.4): neutral sentences inserted between the character sentences and
  "One day, ...", so that the gala sentence still leads into the query; each filler is built to an
  exact token count and the count is checked in context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Bool
from torch import Tensor

from harness.datasets.tokens import locate, single_token_id, tokenize
from harness.datasets.prompts import PromptPairs, PromptSet, paper_reference

TEMPLATE = (
    "{NAME1} {VERB1} parties, and {ACTION1} them whenever possible. {NAME2} {VERB2} parties, and {ACTION2} "
    "them whenever possible.{FILLER} One day, they were invited to a grand gala. {QUERY} feels very"
)
VARIANTS = ("orig", "flip_a", "name_flip", "flip_b")
# per variant: (does N1 love parties, is the query N1, label: 1 = excited)
VARIANT_SETUP = {"orig": (True, True, 1), "flip_a": (False, True, 0), "name_flip": (True, False, 0),
                 "flip_b": (False, False, 1)}
CORRUPTED_VARIANT = {"orig": "flip_a", "flip_a": "orig", "name_flip": "flip_b", "flip_b": "name_flip"}

# Neutral filler sentences (written for this suite): no sentiment, no names, no commas.
FILLER_SENTENCES = (
    "The town hall is on the corner of the main street.",
    "A bus to the station leaves every twenty minutes.",
    "The library closes at six on most weekdays.",
    "Most of the houses in the area have red roofs.",
    "The river flows north through the middle of the valley.",
    "There is a post office next to the bakery.",
    "The road to the coast passes three small villages.",
    "Each room in the building has two windows.",
    "The train from the city arrives in the afternoon.",
    "A map of the region hangs in the hallway.",
    "The market is held in the square on Tuesdays.",
    "The bridge was built from grey stone.",
)


@dataclass(frozen=True)
class ToyMoodStory:
    """Clean prompts in the paper's order (``pairs.clean``), their corrupted partners, and masks of
    the position groups the §5.7 experiments resample."""

    pairs: PromptPairs
    variants: tuple[str, ...]  # variant of each clean prompt
    phrase_masks: dict[str, Bool[Tensor, "batch pos"]]  # precomma, comma_period, whole_phrase
    names: list[str]
    dropped_names: list[str]
    filler: str = ""
    filler_tokens: int = 0
    split_words: dict[str, int] = field(default_factory=dict)  # template word -> its token count, if > 1


def mood_story_text(name1: str, name2: str, variant: str, filler: str = "") -> str:
    """One prompt of ``variant`` for the name pair (``filler`` starts with a space, or is empty)."""
    n1_loves, query_n1, _ = VARIANT_SETUP[variant]
    love, hate = ("loves", "joins"), ("hates", "avoids")
    (verb1, action1), (verb2, action2) = (love, hate) if n1_loves else (hate, love)
    return TEMPLATE.format(NAME1=name1, VERB1=verb1, ACTION1=action1, NAME2=name2, VERB2=verb2, ACTION2=action2,
                           FILLER=filler, QUERY=name1 if query_n1 else name2)


def split_names(tokenizer, names: list[str]) -> tuple[list[str], list[str]]:
    """Names that are one token without and with a leading space, and the ones dropped."""
    kept = [name for name in names
            if single_token_id(tokenizer, name) is not None and single_token_id(tokenizer, " " + name) is not None]
    return kept, [name for name in names if name not in kept]


def build_filler(tokenizer, n_tokens: int, sentences: tuple[str, ...] = FILLER_SENTENCES) -> str:
    """Space-led sentences from ``sentences`` (earliest first) totalling exactly ``n_tokens`` tokens."""
    if n_tokens == 0:
        return ""
    lengths = [len(tokenizer.encode(" " + sentence, add_special_tokens=False)) for sentence in sentences]
    reachable: dict[int, tuple[int, ...]] = {0: ()}  # token total -> first subset (in order) reaching it
    for index, length in enumerate(lengths):
        for total, subset in list(reachable.items()):
            reachable.setdefault(total + length, subset + (index,))
    if n_tokens not in reachable:
        raise ValueError(f"no combination of the filler sentences is exactly {n_tokens} tokens for this tokenizer "
                         f"(sentence lengths {lengths}); choose another length")
    return "".join(" " + sentences[index] for index in reachable[n_tokens])


def build_toy_mood_story(bridge, prepend_bos: bool, filler_tokens: int = 0) -> ToyMoodStory:
    """Build the dataset for ``bridge``'s tokenizer with a filler of exactly ``filler_tokens`` tokens."""
    reference = paper_reference()["toy_mood_story"]
    if TEMPLATE.replace("{FILLER}", "") != reference["format_string"]:
        raise ValueError("shipped paper_reference.json disagrees with the ToyMoodStory template")
    tokenizer = bridge.tokenizer
    names, dropped = split_names(tokenizer, reference["names_comma_notebooks"])
    name_pairs = [(names[i], names[(i + 1) % len(names)]) for i in range(len(names))]
    name_pairs = [(a, b) for a, b in name_pairs if a != b]
    if not name_pairs:
        raise ValueError(f"fewer than two distinct single-token names for this tokenizer (kept {names})")
    answers = [reference["answers"]["positive"], reference["answers"]["negative"]]
    answer_ids = [single_token_id(tokenizer, answer) for answer in answers]
    if None in answer_ids:
        raise ValueError(f"the answers {answers} must each be one token for this tokenizer")

    filler = build_filler(tokenizer, filler_tokens)
    variants = [variant for _ in name_pairs for variant in VARIANTS]
    clean_texts = [mood_story_text(a, b, variant, filler) for a, b in name_pairs for variant in VARIANTS]
    corrupted_texts = [mood_story_text(a, b, CORRUPTED_VARIANT[variant], filler)
                       for a, b in name_pairs for variant in VARIANTS]
    query_n1 = [VARIANT_SETUP[variant][1] for variant in variants]
    pair_of = [pair for pair in name_pairs for _ in VARIANTS]
    clean = _prompt_set(bridge, prepend_bos, clean_texts, pair_of, query_n1,
                        [VARIANT_SETUP[variant][2] for variant in variants])
    corrupted = _prompt_set(bridge, prepend_bos, corrupted_texts, pair_of, query_n1,
                            [VARIANT_SETUP[CORRUPTED_VARIANT[variant]][2] for variant in variants])
    measured = clean.tokens.shape[1] - _prompt_set(
        bridge, prepend_bos, [mood_story_text(*name_pairs[0], "orig")], name_pairs[:1], [True], [1]).tokens.shape[1]
    if measured != filler_tokens:
        raise ValueError(f"the filler is {measured} tokens in context, not {filler_tokens}: {filler!r}")

    # clean prompt i is group 4k + j; its corrupted partner is the clean prompt of variant CORRUPTED_VARIANT
    within = torch.tensor([VARIANTS.index(CORRUPTED_VARIANT[variant]) for variant in VARIANTS])
    corrupted_index = (torch.arange(len(variants)) // 4) * 4 + within.repeat(len(name_pairs))
    if list(corrupted.texts) != [clean.texts[i] for i in corrupted_index.tolist()]:
        raise AssertionError("corrupted prompts are not a permutation of the clean prompts")
    pairs = PromptPairs(clean, corrupted, torch.tensor([[answer_ids[0]], [answer_ids[1]]]),
                        torch.arange(len(variants)), corrupted_index)
    split_words = {word: len(tokenizer.encode(" " + word, add_special_tokens=False))
                   for word in ("loves", "hates", "joins", "avoids", "parties")}
    return ToyMoodStory(
        pairs=pairs,
        variants=tuple(variants),
        phrase_masks=phrase_masks(clean),
        names=names,
        dropped_names=dropped,
        filler=filler,
        filler_tokens=filler_tokens,
        split_words={word: n for word, n in split_words.items() if n > 1},
    )


def _prompt_set(bridge, prepend_bos, texts, name_pairs, query_n1, labels) -> PromptSet:
    tokenizer = bridge.tokenizer
    tokens = tokenize(bridge, texts, prepend_bos)
    ids = lambda words: [single_token_id(tokenizer, word) for word in words]
    name1 = [a for a, _ in name_pairs]
    name2 = [b for _, b in name_pairs]
    query = [a if first else b for (a, b), first in zip(name_pairs, query_n1)]
    parties = single_token_id(tokenizer, " parties")
    comma, period = single_token_id(tokenizer, ","), single_token_id(tokenizer, ".")
    if None in (parties, comma, period):
        raise ValueError("' parties', ',' and '.' must each be one token for this tokenizer")
    positions = {
        "NAME1": locate(tokens, ids(name1)),
        "NAME2": locate(tokens, ids(" " + name for name in name2)),
        "QUERY": locate(tokens, ids(" " + name for name in query), -1),
        "END": torch.full((len(texts),), tokens.shape[1] - 1),
    }
    for sentence in (1, 2):
        positions[f"PARTIES{sentence}"] = locate(tokens, [parties], sentence - 1)
        positions[f"VERB{sentence}"] = positions[f"PARTIES{sentence}"] - 1
        positions[f"COMMA{sentence}"] = locate(tokens, [comma], sentence - 1)
        positions[f"PERIOD{sentence}"] = locate(tokens, [period], sentence - 1)
    rows = torch.arange(len(texts))
    if not (tokens[rows, positions["COMMA1"]] == tokens[rows, positions["PARTIES1"] + 1]).all():
        raise ValueError("the first comma does not follow ' parties'; the template tokenized unexpectedly")
    return PromptSet(tuple(texts), tokens, torch.tensor(labels), positions)


def phrase_masks(prompts: PromptSet) -> dict[str, Bool[Tensor, "batch pos"]]:
    """§5.7 position groups: the pre-comma phrases (name to " parties", both sentences), the commas and
    periods of both sentences, and the whole phrases (both)."""
    n_positions = prompts.tokens.shape[1]
    index = torch.arange(n_positions)
    precomma = torch.zeros(len(prompts), n_positions, dtype=torch.bool)
    comma_period = torch.zeros_like(precomma)
    for sentence in (1, 2):
        start, end = prompts.positions[f"NAME{sentence}"], prompts.positions[f"PARTIES{sentence}"]
        precomma |= (index >= start[:, None]) & (index <= end[:, None])
        for slot in ("COMMA", "PERIOD"):
            comma_period |= index == prompts.positions[f"{slot}{sentence}"][:, None]
    return {"precomma": precomma, "comma_period": comma_period, "whole_phrase": precomma | comma_period}
