"""sentiment-claims harness: the library the claim tests call.

Replicates Tigges, Hollinsworth, Geiger, Nanda (2023), "Linear Representations of Sentiment in
Large Language Models". One concept per module:

- ``models``: resolve ``--model`` and load it as a TransformerLens ``TransformerBridge`` (§1).
- ``disk_cache``: content-addressed, atomic, self-verifying on-disk cache.
- ``tokens``: single-token filtering and locating positions by token search (§2).
- ``toy_movie_review``: the ToyMovieReview dataset and its clean/corrupted pairing (§2.1).
- ``forward``: residual-stream checkpoints and restarting the forward pass from a layer (§3).
- ``interventions``: the one hook that edits chosen positions of an activation (§5.2).
- ``metrics``: centred logit difference, accuracy, % recovered, % flip, bootstrap CIs (§5.1).
- ``directions``: scikit-learn-style direction finders (§4); ``das``: 1-D DAS (§4).
- ``sweep``: the directional-patching layer sweep (§5.2, §6.2).
- ``expectations``: per-model records of claims that do not replicate.
- ``report``: the replication report writer (tables, figures, environment).
"""
