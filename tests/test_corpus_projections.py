"""harness.experiments.corpus_projections: the §5.4 corpus, its aligned token labels and the random-direction null.

- ``sample_corpus`` draws without replacement under the seed, keeps file order, caps at the split;
- ``aligned_token_labels`` gives every token its word's label and refuses residuals whose rows are not
  the tokenizer's tokens;
- ``random_null_aurocs`` are the AUROCs of seeded Gaussian directions and leave the global RNG alone;
- ``word_types`` gives each token its word's lexicon key, one label per type;
- ``project_corpus`` on a tiny model: one label, word type and projection per token (BOS left out), equal
  to the cosines of ``residuals_at``'s rows, each text's token count, and the null (projections, AUROCs,
  tail scores) under its seed;
- ``CorpusProjections``: estimates over word types under its seed (computed once): the tail score over
  every type, the AUROC over the labelled ones, R1.auroc's paired statistic AUROC − max(0.8, the null's
  97.5% quantile) on the same resamples; the null's range and R1.auroc's threshold on the data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.experiments.corpus_projections import (
    STANDARDIZED, CorpusProjections, aligned_token_labels, project_corpus, random_null_aurocs, sample_corpus,
    standardized_cosines, word_type, word_types,
)
from harness.experiments.correlation import (
    auroc, auroc_of_counts, cosine_projections, of_drawn_units, residuals_at, tail_score,
)
from harness.measures.intervals import resampled
from harness.directions.registry import methods
from harness.experiments.early_directions import early_directions
from harness.measures.statistics import resample_indices, seeded
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
                             PROTOCOL["null_directions"], PROTOCOL["tail_quantile"], null_seed=5)
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
    null = null_directions_projected(resid, 5)
    assert torch.allclose(payload["null_projections"], null, atol=1e-5)
    assert torch.allclose(payload["random_null_tail_score"], torch.tensor(
        [tail_score(row, payload["labels"], PROTOCOL["tail_quantile"]).score for row in payload["null_projections"]]))
    ids, types = word_types(tokenizer, TEXTS, payload["labels"])
    assert torch.equal(payload["word_ids"], ids) and payload["word_types"] == types
    # the robust reading: the same directions and null, standardized; the isotropy control's shares
    mean, std = resid.double().mean(0), resid.double().std(0)
    z = (resid.double() - mean) / std
    for name, direction in directions.items():
        theirs = torch.nn.functional.cosine_similarity(z, direction.double()[None], dim=-1)
        assert torch.allclose(payload["standardized"]["projections"][name].double(), theirs, atol=1e-5)
    assert payload["standardized"]["null_projections"].shape == null.shape
    assert payload["standardized"]["random_null_auroc"].shape == (100,)
    squares = resid.double() ** 2
    assert payload["top_coordinate"] == int(squares.mean(0).argmax())
    assert torch.allclose(payload["top_share"].double(), squares[:, payload["top_coordinate"]] / squares.sum(-1),
                          atol=1e-6)


def test_standardized_cosines_ignore_a_coordinate_that_dominates_the_norm():
    """A coordinate with a huge, widely spread value sets every raw cosine, even for a direction that reads it
    only a little; the standardized cosine orders the tokens as the direction reads the standardized tokens,
    and shifting or rescaling any coordinate does not change it."""
    generator = torch.Generator().manual_seed(0)
    tokens, direction = torch.randn(500, 16, generator=generator), torch.zeros(16)
    direction[1], direction[0] = 1.0, 0.05  # the direction reads coordinate 1, and a little of the outlier 0
    rogue = tokens.clone()
    rogue[:, 0] = 1000 * torch.randn(500, generator=generator)
    mean, std = rogue.double().mean(0), rogue.double().std(0)
    robust = standardized_cosines(rogue, direction[None], mean, std)[0]
    assert spearman(robust, tokens[:, 1]) > 0.9
    assert spearman(cosine_projections(rogue, direction), tokens[:, 1]) < 0.6
    z = (rogue.double() - mean) / std
    assert torch.allclose(robust.double(), torch.nn.functional.cosine_similarity(z, direction.double()[None]),
                          atol=1e-5)
    moved = rogue * torch.linspace(0.5, 3, 16) + torch.arange(16.0)
    again = standardized_cosines(moved, direction[None], moved.double().mean(0), moved.double().std(0))[0]
    assert torch.allclose(again, robust, atol=1e-5)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.argsort().argsort().double(), b.argsort().argsort().double())[0, 1])


def null_directions_projected(resid: torch.Tensor, seed: int) -> torch.Tensor:
    directions = torch.randn(PROTOCOL["null_directions"], resid.shape[1], generator=torch.Generator().manual_seed(seed))
    return torch.stack([cosine_projections(resid, d) for d in directions])


def test_word_types_are_the_lexicons_keys(tokenizer, labeller):
    texts = ["Great, great GREAT! a terrible-ish film", "great... and terrible"]
    labels = torch.tensor([l for t in texts for l in labeller.token_labels(tokenizer, t)[1]])
    ids, types = word_types(tokenizer, texts, labels)
    assert len(ids) == len(labels) and types == sorted(set(types))
    assert word_type("Great,") == word_type("GREAT!") == word_type("great...") == "great"
    assert word_type("...") == "..." and word_type("terrible-ish") == "terrible-ish"
    great = [types[i] == "great" for i in ids.tolist()]
    assert sum(great) >= 4 and all(labels[i] == POSITIVE for i, g in enumerate(great) if g)
    with pytest.raises(ValueError, match="two lexicon labels"):
        word_types(tokenizer, texts, -labels * (torch.arange(len(labels)) % 2))


def corpus_projections(null: torch.Tensor, seed: int = 0, nulls: int = 20, signal: float = 0.0) -> CorpusProjections:
    """80 sentences over 60 word types, each type with one label; ``null``: the null's AUROCs as given, its
    projections random (``signal`` × the label added)."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, 9, (80,), generator=generator)
    word_ids = torch.randint(0, 60, (int(lengths.sum()),), generator=generator)
    labels = (torch.arange(60) % 3 - 1)[word_ids]
    effect = torch.randn(60, generator=generator)[word_ids]  # tokens of one type alike
    projections = {m: effect + 0.3 * torch.randn(len(labels), generator=generator) + 0.8 * labels for m in methods()}
    null_projections = torch.randn(nulls, len(labels), generator=generator) + signal * labels
    early = early_directions({m: {layer: torch.randn(8) for layer in range(13)} for m in methods()}, 12)
    standardized = {"projections": {m: -p for m, p in projections.items()}, "null_projections": -null_projections,
                    "random_null_auroc": 1 - null, "random_null_tail_score": torch.rand(nulls)}
    return CorpusProjections("a corpus", 80, labels, projections, null, early, "a labeller", lengths,
                             PROTOCOL["tail_quantile"], PROTOCOL["auroc_floor"], PROTOCOL["null_quantile"], word_ids,
                             null_projections, torch.rand(nulls), seed=seed, resamples=200,
                             standardized=standardized, top_coordinate=3, top_share=(word_ids % 5) / 10)


