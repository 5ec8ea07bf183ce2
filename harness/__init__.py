"""sentiment-claims harness: the library the claim tests call.

Replicates Tigges, Hollinsworth, Geiger, Nanda (2023), "Linear Representations of Sentiment in Large
Language Models" (the paper summary the code cites is ``docs/PAPER.md``). The subpackages are layers
along the data flow; each imports only the layers listed before it (``tests/test_architecture.py``):

    runtime → measures → datasets → models → interventions → directions → experiments → verdicts → reporting

- ``runtime``: the content-addressed disk cache and progress of long stages.
- ``measures``: metrics (§5.1) and the statistics that decide claims (95% CIs).
- ``datasets``: ToyMovieReview, ToyMoodStory, SST, transfer sets, the lexicon, prompts and tokens (§2).
- ``models``: resolving ``--model`` and loading it as a TransformerBridge; embedded and paper models.
- ``interventions``: hooks, forward passes, patching, ablation, generation (§3, §5).
- ``directions``: the direction finders, DAS, their registry and fitting (§4).
- ``experiments``: one module per experiment of the paper (§5, §6) and beyond it (transfer).
- ``verdicts``: claim declarations, decided rows, per-model expectations.
- ``reporting``: the report, its renderers, the cross-model matrix and the launcher.
"""

LAYERS = ("runtime", "measures", "datasets", "models", "interventions", "directions", "experiments", "verdicts",
          "reporting")
