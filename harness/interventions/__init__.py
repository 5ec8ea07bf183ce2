"""Interventions on a loaded model: TransformerLens hook names (``hook_names``), the one hook that edits
positions (``edit``), forward passes and restarts (``forward``, ``prefix_cache``), frozen attention
(``attention``), generation, the directional-patching sweep, path and attribution patching, ablation and
value resampling (paper §3, §5). Imports the layers up to ``models``."""