def test_the_standardized_reading_is_the_same_corpus_read_again():
    corpus = corpus_projections(torch.rand(100), seed=1)
    corpus.auroc("kmeans")
    robust = corpus.standardized_reading()
    assert robust.reading == STANDARDIZED and corpus.reading != STANDARDIZED
    assert torch.equal(robust.labels, corpus.labels) and torch.equal(robust.word_ids, corpus.word_ids)
    assert robust.auroc("kmeans").value == pytest.approx(1 - corpus.auroc("kmeans").value)  # its own cache
    with pytest.raises(ValueError, match="without the standardized reading"):
        robust.standardized_reading()


def test_the_isotropy_control_is_the_mean_share_over_tokens_with_a_ci_over_word_types():
    corpus = corpus_projections(torch.rand(100), seed=1)
    share = corpus.top_coordinate_share()
    assert share.value == pytest.approx(float(corpus.top_share.double().mean()))
    assert share.ci_low <= share.value <= share.ci_high and share.n == 60 and share.unit == "word types"
    assert corpus.top_coordinate_share() is share


def test_corpus_projections_estimate_over_word_types_under_their_seed():
    corpus = corpus_projections(torch.rand(100), seed=2)
    assert corpus.sentence_ids.tolist() == [s for s, n in enumerate(corpus.sentence_lengths.tolist()) for _ in range(n)]
    assert (corpus.n_word_types, corpus.labelled_word_types) == (60, 40)
    area = corpus.auroc("kmeans")
    assert corpus.auroc("kmeans") is area  # computed once
    labelled = corpus.labels != 0
    types, clusters = corpus.word_ids[labelled].unique(return_inverse=True)
    with seeded(2):  # the studentized interval, the jackknife within each resample done one cluster at a time
        theirs = resampled(of_drawn_units(auroc_of_counts(corpus.projections["kmeans"][labelled],
                                                          corpus.labels[labelled], clusters), 40),
                           torch.arange(40), resamples=200, method="studentized").estimate("studentized", "x", "y")
    assert (area.value, area.ci_low, area.ci_high) == pytest.approx((theirs.value, theirs.ci_low, theirs.ci_high),
                                                                    abs=1e-9)
    assert "studentized" in area.method and area.undefined == theirs.undefined
    assert area.value == pytest.approx(auroc(corpus.projections["kmeans"], corpus.labels))
    assert (area.n, area.unit, area.resamples) == (40, "labelled word types", 200)
    score = corpus.tail_score("pca")
    assert score.value == pytest.approx(tail_score(corpus.projections["pca"], corpus.labels, 0.001).score)
    assert (score.n, score.unit) == (60, "word types") and "cluster bootstrap over word types" in score.method
    with seeded(3):
        assert corpus_projections(torch.rand(100), seed=2).auroc("kmeans") == area  # the corpus's seed, not the session's
    assert corpus_projections(torch.rand(100), seed=5).auroc("kmeans") != area


