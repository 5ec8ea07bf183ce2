"""harness.datasets.sst_prompts (paper §2.3): scaffolds, length-matched pairs, the zero-shot set, left padding.

- the scaffolds are the paper's exact strings and their answers are single tokens for SmolLM2;
- pairing groups by length, zips positives with negatives in order and shifts cyclically by one
  within each group;
- the zero-shot selection applies comma, correctness and top-k filters, balances the classes with a
  seeded subsample and counts every stage;
- a left-padded prompt's final logits equal the prompt run alone, on GPT-2 (absolute positions) and
  NeoX (rotary), and ``run_from`` restarted from cached padded residuals gives the same logits;
- ``answer_logits`` (length-sorted chunks) equals one forward per prompt;
- the SST patching sweep (by length group, unpadded, with the scaffold head's key/value prefix) equals
  each pair's own full forward.
"""

from __future__ import annotations

import pytest
import torch

from harness.interventions.forward import block_inputs, residual_stream, run_from
from harness.datasets.sst_prompts import (
    CLASSIFICATION, ZERO_SHOT, Scaffold, answer_logits, comma_ids, length_matched_pairs, scaffold_prompts,
    seeded_subset, select_zero_shot, sentence_lengths, token_mask,
)
from harness.datasets.tokens import tokenize_padded

SENTENCES = ["a fine film , truly moving .", "dull .", "it 's bad , really bad", "great fun"]


def test_scaffolds_are_the_papers_strings(tokenizer):
    assert CLASSIFICATION.format("x") == "Review Text: x Review Sentiment:"
    assert ZERO_SHOT.format("x") == "x Review Sentiment:"
    ids = CLASSIFICATION.answer_ids(tokenizer)
    assert ids.shape == (2, 1) and tokenizer.decode(ids[0]) == " Positive" and tokenizer.decode(ids[1]) == " Negative"
    assert torch.equal(ZERO_SHOT.answer_ids(tokenizer), ids)
    with pytest.raises(ValueError, match="must each be one token"):
        Scaffold("two_tokens", "{TEXT}", (" Positively glowing", " Negative")).answer_ids(tokenizer)


def test_length_matched_pairs_follow_the_authors_rule():
    lengths = [5, 5, 7, 5, 7, 5, 7]
    labels = [1, 0, 1, 1, 0, 0, 0]
    clean, corrupted = length_matched_pairs(lengths, labels)
    # length 5: positives 0, 3 zipped with negatives 1, 5; length 7: positive 2 with negative 4 (6 unpaired)
    assert clean.tolist() == [0, 1, 3, 5, 2, 4]
    assert corrupted.tolist() == [1, 3, 5, 0, 4, 2]  # shifted by one, cyclically within each group
    assert all(lengths[a] == lengths[b] for a, b in zip(clean.tolist(), corrupted.tolist()))
    assert all(labels[a] != labels[b] for a, b in zip(clean.tolist(), corrupted.tolist()))


def test_seeded_subset_is_deterministic_and_ordered():
    candidates = torch.arange(10, 30)
    first, second = seeded_subset(candidates, 5, seed=0), seeded_subset(candidates, 5, seed=0)
    assert torch.equal(first, second) and torch.equal(first, first.sort().values) and len(first) == 5
    assert not torch.equal(first, seeded_subset(candidates, 5, seed=1))
    assert torch.equal(seeded_subset(candidates[:3], 5, seed=0), candidates[:3])


def test_comma_tokens_include_the_ptb_spaced_comma(tokenizer):
    ids = comma_ids(tokenizer)
    tokens = torch.tensor([tokenizer.encode(SENTENCES[0], add_special_tokens=False)])
    assert token_mask(tokens, ids).sum() == 1  # " ," in "film , truly"
    assert {tokenizer.decode([i]).strip() for i in ids} == {","}


