"""harness.experiments.sst_patching (paper §2.3, §5.2, §6.2 P3–P5): the SST pair selection and its sweep.

- the selection keeps short, correctly classified sentences, pairs them by length, drops pairs whose
  scaffolded prompts differ in length, takes a seeded, balanced set of pairs sharing no sentence (with no
  cap, the protocol's: every such pair until a class runs out), and counts every step (a hand-worked
  split; the shipped dev split's model-independent counts);
- only the short sentences are sent to the classifier;
- the sweep's clean, corrupted and patched scores (a method's and the random null's) equal each prompt
  run alone, unpadded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harness.interventions.edit import directional_patch, edit_hook
from harness.interventions.forward import residual_stream
from harness.interventions.hook_names import resid
from harness.measures.metrics import sentiment_score
from harness.datasets.sst import SSTSplit, load_sst
from harness.experiments.sst_patching import disjoint_balanced, select_patching_pairs, sst_patching_sweep
from harness.interventions.sweep import null_directions
from harness.datasets.sst_prompts import CLASSIFICATION, sentence_lengths
from harness.verdicts.declared import declared

PROTOCOL = {key: declared("P3").protocol[key] for key in ("n_pairs", "max_sentence_tokens")}  # P3-P5's
USED_WITH_THE_FAKE_CLASSIFIER = 64  # the shipped dev split's pairs under ``fake_classifier`` (every third wrong)

LONG = "an overlong , meandering and thoroughly tedious film that never once finds a reason to exist , sadly ."
SPLIT = SSTSplit("dev", Path("stsa.binary.dev"), (
    "good film .", "bad film .", "lovely film .", "bland film .", "great film .", "poor film .", LONG, "fine film .",
    "superb film .", "boring film .",
), (1, 0, 1, 0, 1, 0, 1, 0, 1, 0))
WRONG = {"poor film ."}
PADDED = SSTSplit("dev", Path("stsa.binary.dev"), ("good film .", "bad film .", "a truly good film , really .",
                                                  "a truly bad film , really ."), (1, 0, 1, 0))  # the fake classifier gets these wrong


def fake_classifier(split: SSTSplit, wrong: set[str] = WRONG):
    """``classify`` that is right except on ``wrong``; it records what it was asked."""
    label = dict(zip(split.sentences, split.labels))
    asked = []

    def classify(scaffold, sentences):
        asked.append(list(sentences))
        signs = torch.tensor([(1.0 if label[s] else -1.0) * (-1 if s in wrong else 1) for s in sentences])
        return torch.stack([signs, -signs], dim=1), torch.zeros(len(sentences), 2, dtype=torch.long)

    return classify, asked


def test_selection_rules_on_a_hand_worked_split(gpt2):
    bridge, tokenizer = gpt2.bridge, gpt2.bridge.tokenizer
    # preconditions of the hand-worked answer: raw lengths (BOS included) and scaffolded lengths
    assert sentence_lengths(tokenizer, SPLIT.sentences, True) == [4, 4, 5, 5, 4, 4, 22, 4, 5, 5]
    scaffolded = sentence_lengths(tokenizer, [CLASSIFICATION.format(s) for s in SPLIT.sentences], True)
    assert scaffolded[3] != scaffolded[2] == scaffolded[8] == scaffolded[9] == scaffolded[0]
    classify, asked = fake_classifier(SPLIT)
    pairs = select_patching_pairs(bridge, SPLIT, True, classify, **PROTOCOL)
    assert asked == [[s for s in SPLIT.sentences if s != LONG]]
    # correct: 0 1 4 7 (length 4) and 2 3 8 9 (length 5); clean [0 1 4 7 | 2 3 8 9], corrupted shifted within
    # each group [1 4 7 0 | 3 8 9 2]; (2, 3) and (3, 8) mix scaffolded lengths and are dropped, leaving
    # (0, 1) (1, 4) (4, 7) (7, 0) (8, 9) (9, 2); seed 0 visits them in the order 2 5 3 0 1 4: positive (4, 7),
    # negative (9, 2), positive (0, 1); no negative-clean pair is left that shares no sentence, so one of each
    assert _source_pairs(pairs) == [(4, 7), (9, 2)]
    assert pairs.labels.tolist() == [1, 0] == pairs.prompts.labels[pairs.clean_rows].tolist()
    assert torch.equal(pairs.attention_mask, pairs.prompts.attention_mask[pairs.corrupted_rows])
    assert pairs.prompts.source_index.tolist() == [2, 4, 7, 9]  # each distinct sentence once
    assert pairs.counts == {
        "dev sentences": 10, "of at most 20 tokens": 9, "classified correctly (centred LD > 0, §5.1)": 8,
        "pairs (length-grouped, cyclic within a group)": 8, "of those, scaffolded prompts also of equal length": 6,
        "pairs used (seed 0; no sentence in two pairs, classes balanced)": 2, "positive clean prompts": 1,
        "negative clean prompts": 1,
    }


def test_disjoint_balanced_pairs():
    """Balanced clean labels, no sentence in two pairs, at most ``n_pairs``, seeded."""
    generator = torch.Generator().manual_seed(3)
    clean, corrupted = torch.randint(0, 60, (200,), generator=generator), torch.randint(60, 120, (200,), generator=generator)
    labels = torch.randint(0, 2, (200,), generator=generator)
    for seed in (0, 1):
        chosen = disjoint_balanced(clean, corrupted, labels, 20, seed)
        sentences = torch.cat([clean[chosen], corrupted[chosen]])
        assert len(chosen) == 20 and len(sentences.unique()) == 40
        assert int(labels[chosen].sum()) == 10
    assert not torch.equal(disjoint_balanced(clean, corrupted, labels, 20, 0), disjoint_balanced(clean, corrupted, labels, 20, 1))
    one_class = disjoint_balanced(clean, corrupted, torch.ones(200, dtype=torch.long), 20, 0)
    assert len(one_class) == 0  # no negative-clean pair: nothing balanced to take
    every = disjoint_balanced(clean, corrupted, labels, None, 0)  # no cap: until a class runs out
    taken = set(torch.cat([clean[every], corrupted[every]]).tolist())
    assert len(every) > 20 and int(labels[every].sum()) * 2 == len(every) and len(taken) == 2 * len(every)
    free = [i for i in range(200) if int(clean[i]) not in taken and int(corrupted[i]) not in taken]
    assert len({int(labels[i]) for i in free}) < 2  # no class has a pair left: one ran out


def test_pairs_are_drawn_with_the_seed(gpt2):
    classify, _ = fake_classifier(SPLIT)
    chosen = {seed: _source_pairs(select_patching_pairs(gpt2.bridge, SPLIT, True, classify, **PROTOCOL, seed=seed))
              for seed in (0, 2)}
    assert chosen[0] == [(4, 7), (9, 2)] and chosen[2] == [(0, 1), (9, 2)]


def _source_pairs(pairs) -> list[tuple[int, int]]:
    source = pairs.prompts.source_index
    return list(zip(source[pairs.clean_rows].tolist(), source[pairs.corrupted_rows].tolist()))


def test_shipped_dev_split_counts(gpt2):
    """The counts that do not depend on the model (today's report: 872 dev sentences, 343 of at most 20)."""
    dev = load_sst()["dev"]
    wrong = set(dev.sentences[::3])
    classify, asked = fake_classifier(dev, wrong)
    pairs = select_patching_pairs(gpt2.bridge, dev, True, classify, **PROTOCOL)
    assert pairs.counts["dev sentences"] == 872 and pairs.counts["of at most 20 tokens"] == 343 == len(asked[0])
    used = pairs.counts["pairs used (seed 0; no sentence in two pairs, classes balanced)"]
    assert used == len(pairs.labels) == USED_WITH_THE_FAKE_CLASSIFIER  # every eligible pair (no cap)
    assert pairs.counts["positive clean prompts"] == used // 2 == pairs.counts["negative clean prompts"]
    used = [i for pair in _source_pairs(pairs) for i in pair]
    assert len(set(used)) == len(used)  # no sentence in two pairs
    for clean, corrupted in _source_pairs(pairs):
        assert dev.labels[clean] != dev.labels[corrupted]
        assert dev.sentences[clean] not in wrong and dev.sentences[corrupted] not in wrong
    assert torch.equal(pairs.attention_mask, pairs.prompts.attention_mask[pairs.corrupted_rows])


def test_sweep_equals_each_pair_run_alone(tiny):
    bridge, n_layers = tiny.bridge, tiny.n_layers
    classify, _ = fake_classifier(PADDED, wrong=set())
    pairs = select_patching_pairs(bridge, PADDED, True, classify, **PROTOCOL)
    assert len(pairs.labels) == 2 and (pairs.prompts.attention_mask == 0).any(), "the test needs padded pairs"
    answers = CLASSIFICATION.answer_ids(bridge.tokenizer)
    generator = torch.Generator().manual_seed(0)
    directions = {"a": {layer: torch.randn(bridge.cfg.d_model, generator=generator) for layer in range(n_layers + 1)},
                  "b": {1: torch.randn(bridge.cfg.d_model, generator=generator)}}
    null = null_directions(2, [0, n_layers], bridge.cfg.d_model, seed=0)
    results, null_results = sst_patching_sweep(bridge, pairs, answers, directions, null, [0, n_layers])
    assert sorted(results.patched) == [("a", layer) for layer in range(n_layers + 1)] + [("b", 1)]
    assert null_results.patched.shape == (2, 2, 2) and torch.equal(null_results.clean, results.clean)
    texts = [CLASSIFICATION.format(s) for s in pairs.prompts.sentences]
    for i, (c, r) in enumerate(zip(pairs.clean_rows.tolist(), pairs.corrupted_rows.tolist())):
        clean, corrupted = (bridge.to_tokens(texts[row], prepend_bos=True) for row in (c, r))
        assert clean.shape == corrupted.shape  # length-matched: alone, neither is padded
        clean_resid = residual_stream(bridge, clean)
        with torch.no_grad():
            torch.testing.assert_close(results.clean[i], sentiment_score(bridge(clean)[:, -1], answers)[0],
                                       atol=1e-4, rtol=0)
            torch.testing.assert_close(results.corrupted[i], sentiment_score(bridge(corrupted)[:, -1], answers)[0],
                                       atol=1e-4, rtol=0)
            patched = [(directions[method][layer], layer, scores) for (method, layer), scores in results.patched.items()]
            patched += [(null[k, j], layer, null_results.patched[k, j]) for k in range(2)
                        for j, layer in enumerate(null_results.layers)]
            for direction, layer, scores in patched:
                hook = edit_hook(directional_patch(direction, clean_resid[layer]))
                alone = bridge.run_with_hooks(corrupted, fwd_hooks=[(resid(n_layers, layer), hook)])[:, -1]
                torch.testing.assert_close(scores[i], sentiment_score(alone, answers)[0], atol=1e-4, rtol=0)