@pytest.mark.parametrize("signal", [0.0, 0.4])
def test_auroc_above_null_is_paired_with_the_nulls_quantile(signal):
    corpus = corpus_projections(torch.rand(20), signal=signal)
    threshold = corpus.auroc_threshold_estimate()
    for method in ("kmeans", "das"):
        area, above = corpus.auroc(method), corpus.auroc_above_null(method)
        assert above.value == pytest.approx(area.value - threshold.value)
        assert (above.n, above.resamples) == (area.n, area.resamples) and "paired" in above.method
    draws, names = corpus._separation()
    null = pair_aurocs(corpus)
    expected = torch.quantile(null, PROTOCOL["null_quantile"], dim=1).clamp(min=PROTOCOL["auroc_floor"])
    assert torch.allclose(draws.draws[:, len(names)], expected)  # the threshold, in every resample
    assert torch.allclose(draws.draws[:, len(names) + 1:], draws.draws[:, :len(names)] - expected[:, None])
    binds = float((expected > PROTOCOL["auroc_floor"]).double().mean())
    assert corpus.null_binds() == binds and (binds == 0 if signal == 0 else 0 < binds < 1)
    # the studentized interval of the paired statistic: the library's, every jackknife evaluated in full
    labelled = corpus.labels != 0
    types, clusters = corpus.word_ids[labelled].unique(return_inverse=True)
    target = corpus.labels[labelled]
    method = auroc_of_counts(corpus.projections["pca"][labelled], target, clusters)
    nulls = [auroc_of_counts(row[labelled], target, clusters) for row in corpus.null_projections]
    statistic = lambda counts: method(counts) - torch.quantile(torch.stack([f(counts) for f in nulls], 1),
                                                              PROTOCOL["null_quantile"], dim=1).clamp(
        min=PROTOCOL["auroc_floor"])
    with seeded(corpus.seed):
        theirs = resampled(of_drawn_units(statistic, len(types)), torch.arange(len(types)), resamples=corpus.resamples,
                           method="studentized").estimate("studentized", "x", "y")
    ours = corpus.auroc_above_null("pca")
    assert (ours.value, ours.ci_low, ours.ci_high) == pytest.approx((theirs.value, theirs.ci_low, theirs.ci_high),
                                                                    abs=1e-9)


def pair_aurocs(corpus: CorpusProjections) -> torch.Tensor:
    """The null directions' AUROCs in the corpus's resamples, one at a time (``auroc_of_counts``)."""
    labelled = corpus.labels != 0
    types, clusters = corpus.word_ids[labelled].unique(return_inverse=True)
    with seeded(corpus.seed):
        index = resample_indices(len(types), corpus.resamples)
    return torch.stack([of_drawn_units(auroc_of_counts(row[labelled], corpus.labels[labelled], clusters),
                                       len(types))(index) for row in corpus.null_projections], dim=1)


def test_auroc_threshold_is_the_floor_or_the_nulls_upper_quantile():
    spread = torch.linspace(0.3, 0.7, 101)
    assert corpus_projections(spread).auroc_threshold == 0.8
    assert corpus_projections(spread).null_range() == pytest.approx((0.31, 0.5, 0.69))
    wide = torch.linspace(0.1, 0.9, 101)
    assert corpus_projections(wide).auroc_threshold == pytest.approx(0.88)
