"""harness.experiments.corpus_projections: the §5.4 corpus, its aligned token labels and the random-direction null.

- ``sample_corpus`` draws without replacement under the seed, keeps file order, caps at the split;
- ``aligned_token_labels`` gives every token its word's label and refuses residuals whose rows are not
  the tokenizer's tokens;
- ``random_null_aurocs`` are the AUROCs of seeded Gaussian directions and leave the global RNG alone;
- ``project_corpus`` on a tiny model: one label and one projection per token (BOS left out), equal
  to the cosines of ``residuals_at``'s rows, each text's token count, and the null under its seed;
- ``CorpusProjections``: estimates over sentences under its seed (computed once), the null's range,
  and R1.auroc's threshold max(0.8, the null's 97.5% quantile) with R1's declared protocol.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.experiments.corpus_projections import (
    CorpusProjections, aligned_token_labels, project_corpus, random_null_aurocs, sample_corpus,
)
from harness.experiments.correlation import auroc, auroc_of_counts, by_sentence, cosine_projections, residuals_at, tail_score
from harness.directions.registry import methods
from harness.experiments.early_directions import early_directions
from harness.measures.statistics import seeded
from harness.datasets.lexicon import NEGATIVE, POSITIVE, VaderLabeller
from harness.datasets.sst import SSTSplit
from harness.verdicts.declared import declared

PROTOCOL = declared("R1").protocol

TEXTS = ["a wonderful , moving film", "a terrible and boring mess", "the plot is fine",
         "great acting but awful dialogue", "i loved it"]


@pytest.fixture(scope="module")
def labeller() -> VaderLabeller:
    return VaderLabeller()


def split(n: int) -> SSTSplit:
    return SSTSplit("train", Path("stsa.binary.train"), tuple(f"sentence {i}" for i in range(n)),
                    tuple(i % 2 for i in range(n)))


def test_sample_corpus_is_the_seeded_draw_in_file_order():
    data = split(50)
    sample = sample_corpus(data, size=7, seed=3)
    chosen = np.random.default_rng(3).choice(50, size=7, replace=False)
    assert sample.texts == [data.sentences[i] for i in sorted(chosen)]
    assert sample.texts == sorted(set(sample.texts), key=data.sentences.index)
    assert sample.description == "SST-2 train (stsa.binary.train), 7 of 50 sentences (seed 3)"
    assert sample_corpus(data, size=7, seed=3) == sample
    assert sample_corpus(data, size=7, seed=4).texts != sample.texts


def test_sample_corpus_caps_at_the_split():
    sample = sample_corpus(split(5), size=PROTOCOL["corpus_sentences"], seed=PROTOCOL["corpus_seed"])
    assert sample.texts == list(split(5).sentences)
    assert sample.description == "SST-2 train (stsa.binary.train), 5 of 5 sentences (seed 0)"


def test_aligned_token_labels_follow_each_texts_tokens(tokenizer, labeller):
    rows = [torch.zeros(len(tokenizer.encode(text, add_special_tokens=False)), 4) for text in TEXTS]
    labels = aligned_token_labels(tokenizer, labeller, TEXTS, rows)
    expected = [label for text in TEXTS for label in labeller.token_labels(tokenizer, text)[1]]
    assert labels.tolist() == expected
    assert POSITIVE in expected and NEGATIVE in expected


def test_aligned_token_labels_refuse_misaligned_residuals(tokenizer, labeller):
    rows = [torch.zeros(len(tokenizer.encode(text, add_special_tokens=False)), 4) for text in TEXTS]
    rows[1] = torch.zeros(rows[1].shape[0] + 1, 4)  # e.g. a BOS row left in
    with pytest.raises(ValueError, match="disagree on the tokens of 'a terrible and boring mess'"):
        aligned_token_labels(tokenizer, labeller, TEXTS, rows)


def test_random_null_aurocs_are_seeded_directions():
    generator = torch.Generator().manual_seed(1)
    resid = torch.randn(200, 16, generator=generator)
    labels = torch.tensor([POSITIVE, NEGATIVE, 0, POSITIVE] * 50)
    state = torch.get_rng_state()
    null = random_null_aurocs(resid, labels, count=5, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    directions = torch.randn(5, 16, generator=torch.Generator().manual_seed(7))
    assert torch.equal(null, torch.tensor([auroc(cosine_projections(resid, d), labels) for d in directions]))
    assert torch.equal(random_null_aurocs(resid, labels, count=5, seed=7), null)
    assert not torch.equal(random_null_aurocs(resid, labels, count=5, seed=8), null)


@pytest.mark.parametrize("prepend_bos", [True, False])
def test_project_corpus_labels_and_projects_every_token(gpt2, tokenizer, labeller, prepend_bos):
    generator = torch.Generator().manual_seed(0)
    directions = {"a": torch.randn(gpt2.bridge.cfg.d_model, generator=generator),
                  "b": torch.randn(gpt2.bridge.cfg.d_model, generator=generator)}
    payload = project_corpus(gpt2.bridge, gpt2.tokenizer, TEXTS, 1, directions, labeller, prepend_bos,
                             PROTOCOL["null_directions"], null_seed=5)
    resid = torch.cat(residuals_at(gpt2.bridge, TEXTS, 1, prepend_bos))
    n_tokens = sum(len(tokenizer.encode(text, add_special_tokens=False)) for text in TEXTS)
    assert resid.shape[0] == n_tokens
    assert payload["labels"].shape == (n_tokens,)
    assert payload["labels"].tolist() == [l for t in TEXTS for l in labeller.token_labels(tokenizer, t)[1]]
    assert list(payload["projections"]) == ["a", "b"]
    for name, direction in directions.items():
        assert torch.allclose(payload["projections"][name], cosine_projections(resid, direction), atol=1e-5)
    assert payload["random_null_auroc"].shape == (100,)
    assert torch.allclose(payload["random_null_auroc"], random_null_aurocs(resid, payload["labels"], 100, seed=5),
                          atol=1e-3)
    assert payload["sentence_lengths"].tolist() == [len(tokenizer.encode(t, add_special_tokens=False)) for t in TEXTS]


def corpus_projections(null: torch.Tensor, seed: int = 0) -> CorpusProjections:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 9, (80,), generator=generator)
    labels = torch.randint(-1, 2, (int(lengths.sum()),), generator=generator)
    projections = {m: torch.randn(len(labels), generator=generator) + 0.8 * labels for m in methods()}
    early = early_directions({m: {layer: torch.randn(8) for layer in range(13)} for m in methods()}, 12)
    return CorpusProjections("a corpus", 80, labels, projections, null, early, "a labeller", lengths,
                             PROTOCOL["tail_quantile"], PROTOCOL["auroc_floor"], PROTOCOL["null_quantile"], seed=seed,
                             resamples=200)


def test_corpus_projections_estimate_over_sentences_under_their_seed():
    corpus = corpus_projections(torch.rand(100), seed=2)
    assert corpus.sentence_ids.tolist() == [s for s, n in enumerate(corpus.sentence_lengths.tolist()) for _ in range(n)]
    area = corpus.auroc("kmeans")
    assert corpus.auroc("kmeans") is area  # computed once
    with seeded(2):
        assert area == by_sentence(auroc_of_counts(corpus.projections["kmeans"], corpus.labels, corpus.sentence_ids),
                                   80, resamples=200)
    assert area.value == pytest.approx(auroc(corpus.projections["kmeans"], corpus.labels))
    assert (area.n, area.unit) == (80, "sentences")
    assert corpus.tail_score("pca").value == pytest.approx(tail_score(corpus.projections["pca"], corpus.labels,
                                                                      0.001).score)


def test_auroc_threshold_is_the_floor_or_the_nulls_upper_quantile():
    spread = torch.linspace(0.3, 0.7, 101)
    assert corpus_projections(spread).auroc_threshold == 0.8
    assert corpus_projections(spread).null_range() == pytest.approx((0.31, 0.5, 0.69))
    wide = torch.linspace(0.1, 0.9, 101)
    assert corpus_projections(wide).auroc_threshold == pytest.approx(0.88)
