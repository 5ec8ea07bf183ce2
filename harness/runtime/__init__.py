"""Runtime services every layer may use: the content-addressed disk cache (``disk_cache``) and the
progress of long stages (``progress``). Imports nothing from the rest of ``harness``."""
