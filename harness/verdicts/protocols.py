"""The protocols of the declared claims: the numbers their experiments run with, fixed before measuring.

A claim's ``protocol`` (``harness.verdicts.declared``) is one of these: its numbers (sample sizes, seeds
of the data, quantiles, floors, counts of random directions, grids) are read by the claim's fixture and
passed to the experiment, which defines none (``tests/test_declarations.py``); its prose is generated
from the numbers.
"""

from __future__ import annotations

from harness.datasets.transfer import SPECIFICITY_PREFIX

def _protocol(numbers: dict, **prose: str) -> dict:
    """A claim's protocol: its numbers (read by the fixtures, which pass them to the experiments) and its
    prose, every ``{name}`` of which is filled from the numbers (a tuple of names as "a and b"), so that
    the two cannot disagree."""
    if set(numbers) & set(prose):
        raise ValueError(f"a protocol's prose may not replace its numbers: {sorted(set(numbers) & set(prose))}")
    words = {key: " and ".join(value) if isinstance(value, tuple) and all(isinstance(v, str) for v in value) else value
             for key, value in numbers.items()}
    return {**numbers, **{key: text.format(**words) for key, text in prose.items()}}


STEERING_PROTOCOL = _protocol(  # fixed before measuring (issue "Verdicts", item 7; fluency: issue 26, item 6)
    {"coefficient_fractions": (0.0, 0.25, 0.5, 0.75, 1.0), "samples_per_coefficient": 50,
     "fluency_quantile": 0.95, "min_fluent_share": 0.75, "selection_samples_per_coefficient": 20,
     "selection_seed_offset": 1000},
    hook="the early layer's resid_pre (the paper's blocks.0.hook_resid_post on gpt2-small)",
    scale="median residual norm at the hook over the prompt's tokens, BOS left out (on gpt2-small: the paper's "
          "integer grid 0 to -20)",
    why="the grid spans edits from none to as large as the residual itself; the strongest edit equals the typical "
        "residual norm, beyond which the direction would dominate the stream",
    fluency="the control (harness.experiments.steering_fluency): a sample is fluent when its continuation's mean "
            "NLL per token under the unsteered model (the continuation alone, from BOS: no penalty for disagreeing "
            "with the prompt) is at most the {fluency_quantile} quantile of the unsteered samples' NLLs (both "
            "prompts pooled); a run's fluent range runs from coefficient 0 up to the first coefficient with fewer "
            "than {min_fluent_share} of its samples fluent; the threshold and the range come from a separate draw of "
            "{selection_samples_per_coefficient} samples per coefficient (sampling seed: the main draw's + "
            "{selection_seed_offset}), and S1 and S1.strongest read the main draw on that range (a selection made on "
            "other data), since text turned to noise reads neutral to the lexicon (issue 26: the share rose, then "
            "fell, over the grid)",
)

TRANSFER_PROTOCOL = _protocol(  # G1-G3, fixed before measuring (fixtures/transfer.py passes the numbers)
    {"per_class": 150, "sample_seed": 0, "null_directions": 100, "null_quantile": 0.975, "random_ablations": 50,
     "null_items_per_class": 40, "ablation_methods": ("das", "mean_diff"),
     "ablation_positions": ("all", "all_but_first"), "ablation_site": "resid_pre"},
    samples="a seeded (seed {sample_seed}) balanced sample of {per_class} items per class of every dataset and of "
            "the SST held-out split (all of a smaller class)",
    layer_choice="per method, the layer (among its layers) of highest AUROC of the oriented last-token projection "
                 "on the SST sample; the sign of every layer's direction fixed on that sample; never the target data",
    null="{null_directions} seeded Gaussian directions at the chosen layer, each oriented on the SST sample; "
         "quantile {null_quantile}",
    ablation="directional ablation at the chosen layer, at the boundary read ({ablation_site}); methods "
             "{ablation_methods}; G2's null: {random_ablations} random directions (the null's first), each ablated "
             "exactly like the method (same layer, positions), on a seeded (the session's seed) subsample of "
             "{null_items_per_class} of each class's items (of the method's items), for the time budget (each random "
             "direction costs a forward of its items per position set and layer); G2 subtracts the {null_quantile} "
             "quantile of their mean drops, recomputed with the method's in every resample of the items",
    specificity_datasets=f"names starting with '{SPECIFICITY_PREFIX}'",
)

