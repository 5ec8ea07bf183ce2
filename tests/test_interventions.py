"""Property tests of the edits in harness.interventions.edit (paper §5.2–§5.3), on random tensors.

- directional patch x' = x + (d·s − d·x) d: only the component along d changes, and it becomes the
  source's; a direction's scale and sign do not matter (unit-normalised at use time);
- patching along each vector of a full orthonormal basis in turn is the full patch x' = s;
- project-out leaves no component along d and nothing else changes;
- ``edit_hook`` with a mask changes only the masked positions.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.interventions.edit import directional_patch, edit_hook, full_patch, position_mask, project_out, unit

SETTINGS = settings(max_examples=40, deadline=None)
ATOL = 1e-9  # float64 throughout


@st.composite
def activations(draw, per_row_direction: bool | None = None):
    """(x, source, direction): x and source [batch, pos, d]; direction [d] or [batch, 1, d]."""
    batch, pos, d = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(2, 12))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([1e-2, 1.0, 1e2]))
    randn = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)
    per_row = draw(st.booleans()) if per_row_direction is None else per_row_direction
    direction = randn(batch, 1, d) if per_row else randn(d)
    return randn(batch, pos, d) * scale, randn(batch, pos, d) * scale, direction


def along(v: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    return (v * unit(direction)).sum(-1)


@SETTINGS
@given(activations())
def test_directional_patch_changes_only_the_component_along_d(case):
    x, source, direction = case
    patched = directional_patch(direction, source)(x)
    d = unit(direction).expand_as(x)
    change = patched - x
    # the change is parallel to d: nothing is left after removing its d-component
    residue = change - (change * d).sum(-1, keepdim=True) * d
    torch.testing.assert_close(residue, torch.zeros_like(x), atol=ATOL * x.abs().max().item() + ATOL, rtol=0)
    # and the d-component is now the source's
    torch.testing.assert_close(along(patched, direction), along(source, direction))


@SETTINGS
@given(activations(), st.floats(0.1, 10.0), st.booleans())
def test_directional_patch_ignores_scale_and_sign_of_d(case, factor, flip):
    x, source, direction = case
    scaled = direction * factor * (-1 if flip else 1)
    torch.testing.assert_close(directional_patch(scaled, source)(x), directional_patch(direction, source)(x))


@SETTINGS
@given(activations(per_row_direction=False), st.integers(0, 2**31 - 1))
def test_patching_along_a_full_orthonormal_basis_is_the_full_patch(case, seed):
    x, source, _ = case
    d_model = x.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d_model, d_model, generator=generator, dtype=torch.float64))
    patched = x
    for k in range(d_model):
        patched = directional_patch(basis[:, k], source)(patched)
    torch.testing.assert_close(patched, full_patch(source)(x))
    torch.testing.assert_close(full_patch(source)(x), source)


@SETTINGS
@given(activations())
def test_project_out_removes_exactly_the_component_along_d(case):
    x, _, direction = case
    ablated = project_out(direction)(x)
    scale = x.abs().max().item()
    torch.testing.assert_close(along(ablated, direction), torch.zeros(x.shape[:-1], dtype=x.dtype),
                               atol=ATOL * scale + ATOL, rtol=0)
    # what was removed is the d-component of x, so adding it back restores x
    torch.testing.assert_close(ablated + along(x, direction)[..., None] * unit(direction), x)
    torch.testing.assert_close(project_out(direction)(ablated), ablated)


@SETTINGS
@given(activations(), st.data())
def test_edit_hook_changes_only_masked_positions(case, data):
    x, source, direction = case
    batch, pos, _ = x.shape
    mask = torch.tensor(data.draw(st.lists(st.lists(st.booleans(), min_size=pos, max_size=pos),
                                           min_size=batch, max_size=batch)))
    edit = directional_patch(direction, source)
    out = edit_hook(edit, mask)(x.clone(), hook=None)
    torch.testing.assert_close(out[~mask], x[~mask], atol=0, rtol=0)
    torch.testing.assert_close(out[mask], edit(x)[mask], atol=0, rtol=0)
    torch.testing.assert_close(edit_hook(edit)(x, hook=None), edit(x), atol=0, rtol=0)


@SETTINGS
@given(activations(), st.data())
def test_edit_hook_broadcasts_the_mask_over_trailing_dims(case, data):
    """A [batch, pos] mask on a per-head activation [batch, pos, heads, d_head] selects whole positions."""
    x, _, _ = case
    batch, pos, d = x.shape
    x4 = x.view(batch, pos, 1, d).repeat(1, 1, 2, 1)
    positions = torch.tensor(data.draw(st.lists(st.integers(0, pos - 1), min_size=batch, max_size=batch)))
    mask = position_mask(positions, pos)
    assert mask.sum().item() == batch and bool(mask[torch.arange(batch), positions].all())
    out = edit_hook(lambda a: a + 1.0, mask)(x4, hook=None)
    expected = x4 + mask[:, :, None, None].double()
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_frozen_attention_uses_the_given_pattern(tiny):
    """Freezing every layer's pattern to the run's own changes nothing; freezing it to another prompt's
    changes the output, and each head's z is then exactly that pattern applied to this run's v."""
    from harness.interventions.attention import attention_patterns, freeze_attention_hooks

    bridge = tiny.bridge
    tokens = bridge.to_tokens(["I loved this movie", "I hated that film"], prepend_bos=True)
    own = attention_patterns(bridge, tokens)
    swapped = {layer: pattern.flip(0) for layer, pattern in own.items()}
    captured = {}

    def keep(name):
        def hook(activation, hook=None):
            captured[name] = activation.detach().clone()
        return hook

    with torch.no_grad():
        plain = bridge(tokens)
        frozen_own = bridge.run_with_hooks(tokens, fwd_hooks=freeze_attention_hooks(own))
        frozen_other = bridge.run_with_hooks(tokens, fwd_hooks=freeze_attention_hooks(swapped) + [
            ("blocks.1.attn.hook_v", keep("v")), ("blocks.1.attn.hook_z", keep("z"))])
    assert torch.allclose(plain, frozen_own, atol=1e-5)
    assert not torch.allclose(plain, frozen_other, atol=1e-3)
    expected_z = torch.einsum("bhqk,bkhd->bqhd", swapped[1], captured["v"])
    assert torch.allclose(captured["z"], expected_z, atol=1e-5)
