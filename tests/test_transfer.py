"""Transfer claims (G1-G3): the datasets' loader and validation, balanced sampling, the layer choice and
orientation on SST, the G1 statistic's paired null, G3's independent bootstrap, G2's pairing, the
residual reading on a tiny model, and ``--transfer-data`` bad input end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.experiments.corpus_projections import null_directions
from harness.experiments.correlation import auroc
from harness.interventions.forward import residual_stream
from harness.measures.statistics import seeded
from harness.experiments.transfer import (
    auroc_above_null_estimate, auroc_above_null_of_counts, choose_layers, item_residuals, null_signs, orientation,
    separation_difference, signed_labels,
)
from harness.experiments.transfer_ablation import TransferAblations, null_rows
from harness.datasets.transfer import (
    SHIPPED_DIR, TransferDataError, balanced_sample, dataset_paths, is_specificity, load_transfer, read_dataset,
)
from harness.verdicts.declared import declared

PROTOCOL = declared("G1").protocol


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# loading and validation ------------------------------------------------------------------------------

def test_shipped_datasets_load_with_their_sizes():
    datasets = load_transfer()
    assert {name: len(d) for name, d in datasets.items()} == {"mpqa": 10603, "subj": 10000}
    assert sum(datasets["mpqa"].labels) == 3311 and sum(datasets["subj"].labels) == 5000
    assert datasets["subj"].specificity and not datasets["mpqa"].specificity
    assert (SHIPPED_DIR / "README.md").is_file()


def test_report_names_shipped_files_relative_to_the_project_and_a_users_as_given(tmp_path):
    from harness.reporting.rendering import shown_path
    from harness.datasets.sst import load_sst

    assert shown_path(load_transfer()["mpqa"].path) == "harness/data/transfer/mpqa.all"
    assert shown_path(load_sst()["dev"].path) == "harness/data/sst2/stsa.binary.dev"
    assert shown_path(tmp_path / "mine.all") == str(tmp_path / "mine.all")


def test_malformed_line_is_named_with_file_and_line(tmp_path):
    path = _write(tmp_path / "reviews.all", ["1 good", "0 bad", "2 what", "1 fine"])
    with pytest.raises(TransferDataError, match=rf"{path}:3: expected 'LABEL SENTENCE'"):
        read_dataset(path)


def test_one_class_file_is_refused(tmp_path):
    with pytest.raises(TransferDataError, match="both classes"):
        read_dataset(_write(tmp_path / "pos.all", ["1 good", "1 fine"]))


def test_directory_scan_names_and_replacement(tmp_path):
    _write(tmp_path / "mpqa.all", ["1 good", "0 bad"])  # replaces the shipped mpqa
    _write(tmp_path / "stsa.binary.test", ["1 good", "0 bad"])
    _write(tmp_path / "notes.txt", ["not a dataset"])
    extra = _write(tmp_path.parent / f"{tmp_path.name}-subjx.all", ["1 plot", "0 opinion"])
    paths = dataset_paths([tmp_path, extra])
    assert paths["mpqa"] == tmp_path / "mpqa.all"
    assert paths["stsa.binary.test"] == tmp_path / "stsa.binary.test"
    assert "notes" not in paths and paths["subj"] == SHIPPED_DIR / "subj.all"
    datasets = load_transfer([tmp_path])
    assert len(datasets["mpqa"]) == 2 and len(datasets["subj"]) == 10000
    assert is_specificity("subj_movies") and not is_specificity("mpqa")


def test_missing_path_and_empty_directory_are_refused(tmp_path):
    with pytest.raises(TransferDataError, match="does not exist"):
        dataset_paths([tmp_path / "nowhere"])
    with pytest.raises(TransferDataError, match="holds no"):
        dataset_paths([tmp_path])


def test_balanced_sample_is_seeded_balanced_and_in_file_order():
    labels = [1] * 30 + [0] * 100
    index = balanced_sample(labels, per_class=20, seed=0)
    assert torch.equal(index, index.sort().values)
    chosen = torch.tensor(labels)[index]
    assert int(chosen.sum()) == 20 and int((chosen == 0).sum()) == 20
    assert torch.equal(index, balanced_sample(labels, per_class=20, seed=0))
    assert not torch.equal(index, balanced_sample(labels, per_class=20, seed=1))
    small = balanced_sample(labels, per_class=50, seed=0)  # the smaller class is taken whole
    assert int(torch.tensor(labels)[small].sum()) == 30 and len(small) == 80


# layer choice, orientation and G1 ---------------------------------------------------------------------

def test_layer_choice_orients_each_layer_on_sst():
    torch.manual_seed(0)
    labels = torch.tensor([1] * 20 + [0] * 20)
    direction = torch.zeros(8)
    direction[0] = 1.0
    resid = torch.randn(3, 40, 8)
    resid[1, :, 0] += 10 * (labels.float() * 2 - 1)  # layer 1 separates, + = positive
    resid[2, :, 0] -= 1 * (labels.float() * 2 - 1)  # layer 2 separates less, reversed
    choice = choose_layers(resid, labels, {"m": {0: direction, 1: direction, 2: direction}})["m"]
    assert choice.layer == 1 and choice.sign == 1.0 and choice.signs[2] == -1.0
    assert choice.sst_auroc[2] > 0.5 and choice.sst_auroc[1] == 1.0


def test_null_directions_are_oriented_like_the_method():
    torch.manual_seed(1)
    labels = torch.tensor([1] * 30 + [0] * 30)
    null = null_directions(10, 6, seed=0)
    sst = torch.randn(1, 60, 6) + (labels.float() * 2 - 1)[None, :, None] * null[3]  # along null row 3
    signs = null_signs(null, sst, labels, layer=0)
    oriented = signs[3] * (sst[0] @ null[3])
    assert auroc(oriented, signed_labels(labels)) > 0.9
    assert orientation(-(sst[0] @ null[3]), labels) == -1.0


def test_g1_is_auroc_minus_the_null_quantile_and_its_bootstrap_is_paired():
    torch.manual_seed(2)
    labels = torch.tensor([1] * 25 + [0] * 25)
    projections = torch.randn(50) + labels.float()
    null = torch.randn(40, 50)
    expected = auroc(projections, signed_labels(labels)) - float(torch.quantile(torch.tensor(
        [auroc(row, signed_labels(labels)) for row in null], dtype=torch.float64), 0.975))
    counts = torch.ones(1, 50, dtype=torch.float64)
    quantile = PROTOCOL["null_quantile"]
    assert float(auroc_above_null_of_counts(projections, null, labels, quantile)(counts)[0]) == pytest.approx(expected)
    # the method's projection equal to every null row: 0 in every resample only if both terms share the resample
    same = projections.repeat(40, 1)
    with seeded(0):
        estimate = auroc_above_null_estimate(projections, same, labels, quantile, resamples=200)
    assert estimate.value == pytest.approx(0) and estimate.ci_low == pytest.approx(0)
    assert estimate.ci_high == pytest.approx(0) and estimate.n == 50 and estimate.unit == "items"


def test_g3_separation_difference_on_hand_made_data():
    labels = torch.tensor([1] * 20 + [0] * 20)
    sentiment = labels.float() + 0.01 * torch.arange(40)  # perfectly separated: separation 0.5
    reversed_control = -sentiment  # separation 0.5 too, opposite sign: |AUROC − 0.5| ignores it
    with seeded(0):
        equal = separation_difference((sentiment, labels), (reversed_control, labels), resamples=200)
        torch.manual_seed(3)
        chance = separation_difference((sentiment, labels), (torch.randn(40), labels), resamples=200)
    assert equal.value == pytest.approx(0) and equal.ci_low == pytest.approx(0) and equal.ci_high == pytest.approx(0)
    assert 0.2 < chance.value <= 0.5 and chance.ci_low > 0 and chance.n == 80


# G2's pairing ------------------------------------------------------------------------------------------

def _g2(null_items: int = 20, count: int = 50):
    torch.manual_seed(4)
    labels = torch.tensor([1, 0] * 10)
    scores = torch.randn(20) * 5  # items differ a lot: an unpaired CI would be wide
    signs = labels.float() * 2 - 1
    shifts = torch.linspace(-0.05, 0.05, count)
    ablated = {f"das:all:random{k}": torch.where(torch.arange(20) < null_items, scores - signs * shifts[k], torch.nan)
               for k in range(count)}
    ablated["das:all"] = scores - signs * 0.5  # margin 0.5 lower on every item
    return TransferAblations.from_scores("toy", labels, scores, ablated, {"das": 3}, random_count=count,
                                         null_quantile=PROTOCOL["null_quantile"], site="resid_pre", positions=("all",))


def test_g2_is_the_direction_drop_minus_the_nulls_quantile_paired_over_items():
    result = _g2()
    null_drops = torch.linspace(-0.05, 0.05, 50)
    quantile = float(torch.quantile(null_drops.double(), PROTOCOL["null_quantile"]))
    torch.testing.assert_close(result.null_drops("das", "all"), null_drops, atol=1e-5, rtol=0)
    assert result.null_quantile_drop("das", "all") == pytest.approx(quantile, abs=1e-5)
    estimate = result.ablation_margin_drop("das", "all")
    assert estimate.value == pytest.approx(0.5 - quantile, abs=1e-5)
    assert estimate.ci_high - estimate.ci_low < 1e-3  # paired: the items' large differences cancel
    assert estimate.method.startswith("paired difference, studentized") and estimate.n == 20
    assert result.mean_drop("das", "all") == pytest.approx(0.5, abs=1e-5)
    assert result.mean_drop("das", "all", random=True) == pytest.approx(0.0, abs=1e-5)


def test_g2_null_on_a_subsample_of_the_items():
    result = _g2(null_items=8)
    assert result.null_items.tolist() == [True] * 8 + [False] * 12
    estimate = result.ablation_margin_drop("das", "all")
    assert estimate.value == pytest.approx(0.5 - result.null_quantile_drop("das", "all"), abs=1e-5)
    # a resample (or, studentized, a jackknife within it) without any of the null's 8 items of 20 is undefined:
    # dropped and counted, rare
    assert estimate.undefined < 0.05 * estimate.resamples
    rows = null_rows(torch.tensor([1, 0] * 10 + [1] * 5), per_class=4, seed=0)
    assert len(rows) == 8 and rows.tolist() == sorted(rows.tolist())
    assert rows.tolist() == null_rows(torch.tensor([1, 0] * 10 + [1] * 5), per_class=4, seed=0).tolist()
    assert sorted(torch.tensor([1, 0] * 10 + [1] * 5)[rows].tolist()) == [0] * 4 + [1] * 4


# reading the residuals -----------------------------------------------------------------------------------

def test_item_residuals_read_the_last_token_and_the_token_mean(gpt2):
    texts = ["a fine film", "bad", "it was not good at all , sadly"]
    out = item_residuals(gpt2.bridge, texts, gpt2.prepend_bos, batch_size=2)
    assert out["last"].shape == (gpt2.n_layers + 1, 3, gpt2.bridge.cfg.d_model)
    for i, text in enumerate(texts):
        alone = residual_stream(gpt2.bridge, gpt2.bridge.to_tokens(text, prepend_bos=gpt2.prepend_bos))[:, 0]
        torch.testing.assert_close(out["last"][:, i], alone[:, -1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out["mean"][:, i], alone[:, int(gpt2.prepend_bos):].mean(1), atol=1e-4, rtol=1e-4)


# --transfer-data end to end ----------------------------------------------------------------------------

def test_transfer_data_bad_file_stops_the_session(bad_transfer_data_session):
    """A --transfer-data file with a label and no sentence on a line stops the session at its start, before
    any test is collected or run and before any model loads, with one message naming file and line (the blank
    line before it is skipped); no report is written."""
    session, bad = bad_transfer_data_session.result()
    assert session.result.returncode == pytest.ExitCode.USAGE_ERROR, session.output[-3000:]
    assert (f"ERROR: --transfer-data: {bad}:4: expected 'LABEL SENTENCE' with LABEL 0 (negative) or 1 (positive); "
            "got '1'") in session.output
    assert "collected" not in session.output and "passed" not in session.output, session.output[-3000:]
    assert not session.reports.exists()


def test_ablation_scores_in_length_chunks_equal_each_prompt_alone(gpt2):
    from harness.interventions.ablation import Ablation, real_positions, run_ablations
    from harness.measures.metrics import sentiment_score
    from harness.datasets.sst_prompts import CLASSIFICATION, scaffold_prompts
    from harness.experiments.transfer_ablation import ablation_scores

    sentences = ["good", "a very bad and boring film , sadly", "fine", "not great at all"]
    direction, random = torch.randn(gpt2.bridge.cfg.d_model), null_directions(3, gpt2.bridge.cfg.d_model, seed=0)
    # two methods at one layer share the null; the null runs on sentences 1 and 3 only, 2 ablations per forward
    scores = ablation_scores(gpt2.bridge, CLASSIFICATION, sentences, gpt2.prepend_bos,
                             {"m": (1, direction), "n": (1, -direction)}, random, [1, 3],
                             PROTOCOL["ablation_positions"], PROTOCOL["ablation_site"], chunk_size=2, group_size=2)
    assert set(scores) == {f"{m}:{where}{k}" for m in "mn" for where in ("all", "all_but_first")
                           for k in ("", ":random0", ":random1", ":random2")}
    answers = CLASSIFICATION.answer_ids(gpt2.tokenizer)
    for i, sentence in enumerate(sentences):
        alone = scaffold_prompts(gpt2.bridge, CLASSIFICATION, [sentence], [0], [0], gpt2.prepend_bos)
        mask = real_positions(alone.attention_mask, skip_first=True)
        logits = run_ablations(gpt2.bridge, alone.tokens, alone.attention_mask,
                               [Ablation("a", "direction", {1: direction / direction.norm()}, mask)] +
                               [Ablation(f"r{k}", "direction", {1: d / d.norm()}, mask) for k, d in enumerate(random)],
                               "resid_pre")
        assert float(scores["m:all_but_first"][i]) == pytest.approx(float(sentiment_score(logits["a"], answers)[0]),
                                                                    abs=1e-4)
        for k in range(3):
            null = scores[f"m:all_but_first:random{k}"][i]
            if i in (1, 3):
                assert float(null) == pytest.approx(float(sentiment_score(logits[f"r{k}"], answers)[0]), abs=1e-4)
                assert float(null) == float(scores[f"n:all_but_first:random{k}"][i])
            else:
                assert torch.isnan(null)


def test_a_label_with_no_sentence_is_refused_and_blank_lines_are_skipped(tmp_path):
    path = _write(tmp_path / "reviews.all", ["1 good", "", "0 bad", " "])
    assert read_dataset(path).sentences == ("good", "bad")
    with pytest.raises(TransferDataError, match=rf"{path}:3: expected 'LABEL SENTENCE' with LABEL 0 \(negative\) or 1 "
                                                r"\(positive\); got '1 '"):
        read_dataset(_write(path, ["1 good", "0 bad", "1 "]))
    with pytest.raises(TransferDataError, match=r"subjx\.all:2: .*LABEL 0 or 1 \(two classes\); got '0'"):
        read_dataset(_write(tmp_path / "subjx.all", ["1 plot", "0"]))


def test_the_session_start_hook_reads_every_dataset_and_refuses_a_bad_one(tmp_path):
    """``fixtures/transfer.py``'s ``pytest_sessionstart``: the datasets go to the stash (the claims are
    parametrized from it); a bad path or file is a usage error naming the option and what was wrong."""
    from types import SimpleNamespace

    from fixtures.settings import settings_key
    from fixtures.transfer import pytest_sessionstart, transfer_key

    def session(*paths):
        stash = pytest.Stash()
        stash[settings_key] = SimpleNamespace(transfer_data=tuple(paths))
        return SimpleNamespace(config=SimpleNamespace(stash=stash))

    good = session(_write(tmp_path / "reviews.all", ["1 good", "0 bad"]))
    pytest_sessionstart(good)
    assert list(good.config.stash[transfer_key]) == ["mpqa", "subj", "reviews"]
    with pytest.raises(pytest.UsageError, match=rf"^--transfer-data: {tmp_path}/bad\.all:1: expected 'LABEL SENTENCE'"):
        pytest_sessionstart(session(_write(tmp_path / "bad.all", ["1", "0 bad"])))
    with pytest.raises(pytest.UsageError, match=rf"^--transfer-data: {tmp_path / 'nowhere'} does not exist"):
        pytest_sessionstart(session(tmp_path / "nowhere"))