NATURAL_TEXT_PROTOCOL = _protocol(  # R1, R1.auroc (§5.4), fixed before measuring (fixtures/correlation.py)
    {"corpus_sentences": 3000, "corpus_seed": 0, "tail_quantile": 0.001, "null_directions": 100,
     "null_quantile": 0.975, "auroc_floor": 0.8, "max_top_coordinate_share": 0.5},
    corpus="a seeded (seed {corpus_seed}: the same under every --seeds seed) subsample of {corpus_sentences} SST-2 "
           "train sentences, for the time budget, in place of the paper's OpenWebText (not shipped, and no host but "
           "the package registries is reachable): a DEVIATION that favours the claim, since every SST-2 sentence is "
           "a review, so the direction's tails meet sentiment tokens far more often than on OWT's mixed web text",
    tails="the tokens at or below the {tail_quantile:.1%} quantile of all projections, and at or above the "
          "mirror quantile",
    unit="the word type (a lexicon label is a property of the word, and its tokens' residuals are alike): "
         "cluster bootstrap over word types, percentile over all of them for R1, studentized over the labelled "
         "ones for R1.auroc",
    null="{null_directions} seeded Gaussian directions, unoriented (the paper's random baseline); R1.auroc's "
         "statistic is the AUROC minus the larger of {auroc_floor} and the null AUROCs' {null_quantile} quantile, "
         "both recomputed in every resample (paired); R1's rule has no null (the null's tail scores are reported)",
    isotropy="R1.isotropy, the control of R1 and R1.auroc: the coordinate with the largest mean square over the "
             "corpus's tokens carries at most {max_top_coordinate_share} of a token's squared norm on average; "
             "beyond it a cosine reads mostly that one coordinate (a random unit direction's projection variance "
             "splits over the coordinates as the squared norm does), and the cosine rows are not interpretable",
    robust_reading="R1.standardized and R1.auroc.standardized: the same statistics, rules and null, every token "
                   "standardized coordinate by coordinate over the corpus (z = (x − mean) / std, so that no "
                   "coordinate outweighs another) and read as cos(z, d) (Timkey & van Schijndel 2021, rogue "
                   "dimensions); declared before measuring, decided as rows of their own",
)

_PATCHING_NULL = {"null_directions": 50, "null_min_depth": 0.5, "null_quantile": 0.5}  # P2.random, P5.random
_PATCHING_NULL_PROSE = dict(
    null="{null_directions} seeded Gaussian directions (the session's seed; one vector per layer, as the paper's random "
         "baseline), each patched exactly like a method's direction (every position, the same pairs and clean and "
         "corrupted runs); its statistic, like the tested one: the largest |% LD recovered| over the declared layer grid, "
         "the DAS layers at relative depth >= {null_min_depth} (15, 18, ..., 30 on SmolLM2-135M), not every layer, for "
         "the time budget: a run patched at boundary L computes the blocks after L, so this grid costs about a quarter "
         "of every DAS layer and a tenth of every layer (the paper's single random direction at every layer stays in "
         "the report's sweeps)",
    null_quantile_why="the control row is the {null_quantile:.0%} quantile (the median) over the directions: what a "
                      "random direction recovers; its CI resamples the pairs and the directions (two-way percentile "
                      "bootstrap, the null's own sampling variation included). An upper quantile of {null_directions} "
                      "draws has no honest upper bound (the sample maximum lies below the true 97.5% quantile with "
                      "probability 0.975^50 = 28%; docs/calibration.md); the 97.5% quantile and the maximum are in the "
                      "row's details",
)

TOY_PATCHING_PROTOCOL = _protocol(  # P1, P2, P2.random (§6.2), fixed before measuring (fixtures/patching_null.py)
    dict(_PATCHING_NULL), **_PATCHING_NULL_PROSE,
)

SST_PATCHING_PROTOCOL = _protocol(  # P3-P5 (§6.2), fixed before measuring (fixtures/sst_experiments.py)
    {"n_pairs": None, "max_sentence_tokens": 20, "layer_grid": "das", **_PATCHING_NULL},
    layers="every method patched at the layers where {layer_grid} has a (trained) direction (0, 3, ..., 27 on "
           "SmolLM2-135M; every layer where it has none): one grid for every method, so that P5 compares DAS with each method over the same "
           "candidate layers and P4 reads each method's best layer among them; a run patched at boundary L computes "
           "the blocks after L, so the grid costs about a third of every layer, for the time budget (the "
           "ToyMovieReview sweep keeps every layer)",
    pairs="every eligible pair (n_pairs {n_pairs}: no cap; issue 25, item 7): length-matched SST pairs of sentences of "
          "at most {max_sentence_tokens} tokens, drawn in the session's seeded order until a class runs out: no "
          "sentence in two pairs, clean labels balanced (40 + 40 of 166 equal-length candidates on SmolLM2-135M's "
          "shipped dev split, whose largest disjoint subset, unbalanced, has 89; 24 before)",
    **_PATCHING_NULL_PROSE,
)

