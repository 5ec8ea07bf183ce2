"""The load-time fidelity check (``harness/models/fidelity.py``): the processed bridge against a second,
unprocessed load of the same files, on every tiny architecture; a broken processed weight fails it with one
message naming the difference, where it was largest and the tolerance; a constant shift of a position's logits
(what centring the unembedding does) is no difference; a model that is not finite unprocessed is named as such."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import torch

from harness.models import fidelity as fidelity_module
from harness.models.fidelity import FidelityError, check_fidelity, reference_model
from harness.models.loading import LoadedModel
from harness.verdicts.protocols import FIDELITY_PROTOCOL

PROMPTS, TOLERANCE = FIDELITY_PROTOCOL["prompts"], FIDELITY_PROTOCOL["tolerance"]
ARCHITECTURES = ("gpt2", "neox", "llama", "gemma")


@pytest.fixture(params=ARCHITECTURES)
def any_tiny(request: pytest.FixtureRequest) -> LoadedModel:
    """Each tiny model: GPT-2, NeoX, the grouped-query Llama and Gemma-3."""
    if request.param in ("gpt2", "neox"):
        return request.getfixturevalue("tiny_models")[request.param]
    return request.getfixturevalue(f"tiny_{request.param}")


def _real_positions(loaded: LoadedModel) -> int:
    return sum(loaded.bridge.to_tokens(p, prepend_bos=loaded.prepend_bos).shape[-1] for p in PROMPTS)


@contextmanager
def broken_weight(loaded: LoadedModel):
    """Perturb the first processed matrix of block 0 (seeded noise of half its spread: a scale alone can vanish
    in a norm, as Gemma's query norm removes it); restored after, bit for bit."""
    name, weight = next((n, p) for n, p in loaded.bridge.original_model.named_parameters()
                        if p.dim() == 2 and ".0." in n)
    kept = weight.detach().clone()
    noise = torch.randn(weight.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        weight.add_(noise.to(weight) * kept.std() / 2)
    try:
        yield name
    finally:
        with torch.no_grad():
            weight.copy_(kept)


class Shifted(torch.nn.Module):
    """The unprocessed model with its logits changed by ``edit(logits)``."""

    def __init__(self, model, edit):
        super().__init__()
        self.model, self.edit = model, edit

    @property
    def device(self):
        return self.model.device

    def forward(self, **kwargs):
        return SimpleNamespace(logits=self.edit(self.model(**kwargs).logits))


def test_every_tiny_architecture_passes(any_tiny: LoadedModel):
    result = check_fidelity(any_tiny, PROMPTS, TOLERANCE)
    assert result.passed, result.describe()
    assert result.max_abs_diff < TOLERANCE["float32"] / 10
    assert result.positions == _real_positions(any_tiny) and result.vocab == any_tiny.bridge.cfg.d_vocab
    assert result.describe().startswith("max |Δ log p| = ") and "tolerance 1e-03, float32" in result.describe()


def test_a_broken_processed_weight_fails_with_one_message(any_tiny: LoadedModel):
    loaded = any_tiny
    with broken_weight(loaded):
        result = check_fidelity(loaded, PROMPTS, TOLERANCE)
    assert not result.passed and result.max_abs_diff > 100 * TOLERANCE["float32"]
    message = result.failure(loaded.name)
    assert message.startswith(f"fidelity check failed on {loaded.name}: the processed TransformerBridge's next-token "
                              f"log-probabilities differ from the unprocessed Hugging Face model's by up to "
                              f"{result.max_abs_diff:.3g} (tolerance 0.001 for float32), largest at position "
                              f"{result.position} (BOS is 0; the prediction after {result.token!r}) of the prompt "
                              f"{result.prompt!r}: the bridge")
    assert result.prompt in PROMPTS and result.describe().endswith(": FAILED")
    assert check_fidelity(loaded, PROMPTS, TOLERANCE).passed  # the weight is restored


def test_a_constant_shift_of_each_positions_logits_is_no_difference(gpt2: LoadedModel, monkeypatch):
    """Centring the unembedding adds one constant to every logit of a position: log_softmax removes it; a
    shift of one token's logit is a difference."""
    shifts = torch.randn(len(PROMPTS), 64, 1) * 50
    unprocessed = reference_model(gpt2)
    monkeypatch.setattr(fidelity_module, "reference_model",
                        lambda loaded: Shifted(unprocessed, lambda logits: logits + shifts[:, :logits.shape[1]]))
    assert check_fidelity(gpt2, PROMPTS, TOLERANCE).passed

    def one_token(logits):
        logits = logits.clone()
        logits[1, 2, 7] += 0.5
        return logits

    monkeypatch.setattr(fidelity_module, "reference_model", lambda loaded: Shifted(unprocessed, one_token))
    result = check_fidelity(gpt2, PROMPTS, TOLERANCE)
    assert not result.passed and (result.prompt, result.position) == (PROMPTS[1], 2)


def test_an_unprocessed_model_that_is_not_finite_is_named(gpt2: LoadedModel, monkeypatch):
    unprocessed = reference_model(gpt2)
    monkeypatch.setattr(fidelity_module, "reference_model",
                        lambda loaded: Shifted(unprocessed, lambda logits: logits.masked_fill(
                            torch.zeros_like(logits, dtype=torch.bool).index_fill_(1, torch.tensor([3]), True),
                            float("nan"))))
    result = check_fidelity(gpt2, PROMPTS, TOLERANCE)
    assert not result.passed and result.reference_nonfinite == len(PROMPTS) and result.position == 3
    assert (f"the unprocessed Hugging Face model itself gives non-finite next-token log-probabilities in float32 at "
            f"{len(PROMPTS)} of {result.positions} positions") in result.failure(gpt2.name)


def test_an_undeclared_dtype_or_no_prompt_is_refused_before_loading(gpt2: LoadedModel, monkeypatch):
    monkeypatch.setattr(fidelity_module, "reference_model", lambda loaded: pytest.fail("loaded"))
    with pytest.raises(FidelityError, match="no fidelity tolerance is declared for dtype 'float32'; declared: bfloat16"):
        check_fidelity(gpt2, PROMPTS, {"bfloat16": 3.0})
    with pytest.raises(FidelityError, match="at least one prompt"):
        check_fidelity(gpt2, (), TOLERANCE)


def test_tolerances_are_declared_for_every_dtype_the_suite_accepts():
    from harness.models.loading import DTYPES

    assert set(TOLERANCE) == set(DTYPES) and all(value > 0 for value in TOLERANCE.values())
    assert TOLERANCE["float32"] < TOLERANCE["float16"] < TOLERANCE["bfloat16"]
