"""Experiments: one module per experiment of the paper (§5, §6) and beyond it (transfer). Each takes
its protocol numbers as arguments (the declarations in ``harness.verdicts.declared`` hold them; the
fixtures pass them in). Imports the layers up to ``directions``."""