SST_ABLATION_PROTOCOL = _protocol(  # A1-A5 (§5.3, §6.1), fixed before measuring (fixtures/sst_experiments.py)
    {"max_prompt_tokens": 64, "top_k": 10, "max_per_class": None, "min_per_class": 10, "random_ablations": 50,
     "null_quantile": 0.975, "spread_quantile": 0.5, "min_class_logit_diff": 1.0},
    gate="the model classifies the prompts it is ablated on: each class's mean clean (unablated) logit difference "
         "on the zero-shot set is at least {min_class_logit_diff:g} (the right answer e ≈ 2.7 times as likely as the "
         "other on average), since Δ% LD divides by it (issue 26: Gemma-3-270M's barely-correct negatives gave "
         "class-wise Δ% LD of 1,479 for DAS and 1,028 for a random direction); checked on the very prompts A1–A5 "
         "read, in place of P0.zero_shot's floor on the whole split",
    zero_shot_set="every eligible prompt: comma-holding zero-shot prompts of at most {max_prompt_tokens} tokens, "
                  "classified correctly with the answer in the top {top_k}, the larger class subsampled (seeded) to "
                  "the smaller's size, no cap per class (max_per_class {max_per_class}; 19 + 19 on SmolLM2-135M, "
                  "20 + 20 on Gemma-3-270M); the top-{top_k} filter is dropped where it leaves fewer than "
                  "{min_per_class} in a class",
    null="{random_ablations} seeded random directions (one Gaussian vector per ablated layer; the session's seed), "
         "each ablated exactly like DAS (same layers, positions, prompts) at all positions, all but the first and "
         "commas; A1 subtracts the null's {null_quantile} quantile of drops (studentized bootstrap, the directions "
         "fixed); A2 reads the {spread_quantile:.0%} quantile (the median) of |Δ% LD| over the directions, its CI the "
         "two-way percentile bootstrap of prompts and directions (as P2.random's and P5.random's: an upper quantile "
         "of {random_ablations} draws has no honest upper bound, docs/calibration.md); A3/A4 net out the null's mean "
         "drop; every statistic recomputed on the same resampled prompts",
    ratios="A3-A5's ratios N/D: the Fieller-type interval, the set of ρ where the studentized bootstrap test of "
           "N − ρD = 0 does not reject at 2.5% on either side (harness.measures.ratio_interval); bounded when the "
           "denominator is resolved, unbounded when it is not; the ratio itself is never resampled (on Gemma-3-270M "
           "its bootstrap-t interval excluded its own point)",
)

SUMMARIZATION_PROTOCOL = _protocol(  # M3 (§6.4), fixed before measuring (fixtures/toy_mood_story.py)
    {"filler_lengths": (0, 11, 22, 44), "distance_filler": 22},
    fillers="neutral filler tokens before \"One day, ...\" (0: the paper's prompts); M3.distance reads the "
            "filler of the paper's comma-over-phrase number",
)

CIRCUIT_PROTOCOL = _protocol(  # K1-K3 (§6.4), fixed before measuring (fixtures/circuit.py)
    {"top_heads": 12, "sparse_fraction": 0.05, "role_threshold": 0.1, "n_receivers": 3, "n_direct": 6,
     "n_writers": 3, "stage2_pairs": 16, "stage2_keep": 32, "direction_method": "das"},
    selection="the roles of the top {top_heads} heads (attention >= {role_threshold}), the first {n_receivers} "
              "summary readers as stage-2 receivers, on a balanced subset of {stage2_pairs} train pairs; the "
              "circuit: the top {n_direct} stage-1 heads + the top {n_writers} stage-2 writers",
    stage2_keep_why="senders patched exactly in stage 2, per input, after ranking by attribution patching: "
                    "{stage2_keep} = a margin of more than 3x over the 9 circuit heads and the report's 8 largest "
                    "writers. Measured on SmolLM2-135M (243 head senders, 16 pairs): AtP's ranking of |effect| "
                    "agrees with the exact patch on every sender (Spearman 1.000 for q, k and v; the exact top 10 "
                    "are AtP's top 10 in order), so the pruned run finds the same writers and circuit as the "
                    "unpruned one, at a tenth of step (b)'s cost",
)