def test_select_zero_shot_filters_balances_and_counts():
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 1])
    diffs = torch.tensor([2.0, 1.0, -1.0, 3.0, 0.5, 1.5, float("nan"), 2.0])
    top_k = torch.tensor([True, True, True, True, True, False, False, True])
    comma = torch.tensor([True, True, True, True, True, True, False, False])
    selection = select_zero_shot(diffs, top_k, comma, labels, seed=0)
    # kept: positives 0, 1, 3 (2 is wrong, 7 has no comma); negative 4 (5 not in top k, 6 no comma)
    assert selection.counts["with a comma token"] == {"positive": 4, "negative": 2}
    assert selection.counts["classified correctly, answer in top 10"] == {"positive": 3, "negative": 1}
    assert selection.counts["balanced (seeded subsample)"] == {"positive": 1, "negative": 1}
    assert 4 in selection.index.tolist() and len(selection.index) == 2
    assert torch.equal(selection.index, select_zero_shot(diffs, top_k, comma, labels, seed=0).index)
    correct_only = select_zero_shot(diffs, None, comma, labels, seed=0)
    assert correct_only.counts["classified correctly"] == {"positive": 3, "negative": 2}
    assert correct_only.counts["balanced (seeded subsample)"] == {"positive": 2, "negative": 2}
    capped = select_zero_shot(diffs, top_k, torch.ones(8, dtype=torch.bool), labels, seed=0, max_per_class=1)
    assert capped.counts["balanced (seeded subsample)"] == {"positive": 1, "negative": 1}


def test_sentence_lengths_count_bos(tokenizer):
    assert sentence_lengths(tokenizer, ["dull ."], prepend_bos=True) == [len(tokenizer.encode("dull .")) + 1]


def test_left_padding_leaves_final_logits_unchanged(tiny):
    """GPT-2 has absolute positions: TransformerLens 4 derives position ids from the attention mask."""
    bridge = tiny.bridge
    tokens, mask = tokenize_padded(bridge, [ZERO_SHOT.format(s) for s in SENTENCES], prepend_bos=True)
    assert (mask == 0).any(), "the test needs padded rows"
    resid = residual_stream(bridge, tokens, attention_mask=mask)
    with torch.no_grad():
        padded = bridge(tokens, attention_mask=mask)[:, -1]
        for row, sentence in enumerate(SENTENCES):
            alone = bridge(bridge.to_tokens(ZERO_SHOT.format(sentence), prepend_bos=True))[0, -1]
            torch.testing.assert_close(padded[row], alone, atol=1e-4, rtol=0)
        for layer in range(tiny.n_layers + 1):
            restarted = run_from(bridge, block_inputs(resid, layer), layer, attention_mask=mask)
            torch.testing.assert_close(restarted, padded, atol=1e-4, rtol=0)


def test_scaffold_prompts_and_answer_logits(gpt2):
    bridge = gpt2.bridge
    prompts = scaffold_prompts(bridge, CLASSIFICATION, SENTENCES, [1, 0, 0, 1], range(4), prepend_bos=True)
    assert prompts.tokens.shape == prompts.attention_mask.shape and len(prompts) == 4
    assert prompts.labels.tolist() == [1, 0, 0, 1] and prompts.source_index.tolist() == [0, 1, 2, 3]
    logits, ranks = answer_logits(bridge, CLASSIFICATION, SENTENCES, prepend_bos=True, chunk_size=3)
    ids = CLASSIFICATION.answer_ids(bridge.tokenizer)[:, 0]
    with torch.no_grad():
        for row, sentence in enumerate(SENTENCES):
            alone = bridge(bridge.to_tokens(CLASSIFICATION.format(sentence), prepend_bos=True))[0, -1]
            torch.testing.assert_close(logits[row], alone[ids], atol=1e-4, rtol=0)
            assert ranks[row].tolist() == [int((alone > alone[i]).sum()) for i in ids]


