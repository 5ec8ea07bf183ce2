"""Reporting: the per-model report writer (``report``), one renderer per result type (``rendering``),
the cross-model matrix (``matrix``) and the one-job-per-model launcher (``launch``). The top layer."""
