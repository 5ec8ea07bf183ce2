"""harness.disk_cache: the content-addressed, self-verifying activation cache.

- a second ``get_or_compute`` with the same key is served from disk (compute not called);
- a truncated file or one with a flipped byte is detected, warned about, and recomputed;
- ``refresh=True`` recomputes (and rewrites) entries that exist; a changed code version recomputes;
- ``content_key`` is stable across calls and equal-content tensors, and changes when any byte of a
  tensor, its dtype or its shape changes.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.disk_cache import DiskCache, content_key

VALUE = {"resid": torch.arange(12.0).view(3, 4), "layers": [0, 1, 2]}


class Compute:
    """A compute function that counts its calls and returns a fresh copy of ``value``."""

    def __init__(self, value=VALUE):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return {"resid": self.value["resid"].clone(), "layers": list(self.value["layers"])}


def assert_value(value, expected=VALUE):
    assert torch.equal(value["resid"], expected["resid"]) and value["layers"] == expected["layers"]


def test_second_call_is_a_hit(tmp_path):
    cache, compute = DiskCache(tmp_path), Compute()
    assert_value(cache.get_or_compute("acts", "k1", compute))
    assert_value(cache.get_or_compute("acts", "k1", compute))
    assert compute.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    # a fresh cache object on the same directory (a later session) also hits
    later = DiskCache(tmp_path)
    assert_value(later.get_or_compute("acts", "k1", compute))
    assert compute.calls == 1 and later.hits == 1


def test_keys_and_namespaces_are_separate(tmp_path):
    cache = DiskCache(tmp_path)
    other = {"resid": torch.zeros(2), "layers": []}
    cache.get_or_compute("acts", "k1", Compute())
    assert_value(cache.get_or_compute("acts", "k2", Compute(other)), other)
    assert_value(cache.get_or_compute("dirs", "k1", Compute(other)), other)
    assert_value(cache.get_or_compute("acts", "k1", Compute(other)))


def damage_truncate(blob: bytes) -> bytes:
    return blob[: len(blob) // 2]


def damage_flip_payload(blob: bytes) -> bytes:
    middle = len(blob) // 2
    return blob[:middle] + bytes([blob[middle] ^ 0xFF]) + blob[middle + 1:]


def damage_flip_header(blob: bytes) -> bytes:
    return bytes([blob[0] ^ 0x01]) + blob[1:]


def damage_empty(blob: bytes) -> bytes:
    return b""


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip_payload, damage_flip_header, damage_empty])
def test_damaged_file_is_detected_and_recomputed(tmp_path, damage):
    cache, compute = DiskCache(tmp_path), Compute()
    cache.get_or_compute("acts", "k", compute)
    path = cache.path("acts", "k")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(UserWarning, match="truncated or corrupted"):
        assert_value(cache.get_or_compute("acts", "k", compute))
    assert compute.calls == 2
    # rebuilt on disk: the next read is a clean hit, with no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_value(cache.get_or_compute("acts", "k", compute))
    assert compute.calls == 2


def test_refresh_recomputes_and_rewrites(tmp_path):
    DiskCache(tmp_path).get_or_compute("acts", "k", Compute())
    new = {"resid": torch.ones(3), "layers": [7]}
    refreshing, compute = DiskCache(tmp_path, refresh=True), Compute(new)
    assert_value(refreshing.get_or_compute("acts", "k", compute), new)
    assert_value(refreshing.get_or_compute("acts", "k", compute), new)
    assert compute.calls == 2 and refreshing.hits == 0
    # the rewritten entry is what a normal cache now serves
    assert_value(DiskCache(tmp_path).get_or_compute("acts", "k", Compute()), new)


def test_store_leaves_no_temporary_files(tmp_path):
    cache = DiskCache(tmp_path)
    for key in ("a", "b"):
        cache.get_or_compute("acts", key, Compute())
    assert sorted(p.name for p in (tmp_path / "acts").iterdir()) == ["a.pt", "b.pt"]


def test_content_key_is_stable():
    tensor = torch.arange(24.0).view(4, 6)
    parts = ("das", tensor, {"epochs": 8, "layers": [0, 3]})
    assert content_key(*parts) == content_key(*parts)
    # equal content, different storage (a non-contiguous transpose made contiguous) → same key
    assert content_key(tensor.T.contiguous().T) == content_key(tensor)
    assert content_key({"b": 1, "a": 2}) == content_key({"a": 2, "b": 1})


def test_content_key_depends_on_dtype_shape_and_parts():
    tensor = torch.arange(6.0)
    keys = {
        content_key(tensor),
        content_key(tensor.double()),
        content_key(tensor.view(2, 3)),
        content_key(tensor, 1),
        content_key(tensor, "1"),
        content_key("das", tensor),
    }
    assert len(keys) == 6


def test_content_key_of_a_scalar_tensor():
    """0-dim tensors (a loss, a threshold) are tensors too: hashed, and by value."""
    assert content_key(torch.tensor(1.0)) == content_key(torch.tensor(1.0))
    assert content_key(torch.tensor(1.0)) != content_key(torch.tensor(2.0))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dtype=st.sampled_from([torch.float32, torch.float16, torch.int64]),
       data=st.data())
def test_content_key_changes_when_any_tensor_byte_changes(seed, dtype, data):
    generator = torch.Generator().manual_seed(seed)
    tensor = (torch.randn(3, 5, generator=generator) * 100).to(dtype)
    raw = tensor.view(torch.uint8).clone().flatten()
    index = data.draw(st.integers(0, raw.numel() - 1))
    flip = data.draw(st.integers(1, 255))
    raw[index] ^= flip
    changed = raw.view(tensor.shape[0], -1).view(dtype)
    assert changed.shape == tensor.shape
    assert content_key("acts", changed) != content_key("acts", tensor)


def test_changed_code_is_not_served_an_old_result(tmp_path):
    """The code version is part of every key: a result computed by other code is recomputed."""
    compute = Compute()
    DiskCache(tmp_path, code_version="a").get_or_compute("acts", "k1", compute)
    DiskCache(tmp_path, code_version="a").get_or_compute("acts", "k1", compute)
    DiskCache(tmp_path, code_version="b").get_or_compute("acts", "k1", compute)
    assert compute.calls == 2


def test_source_fingerprint_follows_file_contents(tmp_path):
    from harness.disk_cache import source_fingerprint

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    before = source_fingerprint(tmp_path / "pkg")
    assert source_fingerprint(tmp_path / "pkg") == before
    (tmp_path / "pkg" / "m.py").write_text("x = 2\n")
    assert source_fingerprint(tmp_path / "pkg") != before