def test_sst_sweep_by_length_group_equals_each_pairs_own_full_forward(tiny):
    """``sst_patching_sweep``: pairs of several prompt lengths (run by length group, unpadded, the shared
    scaffold head from a key/value prefix) give, pair by pair, the full forward of the corrupted prompt
    alone patched along the direction from its clean prompt; the null's rows are the same patch."""
    from harness.experiments.sst_patching import SSTPairs, sst_patching_sweep
    from harness.interventions.prefix_cache import shared_prefix
    from harness.interventions.hook_names import resid as resid_hook_name
    from harness.interventions.edit import directional_patch, edit_hook
    from harness.measures.metrics import sentiment_score

    bridge, n_layers = tiny.bridge, tiny.n_layers
    sentences = ["a truly fine film", "a truly dull film", "dull", "fine", "great fun", "bad fun"]
    prompts = scaffold_prompts(bridge, CLASSIFICATION, sentences, [1, 0, 0, 1, 1, 0], range(6), prepend_bos=True)
    pairs = SSTPairs(prompts, torch.tensor([0, 3, 4]), torch.tensor([1, 2, 5]), torch.tensor([1, 1, 1]), {})
    assert torch.equal(pairs.attention_mask, prompts.attention_mask[pairs.corrupted_rows])  # length-matched
    assert len(pairs.attention_mask.sum(-1).unique()) > 1  # several length groups, padded together
    answers = CLASSIFICATION.answer_ids(bridge.tokenizer)
    direction = torch.randn(bridge.cfg.d_model, generator=torch.Generator().manual_seed(0))
    direction = direction / direction.norm()
    layers = [1, n_layers]
    results, null = sst_patching_sweep(bridge, pairs, answers, {"m": {layer: direction for layer in range(n_layers + 1)}},
                                       direction.expand(1, len(layers), -1), layers)
    with torch.no_grad():
        for pair, (clean_row, corrupted_row) in enumerate(zip(pairs.clean_rows, pairs.corrupted_rows)):
            mask = prompts.attention_mask[clean_row].bool()
            clean, corrupted = prompts.tokens[clean_row, mask][None], prompts.tokens[corrupted_row, mask][None]
            resid = residual_stream(bridge, clean)
            torch.testing.assert_close(results.clean[pair], sentiment_score(bridge(clean)[:, -1], answers)[0],
                                       atol=1e-4, rtol=0)
            for layer in range(n_layers + 1):
                hook = edit_hook(directional_patch(direction, resid[layer]))
                full = bridge.run_with_hooks(corrupted, fwd_hooks=[(resid_hook_name(n_layers, layer), hook)])[:, -1]
                torch.testing.assert_close(results.patched["m", layer][pair], sentiment_score(full, answers)[0],
                                           atol=1e-4, rtol=0)
    for i, layer in enumerate(layers):
        torch.testing.assert_close(null.patched[0, i], results.patched["m", layer], atol=1e-5, rtol=0)
    assert shared_prefix(torch.tensor([[1, 2, 3, 4]]), torch.tensor([[1, 2, 5, 4]])) == 2
    assert shared_prefix(torch.tensor([[1, 2, 3]]), torch.tensor([[1, 2, 3]])) == 2


def test_centred_accuracy_subtracts_the_bias_over_all_sentences():
    from harness.datasets.sst_prompts import centred_accuracy, competence, CLASSIFICATION

    # every score leans positive: uncentred, all negatives are wrong; centred, all are right but one
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    scores = torch.tensor([4.0, 5.0, 3.5, 2.0, 1.0, 3.6])
    logits = torch.stack([scores, torch.zeros(6)], dim=1)
    estimate = centred_accuracy(logits, labels)  # bias = 19.1 / 6 ≈ 3.18: only the negative 3.6 sits above it
    assert estimate.value == pytest.approx(100 * 5 / 6) and estimate.n == 6 and estimate.unit == "sentences"
    assert estimate.ci_low < estimate.value < estimate.ci_high and estimate.method == "Wilson score interval"
    measured = competence("classification", CLASSIFICATION, "dev", logits, labels)
    assert measured.uncentred_accuracy == pytest.approx(50) and measured.bias == pytest.approx(19.1 / 6)
