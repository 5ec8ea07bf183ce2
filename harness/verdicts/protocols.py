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


STEERING_PROTOCOL = {  # fixed before measuring (issue "Verdicts", item 7)
    "hook": "the early layer's resid_pre (the paper's blocks.0.hook_resid_post on gpt2-small)",
    "scale": "median residual norm at the hook over the prompt's tokens, BOS left out (on gpt2-small: the "
             "paper's integer grid 0 to -20)",
    "coefficient_fractions": (0.0, 0.25, 0.5, 0.75, 1.0),
    "samples_per_coefficient": 50,
    "why": "the grid spans edits from none to as large as the residual itself; the strongest edit equals the "
           "typical residual norm, beyond which the direction would dominate the stream",
}

TRANSFER_PROTOCOL = _protocol(  # G1-G3, fixed before measuring (fixtures/transfer.py passes the numbers)
    {"per_class": 150, "sample_seed": 0, "null_directions": 100, "null_quantile": 0.975, "random_ablations": 3,
     "ablation_methods": ("das", "mean_diff"), "ablation_positions": ("all", "all_but_first"),
     "ablation_site": "resid_pre"},
    samples="a seeded (seed {sample_seed}) balanced sample of {per_class} items per class of every dataset and of "
            "the SST held-out split (all of a smaller class)",
    layer_choice="per method, the layer (among its layers) of highest AUROC of the oriented last-token projection "
                 "on the SST sample; the sign of every layer's direction fixed on that sample; never the target data",
    null="{null_directions} seeded Gaussian directions at the chosen layer, each oriented on the SST sample; "
         "quantile {null_quantile}",
    ablation="directional ablation at the chosen layer, at the boundary read ({ablation_site}); {random_ablations} "
             "random directions (the null's first); methods {ablation_methods}",
    specificity_datasets=f"names starting with '{SPECIFICITY_PREFIX}'",
)

NATURAL_TEXT_PROTOCOL = _protocol(  # R1, R1.auroc (§5.4), fixed before measuring (fixtures/correlation.py)
    {"corpus_sentences": 3000, "corpus_seed": 0, "tail_quantile": 0.001, "null_directions": 100,
     "null_quantile": 0.975, "auroc_floor": 0.8},
    corpus="a seeded (seed {corpus_seed}: the same under every --seeds seed) subsample of {corpus_sentences} SST-2 "
           "train sentences, for the time budget",
    tails="the tokens at or below the {tail_quantile:.1%} quantile of all projections, and at or above the "
          "mirror quantile",
    null="{null_directions} seeded Gaussian directions, unoriented (the paper's random baseline); R1.auroc's "
         "threshold is the larger of {auroc_floor} and the null AUROCs' {null_quantile} quantile",
)

SST_PATCHING_PROTOCOL = _protocol(  # P3-P5 (§6.2), fixed before measuring (fixtures/sst_experiments.py)
    {"n_pairs": 24, "max_sentence_tokens": 20},
    pairs="{n_pairs} length-matched SST pairs of sentences of at most {max_sentence_tokens} tokens, drawn with the "
          "session's seed: no sentence in two pairs, clean labels balanced",
)

SST_ABLATION_PROTOCOL = _protocol(  # A1-A5 (§5.3, §6.1), fixed before measuring (fixtures/sst_experiments.py)
    {"max_prompt_tokens": 64, "top_k": 10, "max_per_class": 100, "min_per_class": 10},
    zero_shot_set="comma-holding zero-shot prompts of at most {max_prompt_tokens} tokens, classified correctly "
                  "with the answer in the top {top_k}, at most {max_per_class} per class (seeded); the top-{top_k} "
                  "filter is dropped where it leaves fewer than {min_per_class} in a class",
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

D1_PROTOCOL = {"refit_resamples": 200}  # D1: bootstrap refits per layer (4 methods x 200 x 2 layers)
