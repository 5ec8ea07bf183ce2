"""Measures: metrics of model outputs (``metrics``, paper §5.1) and the statistics that turn values
into estimates with 95% CIs (``statistics``). Imports only ``harness.runtime``."""
