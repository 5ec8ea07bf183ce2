"""Fidelity of the processed bridge: its next-token log-probabilities against the unprocessed model's.

``load_model`` wraps a Hugging Face model as a ``TransformerBridge`` and processes its weights (fold
LayerNorm, centre the writing weights and the unembedding, fold value biases). Processing must not change
what the model computes, so ``check_fidelity`` loads the same local files a second time, unprocessed, with
transformers, runs both on a few fixed prompts (one right-padded batch: a causal model's real positions do
not see the padding) and compares ``log_softmax`` of the logits at every real position and over the whole
vocabulary. Log-probabilities, not logits: centring the unembedding shifts every logit of a position by the
same constant, which ``log_softmax`` removes. The prompts and the per-dtype tolerances are declared in
``harness.verdicts.protocols.FIDELITY_PROTOCOL`` and passed in by the fixture.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from harness.models.loading import LoadedModel, resolve_dtype


class FidelityError(RuntimeError):
    """The processed bridge's log-probabilities differ from the unprocessed model's beyond the tolerance."""


@dataclass(frozen=True)
class Fidelity:
    """The largest |Δ log p| between the bridge and the unprocessed model, and where it was."""

    max_abs_diff: float
    positions: int  # real (unpadded) positions compared, every vocabulary entry at each
    vocab: int
    prompt: str  # the prompt, position and token (at that position) of the largest difference
    position: int
    token: str
    tolerance: float
    dtype: str
    seconds: float
    reference_nonfinite: int = 0  # positions where the unprocessed model itself gives a non-finite log p

    @property
    def passed(self) -> bool:
        return self.reference_nonfinite == 0 and self.max_abs_diff <= self.tolerance  # NaN or inf fails

    def describe(self) -> str:
        """The report's environment entry."""
        broken = (f"; the unprocessed model is not finite at {self.reference_nonfinite} positions"
                  if self.reference_nonfinite else "")
        return (f"max |Δ log p| = {self.max_abs_diff:.1e} over {self.positions} positions × {self.vocab} tokens "
                f"(tolerance {self.tolerance:.0e}, {self.dtype}; {self.seconds:.1f} s){broken}"
                f"{'' if self.passed else ': FAILED'}")

    def failure(self, model_name: str) -> str:
        """The one message every claim of a model that fails the check errors with."""
        if self.reference_nonfinite:
            return (f"fidelity check failed on {model_name}: the unprocessed Hugging Face model itself gives non-finite "
                    f"next-token log-probabilities in {self.dtype} at {self.reference_nonfinite} of {self.positions} "
                    f"positions (first at position {self.position}, after {self.token!r}, of the prompt {self.prompt!r}): "
                    f"the model does not run in {self.dtype}; use --dtype float32")
        return (f"fidelity check failed on {model_name}: the processed TransformerBridge's next-token log-probabilities "
                f"differ from the unprocessed Hugging Face model's by up to {self.max_abs_diff:.3g} (tolerance "
                f"{self.tolerance:g} for {self.dtype}), largest at position {self.position} (BOS is 0; the prediction "
                f"after {self.token!r}) of the prompt {self.prompt!r}: the bridge (TransformerLens's adapter and the "
                "weight processing of harness/models/loading.py) does not compute what the model computes, so none of "
                "its claims is run")


def reference_model(loaded: LoadedModel):
    """The model ``loaded`` was built from, loaded again from the same local files, unprocessed, on its device."""
    from transformers import AutoModelForCausalLM

    kwargs: dict = dict(dtype=resolve_dtype(loaded.dtype), attn_implementation="eager")
    info, source = loaded.info, loaded.source
    if "converted_copy" in info:  # embedded or GGUF: the dequantized copy the bridge was built from
        location = info["converted_copy"]
    else:  # a model directory, or a hub id now in the local HF cache (where the first load put it)
        location, kwargs["local_files_only"] = source.location, True
    if "device_map" in info:  # the bridge's placement, layer by layer
        kwargs["device_map"] = {name: int(place) if place.isdigit() else place
                                for name, place in info["device_map"].items()}
    model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    if "device_map" not in info:
        model = model.to(loaded.device)
    return model.eval()


def right_padded(loaded: LoadedModel, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts' tokens (BOS as the session prepends it), right-padded, and their attention mask."""
    rows = [loaded.bridge.to_tokens(prompt, prepend_bos=loaded.prepend_bos, truncate=False)[0].cpu() for prompt in prompts]
    width = max(len(row) for row in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, :len(row)], mask[i, :len(row)] = row, 1
    return tokens, mask


def log_prob_difference(loaded: LoadedModel, reference,
                        prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """|Δ log p| per prompt and position (the largest over the vocabulary, inf where either side is not finite;
    NaN where padded), whether the unprocessed model's log p is finite there, and the tokens."""
    tokens, mask = right_padded(loaded, prompts)
    device = loaded.bridge.cfg.device
    with torch.no_grad():
        ours = loaded.bridge(tokens.to(device), attention_mask=mask.to(device), return_type="logits")
        theirs = reference(input_ids=tokens.to(reference.device), attention_mask=mask.to(reference.device)).logits
    ours = torch.log_softmax(ours.float().cpu(), dim=-1)
    theirs = torch.log_softmax(theirs.float().cpu(), dim=-1)
    if ours.shape != theirs.shape:
        raise FidelityError(f"the bridge gives logits of shape {tuple(ours.shape)}, the unprocessed model "
                            f"{tuple(theirs.shape)}")
    worst = (ours - theirs).abs().nan_to_num(nan=float("inf")).amax(dim=-1)
    return worst.masked_fill(mask == 0, float("nan")), theirs.isfinite().all(dim=-1) | (mask == 0), tokens


def check_fidelity(loaded: LoadedModel, prompts: Sequence[str], tolerances: Mapping[str, float]) -> Fidelity:
    """Compare ``loaded`` with its unprocessed model on ``prompts``; the tolerance is ``tolerances[dtype]``.
    The second model is freed before returning. Raises ``FidelityError`` only when the check cannot run."""
    if loaded.dtype not in tolerances:
        raise FidelityError(f"no fidelity tolerance is declared for dtype {loaded.dtype!r}; declared: "
                            f"{', '.join(tolerances)}")
    if not prompts:
        raise FidelityError("the fidelity check needs at least one prompt")
    start = time.perf_counter()
    reference = reference_model(loaded)
    try:
        worst, finite, tokens = log_prob_difference(loaded, reference, prompts)
    finally:
        del reference
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    # where it was largest; where the unprocessed model is not finite, the first such position
    flat = int((~finite).flatten().int().argmax()) if not finite.all() else int(worst.nan_to_num(nan=-1.0).argmax())
    row, position = divmod(flat, worst.shape[1])
    return Fidelity(
        max_abs_diff=float(worst[row, position]),
        positions=int((~worst.isnan()).sum()),
        vocab=int(loaded.bridge.cfg.d_vocab),
        prompt=prompts[row],
        position=position,
        token=loaded.tokenizer.decode([int(tokens[row, position])]),
        tolerance=float(tolerances[loaded.dtype]),
        dtype=loaded.dtype,
        seconds=time.perf_counter() - start,
        reference_nonfinite=int((~finite).sum()),
    )
