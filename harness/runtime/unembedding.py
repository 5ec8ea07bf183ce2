"""The unembedding of a final-position forward, made contiguous (a cost, not a result: logits unchanged).

``logits_to_keep=1`` leaves a strided slice of the final residual, which ``torch.matmul`` multiplies by a
batch-expanded unembedding, one ``d_model × d_vocab`` product per row, bound by memory: on SmolLM2-135M
(49,152 × 576) that doubles a run restarted at layer 18 and costs a third of a full forward of 8 tokens.
A hook at ``unembed.hook_in`` hands the unembedding a contiguous copy instead; every final-position
forward of the suite passes it (``harness.interventions.forward.run_from``, ``answer_logits``, ...).
"""

from __future__ import annotations

UNEMBED_IN = "unembed.hook_in"


def contiguous_unembedding(bridge) -> list:
    """``[(hook name, hook)]`` making the unembedding's input contiguous; empty where the bridge has no
    such hook point."""
    return [(UNEMBED_IN, lambda activation, hook=None: activation.contiguous())] if UNEMBED_IN in bridge.hook_dict else []
