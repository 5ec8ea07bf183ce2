"""Every claim of the paper the suite tests, declared once (types: ``harness.verdicts.declaration``).

A claim test names its declaration with ``@pytest.mark.claim("P1")``; the ``claim`` fixture decides
the verdict with the declared rule, and the report and the expectations read the same declaration.
Paper values and source tags follow ``docs/PAPER.md`` §0 ([3P] third-party reproduction, [NB:commit] the
authors' notebooks, [R:commit] the authors' repository, [REV] the reviewers, [REVIEW] an unverified
secondary review; a tag without a commit where none was recorded). A rule of kind "paper" cites the section
of docs/PAPER.md that gives its number; a floor the suite chose is "generic" (or "paper-qualitative", "suite
control") on every model, the paper's included (``tests/test_provenance.py``). Where a rule names the
paper's model (``paper_rule``), it applies on that model only; other models get the generic rule.

A claim's ``protocol`` (``harness.verdicts.protocols``) holds the numbers its experiment runs with,
fixed before measuring: the claim's fixture reads them and passes them to the experiment.

Each declaration has a ``kind`` (``Kind``: a paper claim unless it says otherwise; the preconditions P0 and
M1, the controls, the suite's transfer claims G1-G3 beyond the paper) and names the ``controls`` its rows rest
on: where a control does not replicate, those rows read "not interpretable" (``fixtures/claims.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from harness.verdicts.declaration import Case, Claim, Combine, Kind, PaperValue, Rule, ThresholdKind
from harness.models.paper import STEERING_MODEL, SUMMARIZATION_MODEL
from harness.verdicts.protocols import (
    CIRCUIT_PROTOCOL, D1_PROTOCOL, LAYER_CHOICE_PROTOCOL, MOOD_STORY_CIRCUIT_PROTOCOL, NATURAL_TEXT_PROTOCOL,
    SST_ABLATION_PROTOCOL, SST_PATCHING_PROTOCOL, STEERING_PROTOCOL, SUMMARIZATION_PROTOCOL, TOY_PATCHING_PROTOCOL,
    TRANSFER_PROTOCOL)

PAPER, QUALITATIVE = ThresholdKind.PAPER, ThresholdKind.PAPER_QUALITATIVE
GENERIC, CONTROL = ThresholdKind.GENERIC, ThresholdKind.SUITE_CONTROL
_SST_Q, _NULL_N = SST_ABLATION_PROTOCOL["null_quantile"], SST_ABLATION_PROTOCOL["random_ablations"]  # A1-A4's null


def _around(value: float, tolerance: float, origin: str) -> Rule:
    return Rule(tolerance, "abs_below", PAPER, origin, centre=value)


def _comma_ablation(claim_id: str, statement: str, statistic: str, *, accuracy: tuple[float, float, str],
                    ld_drop: tuple[float, float, str]) -> Claim:
    """A3/A4: a comma-only ablation, against the paper's pythia-2.8b numbers (value, tolerance, docs/PAPER.md
    §6.1 row) on that model; elsewhere a paired ratio against the all-positions ablation, net of random."""
    generic = Rule(0.25, "above", GENERIC, "the comma-only drop beyond the random null's mean comma-only drop is "
                                           ">= 25% of the all-positions DAS drop beyond the null's mean (paired ratio: "
                                           "a ratio of effects nets out the expected random effect, where an upper "
                                           "quantile in its denominator would inflate it)")
    paper = {metric: PaperValue(f"{value:g}%", "pythia-2.8b", "NB") for metric, (value, _, _) in
             (("accuracy", accuracy), ("ld_drop", ld_drop))}
    return Claim(
        claim_id, "§5.3, §6.1", statement,
        f"{statistic}; on pythia-2.8b the value itself (the paper's numbers), on other models the paired ratio "
        f"(comma-only drop − the mean comma-only drop of {_NULL_N} seeded random directions) / (all-positions DAS "
        "drop − their mean all-positions drop)",
        PaperValue(f"accuracy {accuracy[0]:g}%, Δ% LD {ld_drop[0]:g}%", "pythia-2.8b", "NB"), generic,
        preconditions=ABLATION_GATE, protocol=SST_ABLATION_PROTOCOL,
        cases={"accuracy": Case(paper=paper["accuracy"],
                                paper_rule=_around(accuracy[0], accuracy[1], f"docs/PAPER.md §6.1 {accuracy[2]} ± {accuracy[1]:g}")),
               "ld_drop": Case(paper=paper["ld_drop"],
                               paper_rule=_around(ld_drop[0], ld_drop[1], f"docs/PAPER.md §6.1 {ld_drop[2]} ± {ld_drop[1]:g}"))},
        combine=_EACH_CASE, controls=("A2",),
    )


# D: the methods find one direction (§4, §6.3) ------------------------------------------------------
_D1_RULE = Rule(0.75, "above", GENERIC, "docs/PAPER.md §6.3: gpt2-small's layer-0 pairs are 0.82–1.00")
_D1_KM = Rule(0.95, "above", GENERIC, "docs/PAPER.md §6.3: K-means vs mean difference 1.00 on gpt2-small")
_GPT2_L0 = {  # third-party reading of the paper's layer-0 |cos| figure on gpt2-small [3P]
    "mean_diff-kmeans": 1.00, "mean_diff-probe": 0.99, "mean_diff-pca": 0.94, "mean_diff-das": 0.87,
    "probe-pca": 0.88, "probe-das": 0.86, "pca-das": 0.82,
}
_D1_RANDOM = Rule(0.15, "below", CONTROL, "the paper's random control is <= 0.06 at gpt2-small layer 0 [3P]")
_P_FLIP = Rule(90.0, "above", GENERIC, "the paper's table: DAS 100% flip on pythia-1.4b [3P]")
_RANDOM_LD = Rule(5.0, "abs_below", CONTROL, "the paper's random direction ≈ 3% on gpt2-small [3P]")

_SST_LAYER_CHOICE = {**SST_PATCHING_PROTOCOL, **LAYER_CHOICE_PROTOCOL}
_TOY_LAYER_CHOICE = {**TOY_PATCHING_PROTOCOL, **LAYER_CHOICE_PROTOCOL}  # P2 and P2.random (one family: one protocol)
_RANDOM_NULL = (f"the {TOY_PATCHING_PROTOCOL['null_quantile']:.0%} quantile (the median) over "
                f"{TOY_PATCHING_PROTOCOL['null_directions']} seeded random directions of each one's largest |% LD "
                f"recovered| over the DAS layers at relative depth >= {TOY_PATCHING_PROTOCOL['null_min_depth']:g} (a "
                "declared grid, for the time budget: the protocol), the maxima and the quantile redone on resampled "
                "pairs and directions (two-way percentile bootstrap)")  # P2.random, P5.random: the null (issue 25, item 4)
_TAIL, _SPARSE = NATURAL_TEXT_PROTOCOL["tail_quantile"], CIRCUIT_PROTOCOL["sparse_fraction"]
_DISTANCE, _NULL_Q = SUMMARIZATION_PROTOCOL["distance_filler"], TRANSFER_PROTOCOL["null_quantile"]
# how each claim's rows make its one claim-level verdict (``Combine``; harness.verdicts.claim_level)
_ONE_ROW = Combine("every", reason="one row: it decides")
_EACH_CASE = Combine("every", reason="the paper reports each case: the claim holds where each does")
_EACH_METHOD = Combine("every", reason="the methods find one direction (§4, §6.3): what the claim says of the "
                                       "direction holds for each method's")
_PAPER_PROMPT = Combine("row", "paper_prompt", reason="the paper's prompt decides; the mirror prompt is the suite's")
ABLATION_GATE = (f"the model classifies the prompts it is ablated on: each class's mean clean LD on the zero-shot set "
                 f">= {SST_ABLATION_PROTOCOL['min_class_logit_diff']:g} (the protocol's gate)")
_FLUENT = ("steering keeps the text fluent at a nonzero coefficient: the fluent range (the protocol's fluency "
           "control) holds more than coefficient 0")
_PAPER_SETUP = Combine("every", "all", reason="the paper ablates at every position (BOS included); the "
                                              "all-but-first rows are the suite's check, shown, not combined")

# R: natural text (§5.4): the paper's cosine reading, and its robust reading (issue 26, item 5) -------------
_R1 = Claim(
    "R1", "§5.4", "The direction's tails on natural text hold sentiment tokens",
    f"tail score: {_TAIL:.1%}/{1 - _TAIL:.1%} tails, share of each tail's majority non-neutral label, averaged "
    "(CI: word types resampled), on SST-2 sentences where the paper reads OpenWebText (a deviation: the protocol)",
    PaperValue("unknown (GPT-4 labels on OWT; no checked number, docs/PAPER.md §6.5)", "gpt2-small", "REVIEW"),
    Rule(0.7, "above", GENERIC, "the suite's floor"), protocol=NATURAL_TEXT_PROTOCOL, combine=_EACH_METHOD,
    controls=("R1.isotropy",))
_R1_AUROC = Claim(
    "R1.auroc", "§5.4", "The projection separates positive from negative tokens",
    "AUROC of the projection, lexicon-positive vs lexicon-negative tokens, minus the larger of "
    f"{NATURAL_TEXT_PROTOCOL['auroc_floor']:g} and the {NATURAL_TEXT_PROTOCOL['null_quantile']:.1%} quantile of "
    f"the AUROCs of {NATURAL_TEXT_PROTOCOL['null_directions']} seeded random directions (unoriented, as the "
    "paper's random baseline), both recomputed in every resample of the labelled word types (paired)",
    PaperValue("unknown (docs/PAPER.md §6.5)", "gpt2-small"),
    Rule(0.0, "above", GENERIC, f"beats both the suite's floor {NATURAL_TEXT_PROTOCOL['auroc_floor']:g} and chance "
                                f"(the random directions' {NATURAL_TEXT_PROTOCOL['null_quantile']:.1%} quantile)",
         strict=True),
    protocol=NATURAL_TEXT_PROTOCOL, combine=_EACH_METHOD, controls=("R1.isotropy",))


def _standardized(claim: Claim, claim_id: str) -> Claim:
    """An R1 claim read robustly (the protocol's robust_reading), without the isotropy control."""
    return dataclasses.replace(
        claim, id=claim_id, statement=claim.statement + " (standardized reading)",
        statistic=claim.statistic + "; every token standardized coordinate by coordinate and read as cos(z, d) "
                                    "(the protocol's robust_reading), the null read the same way",
        paper=PaperValue("not in the paper: the claim read robustly to outlier dimensions (issue 26, item 5)"),
        kind=Kind.ROBUST, controls=())


CLAIMS: dict[str, Claim] = {claim.id: claim for claim in (
    Claim(
        "D1", "§6.3", "The five methods find the same direction",
        "|cos| between two methods' directions (layer 0 and DAS's best patching layer)",
        PaperValue(">= 0.82 for every pair at layer 0", "gpt2-small", "3P"), _D1_RULE,
        protocol=D1_PROTOCOL,
        cases={
            pair: Case(
                paper=PaperValue(f"{value:.2f} at layer 0", "gpt2-small", "3P"),
                rule=_D1_KM if pair == "mean_diff-kmeans" else None,
            ) for pair, value in _GPT2_L0.items()
        },
        combine=Combine("every", "layer0", reason="the paper's figure: every pair agrees at layer 0; the "
                                                  "best-layer rows are shown, not combined"),
        controls=("D1.random",),
    ),
    Claim(
        "D1.random", "§6.3", "A random direction is orthogonal to every method's",
        "the largest |cos(random, method)| over the five methods, at layer 0 and DAS's best patching layer",
        PaperValue("<= 0.06 at layer 0", "gpt2-small", "3P"), _D1_RANDOM, protocol=D1_PROTOCOL, combine=_ONE_ROW,
        kind=Kind.CONTROL,
    ),
    Claim(
        "D2", "§4", "Each direction classifies held-out adjectives by projection",
        "held-out test-adjective accuracy by projection (threshold halfway between train class means), at the "
        "layer of largest mean label-signed margin (projection − threshold, over its std) on the other half of the "
        "test prompts (2-fold cross-fitting)",
        PaperValue("directions classify sentiment"), Rule(0.9, "above", GENERIC, "the suite's floor for 'classifies'"),
        protocol=LAYER_CHOICE_PROTOCOL, combine=_EACH_METHOD,
    ),
    Claim(
        "D3", "§4", "The suite's DAS agrees with the authors' released gpt2-small directions",
        "|cos(suite DAS, released DAS)| at mid layers 4-8",
        PaperValue("released directions (authors' data/gpt2-small)", "gpt2-small", "R"),
        Rule(0.7, "above", GENERIC, "the suite's agreement floor for the authors' own directions"),
        combine=Combine("every", reason="the released directions agree at every mid layer 4-8"), kind=Kind.CONTROL,
    ),
    # P: directional patching (§5.2, §6.2) ----------------------------------------------------------
    Claim(
        "P1", "§6.2", "Patching the DAS direction flips ToyMovieReview sentiment",
        "DAS directional patching at the layer chosen on the other half of the ToyMovieReview test pairs (2-fold "
        "cross-fitting)",
        PaperValue("100% flip, 109.8% LD", "pythia-1.4b", "3P"), _P_FLIP, unit="%",
        cases={"logit_flip": Case(paper=PaperValue("100%", "pythia-1.4b", "3P")),
               "ld_recovered": Case(paper=PaperValue("109.8%", "pythia-1.4b", "3P"))},
        protocol=LAYER_CHOICE_PROTOCOL, combine=_EACH_CASE, controls=("P2.random",),
    ),
    Claim(
        "P2", "§6.2", "The other methods' directions flip it too",
        "% logit flip at the layer chosen (by % LD recovered) on the other half of the ToyMovieReview test pairs "
        "(cross-fitted)",
        PaperValue(">= 90%", "pythia-1.4b", "3P"), _P_FLIP, unit="%",
        protocol=_TOY_LAYER_CHOICE, combine=_EACH_METHOD, controls=("P2.random",),
    ),
    Claim(
        "P2.random", "§6.2", "A random direction recovers nothing",
        f"{_RANDOM_NULL}, ToyMovieReview test pairs",
        PaperValue("≈ 0 (random ≈ 3%)", "gpt2-small", "3P"), _RANDOM_LD, unit="%", protocol=_TOY_LAYER_CHOICE,
        combine=_ONE_ROW, kind=Kind.CONTROL,
    ),
    Claim(
        "P3", "§6.2", "Toy-fitted DAS patched onto SST pairs moves their sentiment",
        "DAS patched onto SST pairs at the layer chosen on the other half of the pairs (cross-fitted)",
        PaperValue("47.0% LD, 53.5% flip", "pythia-1.4b", "3P"),
        Rule(20.0, "above", GENERIC, "at least a fifth (the random direction: P5.random)"), unit="%",
        preconditions="the model classifies SST (P0.classification replicates)", protocol=_SST_LAYER_CHOICE,
        cases={"ld_recovered": Case(paper=PaperValue("47.0%", "pythia-1.4b", "3P"),
                                    paper_rule=_around(47.0, 15.0, "docs/PAPER.md §6.2 P3 ± 15 points")),
               "logit_flip": Case(paper=PaperValue("53.5%", "pythia-1.4b", "3P"),
                                  paper_rule=_around(53.5, 15.0, "docs/PAPER.md §6.2 P4 ± 15 points"))}, combine=_EACH_CASE,
        controls=("P5.random",),
    ),
    Claim(
        "P4", "§6.2 (P7)", "The best SST patching layer is intermediate",
        "relative depth (layer / n_layers) of the method's best SST patching layer of the declared grid (% LD "
        "recovered); CI from "
        "redoing the choice in every bootstrap resample of the pairs",
        PaperValue("intermediate layers", "gpt2-small, pythia-160m/410m/1.4b", "R"),
        Rule(0.35, "abs_below", QUALITATIVE, "strictly inside the first and last 15% of the depth", strict=True,
             centre=0.5),
        preconditions="the model classifies SST (P0.classification replicates)", protocol=_SST_LAYER_CHOICE,
        combine=_EACH_METHOD, controls=("P5.random",),
    ),
    Claim(
        "P5", "§6.2", "DAS recovers at least as much as the other methods on SST",
        "DAS minus the method, % LD recovered on the same SST pairs, each at its cross-fitted layer among the "
        "layers DAS was fitted at (paired bootstrap)",
        PaperValue("> 0: the other methods are weaker than DAS on SST", "pythia-1.4b", "3P"),
        Rule(0.0, "above", QUALITATIVE, "DAS recovers more (the paper's ordering)", strict=True), unit=" points",
        preconditions="the model classifies SST (P0.classification replicates)", protocol=_SST_LAYER_CHOICE,
        combine=Combine("every", reason="the paper's ordering: DAS recovers more than each other method"),
        controls=("P5.random",),
    ),
    Claim(
        "P5.random", "§6.2", "A random direction recovers nothing on SST",
        f"{_RANDOM_NULL}, SST pairs",
        PaperValue("≈ 0 (random ≈ 3%)", "gpt2-small", "3P"), _RANDOM_LD, unit="%",
        preconditions="the model classifies SST (P0.classification replicates)", protocol=_SST_LAYER_CHOICE,
        combine=_ONE_ROW, kind=Kind.CONTROL,
    ),
    Claim(
        "P0", "§2.3, §5.1", "The model classifies SST reviews (the precondition of P3–P5 and A1–A5)",
        "centred accuracy (§5.1) of the answer logit difference over every sentence of the evaluation split",
        PaperValue("the paper's models classify SST; its claims filter to correctly classified reviews"),
        Rule(70.0, "above", GENERIC, "the suite's competence floor, fixed before measuring"), unit="%",
        cases={"classification": Case(paper=PaperValue("CLASSIFICATION scaffold (P3–P5)")),
               "zero_shot": Case(paper=PaperValue("zero-shot scaffold (A1–A5)"))},
        combine=Combine("every", reason="each scaffold is the precondition of its own claims (P3-P5, A1-A5)"),
        kind=Kind.PRECONDITION,
    ),
    # A: ablations on SST (§5.3, §6.1) --------------------------------------------------------------
    Claim(
        "A1", "§5.3, §6.1", "Ablating the DAS direction everywhere hurts SST classification",
        f"drop when the DAS direction is ablated at all positions and layers minus the {_SST_Q:.1%} quantile of the "
        f"drops of {_NULL_N} seeded random directions ablated the same way, on the same zero-shot SST prompts (paired: "
        "both recomputed in every resample): accuracy lost (points) and Δ% LD (points)",
        PaperValue("accuracy 62%, Δ% LD 71% (random: Δ% LD −0.3 to +0.2)", "pythia-2.8b", "NB"),
        Rule(None, "above", GENERIC, "see the cases"), unit=" points",
        cases={"accuracy": Case(paper=PaperValue("62% (38 points below the random ablation's ≈ 100%)", "pythia-2.8b", "NB"),
                                rule=Rule(15.0, "above", GENERIC, "DAS costs >= 15 accuracy points more than the "
                                                                  "random null's upper quantile"),
                                paper_rule=_around(38.0, 6.0, "docs/PAPER.md §6.1 (100 − 62) ± 6")),
               "ld_drop": Case(paper=PaperValue("71% (random ≈ 0%)", "pythia-2.8b", "NB"),
                               rule=Rule(30.0, "above", GENERIC, "DAS lowers Δ% LD >= 30 points more than the "
                                                                 "random null's upper quantile"),
                               paper_rule=_around(71.0, 8.0, "docs/PAPER.md §6.1 ± 8"))},
        preconditions=ABLATION_GATE, protocol=SST_ABLATION_PROTOCOL,
        combine=_PAPER_SETUP, controls=("A2",),
    ),
    Claim(
        "A2", "§5.3, §6.1", "Ablating a random direction the same way does little",
        f"the median of |Δ% LD| over {_NULL_N} seeded random directions each ablated like A1 (what a random "
        "direction does), CI the two-way percentile bootstrap of prompts and directions",
        PaperValue("−0.3% to +0.2% (balanced sets)", "pythia-2.8b", "NB"),
        Rule(2.0, "abs_below", CONTROL, "the paper's random ablations stay within ±0.3%", strict=True), unit="%",
        preconditions=ABLATION_GATE, protocol=SST_ABLATION_PROTOCOL,
        combine=_PAPER_SETUP, kind=Kind.CONTROL,
    ),
    _comma_ablation("A3", "Ablating the direction at commas alone hurts SST classification",
                    "DAS direction ablated at comma positions only",
                    accuracy=(82.0, 6.0, "C4"), ld_drop=(17.5, 5.0, "C5")),
    _comma_ablation("A4", "Mean-ablating the residual at commas hurts SST classification",
                    "whole residual mean-ablated at comma positions, every layer",
                    accuracy=(81.0, 5.0, "C7"), ld_drop=(17.0, 5.0, "C7")),
    Claim(
        "A5", "§5.3, §6.1", "Freezing attention removes most of the comma effect",
        "comma-only Δ% LD with attention frozen / unfrozen",
        PaperValue("−3.5% frozen vs −17% unfrozen (about a fifth)", "pythia-2.8b", "NB"),
        Rule(0.40, "below", QUALITATIVE, "at most 40% of the unfrozen effect"),
        preconditions=ABLATION_GATE + ", and the unfrozen comma-only drop's 95% CI lies above 0",
        protocol=SST_ABLATION_PROTOCOL, combine=_ONE_ROW,
    ),
    # M: the summarization motif (§2.2, §5.7, §6.4) -------------------------------------------------
    Claim(
        "M1", "§2.2", "The model solves ToyMoodStory",
        "ToyMoodStory accuracy (centred, §5.1) over the four variants",
        PaperValue("solved by pythia-2.8b; smaller models failed", SUMMARIZATION_MODEL, "R"),
        Rule(90.0, "above", GENERIC, "the suite's floor for 'solves'"), unit="%", combine=_ONE_ROW,
        kind=Kind.PRECONDITION,
    ),
    Claim(
        "M2", "§5.7", "Resampling pre-comma phrases or commas lowers the logit difference",
        "% change of the mean LD, values resampled in the summary band, attention frozen",
        PaperValue("−38.0% pre-comma, −36.0% comma+period", SUMMARIZATION_MODEL, "NB:57e740d"),
        Rule(-10.0, "below", GENERIC, "a drop of at least 10%"), unit="%",
        cases={"precomma": Case(paper=PaperValue("−38.0% (layers 9-14)", SUMMARIZATION_MODEL, "NB:57e740d"),
                                paper_rule=_around(-38.0, 10.0, "docs/PAPER.md §6.4, the notebook's value ± 10")),
               "comma_period": Case(paper=PaperValue("−36.0% (layers 9-14)", SUMMARIZATION_MODEL, "NB:57e740d"),
                                    paper_rule=_around(-36.0, 10.0, "docs/PAPER.md §6.4, the notebook's value "
                                                                    "(the review's −37% is secondary) ± 10")),
               "whole_phrase": Case(paper=PaperValue("−75%", SUMMARIZATION_MODEL, "REVIEW"),
                                    paper_rule=_around(-75.0, 15.0, "docs/PAPER.md §6.4, the review's value ± 15"))},
        preconditions="the model solves ToyMoodStory (M1 replicates)", combine=_EACH_CASE,
    ),
    Claim(
        "M2.ratio", "§5.7", "The comma effect is comparable to the pre-comma effect",
        "comma+period effect / pre-comma effect (pre-comma effect < 0 required)",
        PaperValue("0.95 = −36.0/−38.0", SUMMARIZATION_MODEL, "NB:57e740d"),
        Rule(0.5, "above", GENERIC, "at least half"),
        preconditions="M1 replicates and the pre-comma effect's 95% CI lies below 0", combine=_ONE_ROW,
    ),
    Claim(
        "M3", "§6.4", "The comma's share of the effect grows with distance",
        "Spearman ρ(filler length, comma / (comma + pre-comma) effect)",
        PaperValue("grows with distance", SUMMARIZATION_MODEL, "REV"),
        Rule(0.0, "above", QUALITATIVE, "a positive rank correlation", strict=True),
        preconditions="M1 replicates", protocol=SUMMARIZATION_PROTOCOL, combine=_ONE_ROW,
    ),
    Claim(
        "M3.distance", "§6.4", f"At {_DISTANCE} filler tokens the comma effect exceeds the pre-comma effect",
        f"comma effect / pre-comma effect − 1, {_DISTANCE} filler tokens (pre-comma effect < 0 required)",
        PaperValue("+15%", SUMMARIZATION_MODEL, "REVIEW"),
        Rule(0.0, "above", QUALITATIVE, "the comma effect larger", strict=True), unit="%",
        preconditions=f"M1 replicates and the pre-comma effect at {_DISTANCE} filler tokens has its 95% CI below 0",
        protocol=SUMMARIZATION_PROTOCOL, combine=_ONE_ROW,
    ),
    Claim(
        "M4", "§6.4", "Non-valenced positions carry sentiment on ToyMovieReview",
        "non-valenced / valenced value-resampling effect in the summary band (valenced effect < 0 required)",
        PaperValue("comma, period and second ' movie' carry sentiment (circuit)", "gpt2-small", "R"),
        Rule(0.2, "above", GENERIC, "at least a fifth of the valenced effect"),
        preconditions="the valenced positions' effect has its 95% CI below 0", combine=_ONE_ROW,
    ),
    # K: the circuit (§6.4) -------------------------------------------------------------------------
    Claim(
        "K1", "§6.4", "A sparse set of heads carries the ToyMovieReview circuit",
        f"share of summed |path effect| on the test pairs carried by the top {_SPARSE:.0%} of heads ranked on the "
        "train pairs",
        PaperValue("a sparse circuit of ~10 heads", "gpt2-small", "R"),
        Rule(0.5, "above", GENERIC, f"the top {_SPARSE:.0%} of heads carry at least half"), protocol=CIRCUIT_PROTOCOL,
        combine=_ONE_ROW,
    ),
    Claim(
        "K1.paper_heads", "§6.4", "The paper's circuit heads are among the top heads",
        "the paper's 8 circuit heads that read sentiment into the final position (7.1, 7.5, 8.5, 9.2, 9.10, "
        f"10.1, 10.4, 11.9) found among the top {CIRCUIT_PROTOCOL['top_heads']} by |path effect| on the final "
        "residual; the direction-"
        "patching list's 0.4 and 6.4 act through later heads, so a direct-path ranking is not their test",
        PaperValue("7.1, 7.5, 8.5, 9.2, 9.10, 10.1, 10.4, 11.9 (of the 10-head list 0.4, 6.4, …)", "gpt2-small",
                   "R:6da9576"),
        Rule(6.0, "above", GENERIC, "the suite's floor: at least 6 of the 8"), protocol=CIRCUIT_PROTOCOL,
        combine=_ONE_ROW,
    ),
    Claim(
        "K2", "§6.4", "Patching the circuit's heads recovers the logit difference",
        "circuit heads (found on the train pairs) patched clean → corrupted on the test pairs, % LD recovered",
        PaperValue("75% LD, 97% flip", "gpt2-small", "REVIEW"),
        Rule(50.0, "above", GENERIC, "at least half"), unit="%", protocol=CIRCUIT_PROTOCOL, combine=_ONE_ROW,
    ),
    Claim(
        "K2.direction", "§6.4", "Most of the circuit's effect runs along the direction",
        "direction-only circuit patch / full circuit patch (% LD recovered, test pairs; paired bootstrap), the "
        "direction from DAS layers that trained",
        PaperValue("54.8% LD, 58% flip vs 75% / 97% full", "gpt2-small", "REVIEW"),
        Rule(0.4, "above", GENERIC, "at least 40% of the full patch"),
        preconditions="DAS trained (early stopping below its initial loss) at a layer the circuit's heads write into",
        protocol=CIRCUIT_PROTOCOL, combine=_ONE_ROW,
    ),
    Claim(
        "K3", "§6.4", "The summary token's residual alone carries sentiment",
        "residual at SBJ2 alone patched clean → corrupted, % LD recovered at the mid layer chosen on the other "
        "half of the test pairs (cross-fitted)",
        PaperValue("summary heads read SBJ2; no number", "gpt2-small", "R"),
        Rule(20.0, "above", GENERIC, "at least a fifth"), unit="%", protocol={**CIRCUIT_PROTOCOL, **LAYER_CHOICE_PROTOCOL},
        combine=_ONE_ROW,
    ),
    Claim(
        "K4", "§6.4", "The paper's ToyMoodStory circuit heads are among the top heads",
        f"how many of the paper's {len(MOOD_STORY_CIRCUIT_PROTOCOL['paper_heads'])} ToyMoodStory heads are among "
        f"the top {MOOD_STORY_CIRCUIT_PROTOCOL['top_heads']} by |path effect| on the final residual (ToyMoodStory "
        "pairs; CI: name pairs resampled, the ranking redone)",
        PaperValue(", ".join(MOOD_STORY_CIRCUIT_PROTOCOL["paper_heads"]), SUMMARIZATION_MODEL, "R"),
        Rule(6.0, "above", GENERIC, "the suite's floor: at least half of them"),
        preconditions=f"the heads are {SUMMARIZATION_MODEL}'s (needs {SUMMARIZATION_MODEL}), and M1 replicates",
        protocol=MOOD_STORY_CIRCUIT_PROTOCOL, combine=_ONE_ROW,
    ),
    # R, S, N: natural text, steering, negation (§5.4–§5.6) ------------------------------------------
    _R1, _R1_AUROC,
    Claim(
        "R1.isotropy", "§5.4", "No residual coordinate dominates the tokens R1 reads",
        "the mean over the corpus's tokens of the largest-mean-square coordinate's share of the token's squared "
        "residual norm at R1's layer (CI: word types resampled)",
        PaperValue("not in the paper: a control of the cosine reading (issue 26, item 5)"),
        Rule(NATURAL_TEXT_PROTOCOL["max_top_coordinate_share"], "below", CONTROL,
             "beyond it one coordinate sets every token's cosine (the protocol's isotropy)"),
        protocol=NATURAL_TEXT_PROTOCOL, combine=_ONE_ROW, kind=Kind.CONTROL,
    ),
    _standardized(_R1, "R1.standardized"), _standardized(_R1_AUROC, "R1.auroc.standardized"),
    Claim(
        "S1", "§5.5", "The steered sentiment share rises with the coefficient",
        "Spearman ρ over the samples of the fluent range (the protocol's fluency control) between |coef| and the "
        "sample having the steered-to label (CI: samples resampled within each coefficient)",
        PaperValue("the negative share rises with |coef| (figure; no numbers)", STEERING_MODEL, "R"),
        Rule(0.0, "above", QUALITATIVE, "rises: ρ > 0", strict=True),
        cases={"mirror": Case(paper=PaperValue("not in the paper (the suite's mirror of its experiment)"))},
        protocol=STEERING_PROTOCOL, combine=_PAPER_PROMPT, preconditions=_FLUENT,
        controls=("S1.unsteered",),
    ),
    Claim(
        "S1.strongest", "§5.5", "The strongest coefficient steers most samples",
        "the steered-to label's share at the strongest coefficient of the fluent range (the protocol's fluency "
        "control)",
        PaperValue("the negative share rises with |coef| (figure; no numbers)", STEERING_MODEL, "R"),
        Rule(50.0, "above", QUALITATIVE, "a majority", strict=True), unit="%",
        cases={"mirror": Case(paper=PaperValue("not in the paper (the suite's mirror of its experiment)"))},
        protocol=STEERING_PROTOCOL, combine=_PAPER_PROMPT, preconditions=_FLUENT,
        controls=("S1.unsteered",),
    ),
    Claim(
        "S1.unsteered", "§5.5", "Without steering few samples have the steered-to sentiment",
        "the steered-to label's share at coefficient 0",
        PaperValue("the negative share rises with |coef| (figure; no numbers)", STEERING_MODEL, "R"),
        Rule(20.0, "below", CONTROL, "a low baseline"), unit="%",
        cases={"mirror": Case(paper=PaperValue("not in the paper (the suite's mirror of its experiment)"))},
        protocol=STEERING_PROTOCOL, combine=_PAPER_PROMPT, kind=Kind.CONTROL,
    ),
    Claim(
        "N1", "§5.6", "Negation flips the negated word's projection between early and late layers",
        "movement of the tracked word's projection toward the opposite sign, negated sentence minus the same "
        "sentence without the negation (paired mean over sentences; flip_percent in the details)",
        PaperValue("unknown (layers 1 → 10; docs/PAPER.md §6.5)", "gpt2-small"),
        Rule(0.0, "above", GENERIC, "negated words move more than the same words without negation", strict=True),
        combine=Combine("any", reason="a claim about the model (negation flips its sentiment representation, "
                                      "§5.6; no per-method values): one method's direction showing it, Holm "
                                      "across the five, shows it"),
    ),
    # G: transfer to other sentiment data, and specificity (suite-added; after §5.2, §6.2) ----------------
    Claim(
        "G1", "§6.2 (transfer)", "The ToyMovieReview direction separates sentiment on other datasets",
        "AUROC (positive vs negative items) of the cosine projection of the last token's residual onto the "
        f"method's direction, at the layer and sign chosen on a balanced SST held-out sample, minus the "
        f"{_NULL_Q:.1%} quantile of the AUROCs of {TRANSFER_PROTOCOL['null_directions']} seeded random directions at "
        "that layer, each oriented on the same SST "
        "sample (both recomputed in every bootstrap resample of the items: paired)",
        PaperValue("not in the paper: it tests the toy-fitted directions on SST only (§5.2, §6.2)"),
        Rule(0.0, "above", GENERIC, f"beats chance: above the oriented random directions' {_NULL_Q:.1%} quantile",
             strict=True),
        protocol=TRANSFER_PROTOCOL,
        combine=Combine("every", reason="the direction the methods share (D1) transfers: each method's, on "
                                        "every dataset; with any, one method's direction would carry the claim"),
        kind=Kind.BEYOND,
    ),
    Claim(
        "G2", "§5.3 (transfer)", "Ablating the direction hurts the classification of other sentiment data",
        "the mean over items of the correctness-margin drop (positive − negative answer logit, signed by the label, "
        "SST CLASSIFICATION scaffold) when the method's direction is projected out at its SST-chosen layer, minus "
        f"the {_NULL_Q:.1%} quantile of the mean drops of {TRANSFER_PROTOCOL['random_ablations']} seeded random "
        "directions projected out the same way (on the protocol's subsample of the items), both recomputed in every "
        "resample of the items (paired; studentized CI); at every position, or every position but the first (BOS)",
        PaperValue("not in the paper: its ablations (§5.3) are on SST, DAS at every layer"),
        Rule(0.0, "above", GENERIC, f"the direction's ablation costs more margin than the random null's {_NULL_Q:.1%} "
             "quantile", strict=True),
        preconditions="the model classifies the dataset's sample in the SST CLASSIFICATION scaffold (P0's "
                      "classification rule on those items)",
        protocol=TRANSFER_PROTOCOL,
        combine=Combine("every", reason="each ablated direction, with or without BOS, costs more than random ones"),
        kind=Kind.BEYOND,
    ),
    Claim(
        "G3", "§6.2 (specificity)", "The direction separates sentiment more than a distinction without sentiment",
        "separation |AUROC − 0.5| of positive vs negative items of the sentiment dataset minus that of the "
        "specificity control's two classes (subjective vs objective sentences), last-token projection at the "
        "method's SST-chosen layer (each dataset's items resampled independently)",
        PaperValue("not in the paper (a control the suite adds: is the direction about sentiment at all?)"),
        Rule(0.0, "above", GENERIC, "sentiment is separated more than the control distinction", strict=True),
        protocol=TRANSFER_PROTOCOL, combine=_EACH_METHOD, kind=Kind.BEYOND,
    ),
)}


def declared(claim_id: str) -> Claim:
    """The declaration of ``claim_id``; an unknown id names the declared ones."""
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"no claim {claim_id!r} is declared in harness/verdicts/declared.py; "
                       f"declared: {', '.join(CLAIMS)}") from None


def kind_of(claim_id: str) -> str:
    """A claim's declared kind (``Kind``); one the current declarations do not know counts as a paper claim
    (a results file written under other declarations)."""
    return CLAIMS[claim_id].kind.value if claim_id in CLAIMS else Kind.PAPER.value


def declarations_sha256() -> str:
    """A digest of every declaration (statement, statistic, rules, thresholds, cases, protocol): results
    decided under the same digest can be compared side by side (``harness.reporting.matrix``)."""
    text = json.dumps([dataclasses.asdict(claim) for claim in CLAIMS.values()], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