MOOD_STORY_CIRCUIT_PROTOCOL = _protocol(  # K4 (§6.4), fixed before measuring (fixtures/circuit.py)
    {"paper_heads": ("17.19", "22.5", "14.4", "20.10", "12.2", "10.26", "12.4", "12.17", "14.2", "13.20", "9.29",
                     "11.16"), "top_heads": 24},
    ranking="every head's stage-1 path effect (head output → final residual at the last position, K1's ranking) "
            "on ToyMoodStory's clean/corrupted pairs (each story against the one that swaps who loves parties); "
            "the paper's heads (docs/PAPER.md §6.4 [R], pythia-2.8b, roles not recoverable) looked for among the "
            "top {top_heads}, twice their number",
    unit="the name pair (its four variants share the names): cluster bootstrap, the ranking redone in each "
         "resample",
)

D1_PROTOCOL = _protocol(  # D1, D1.random (§6.3), fixed before measuring (fixtures/directions.py passes the numbers)
    {"refit_resamples": 200, "das_refit_resamples": 30, "das_refit_epochs": 1},
    resampling="both methods of a pair refitted on each bootstrap resample of the train prompts (one set of "
               "draws, the session's seed): mean difference, probe, PCA and K-means on all {refit_resamples}; DAS "
               "on the first {das_refit_resamples}, on which a row with DAS (and D1.random) is drawn",
    das_refit="DAS's full fit continued for {das_refit_epochs} epoch(s) on each resample's pairs, with its own "
              "objective, batch size, lr, Adam and clip, no early stopping (harness/directions/das_refit.py): a "
              "declared approximation, since a full DAS fit per resample (a dozen epochs from a random start, "
              "for each of {das_refit_resamples} resamples and two layers) exceeds the suite's time budget; it "
              "measures how the fitted direction moves with the data near the full fit, not how a fresh training "
              "run lands elsewhere. Measured on SmolLM2-135M at layer 18 over 10 resamples: the sd of |cos| "
              "with the refitted mean difference, probe, PCA and K-means was 0.018, 0.021, 0.039 and 0.070 with "
              "these refits, and 0.031, 0.028, 0.028 and 0.044 with full refits, so a DAS row's CI with the mean "
              "difference or the probe may be too narrow by up to about 40%",
    interval="the percentile interval of the draws re-centred at the point (the draws minus their median plus "
             "the point, within [0, 1]): a refit on a resample is noisier than the fit on all prompts, which "
             "lowers |cos|, so the draws sit below the point (the percentile interval then excludes it) and give "
             "its spread only; the estimand is the |cos| of directions fitted on this many prompts, the paper's "
             "quantity, whose unbiased estimate is the point itself",
)

LAYER_CHOICE_PROTOCOL = _protocol(  # D2, P1-P5, K3: a layer chosen on data that does not score it (issue 25, item 5)
    {"tie_tolerance": 0.0, "tie_prefer": "median"},
    layer_choice="the layer is chosen on a continuous criterion (% LD recovered for patching, the mean label-signed "
                 "margin of the projection for D2), never on a share that ties across layers (a flip rate, an "
                 "accuracy); layers within {tie_tolerance} of the best are tied, and ties go to the {tie_prefer} "
                 "layer by depth (the argmax would take the shallowest)",
)

FIDELITY_PROTOCOL = {  # the load-time check of the weight processing (harness/models/fidelity.py, fixtures/model.py)
    "prompts": ("I thought this movie was wonderful, I loved it.", "The food was cold and the service was slow.",
                "Conclusion: This movie is", "She opened the letter and smiled."),
    # largest |Δ log p| allowed, over every real position and vocabulary entry, by --dtype
    "tolerance": {"float32": 1e-3, "bfloat16": 3.0, "float16": 0.5},
    "why": "measured on CPU (torch 2.13, the 4 prompts, BOS prepended): float32 4.6e-05 on smollm2-135m and 2.7e-05 "
           "on gemma3-270m (1e-3 leaves a margin over 20x); bfloat16 0.90 and 0.61, float16 0.096 on smollm2-135m "
           "(the maximum is over the whole vocabulary, where a half-precision logit of the tail rounds by a tenth or "
           "more and each side rounds differently after processing; 3.0 and 0.5 leave a margin over 3x and 5x). "
           "gemma3-270m gives no finite logits in float16, processed or not: the check stops it and says so. A "
           "processed weight of block 0 perturbed by half its spread moved them by 0.7 to 9 on the tiny models "
           "(tests/test_fidelity.py), so float32 catches such an error by a wide margin and half precision only a "
           "gross one",
}
