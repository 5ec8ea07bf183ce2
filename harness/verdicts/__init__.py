"""Verdicts: what a claim declaration is and how its rule decides (``declaration``), every claim
declared once (``declared``), a decided row (``record``) and per-model expected verdicts
(``expectations``). Imports the layers up to ``experiments``."""
