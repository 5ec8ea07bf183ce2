"""harness.runtime.disk_cache: the content-addressed, self-verifying activation cache.

- a second ``get_or_compute`` with the same key is served from disk (compute not called);
- a truncated file or one with a flipped byte is detected, warned about, and recomputed;
- ``refresh=True`` recomputes (and rewrites) entries that exist; a changed code version recomputes;
- ``content_key`` is stable across calls and equal-content tensors, and changes when any byte of a
  tensor, its dtype or its shape changes;
- every supported type round-trips exactly (same types, dict key types, dtypes, devices), the suite's
  cached result classes included; an unsupported type is a ``TypeError`` at store time, writing nothing;
- reading executes nothing: a planted pickle (old format, or behind a valid-looking header of the new
  one) or an entry naming a class off the allowlist is refused with a warning, never run, and rebuilt;
- two processes writing and reading one entry at once never see a damaged value.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pathlib
import pickle
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.runtime import disk_cache
from harness.runtime.disk_cache import DiskCache, cacheable, content_key

DAMAGED = "truncated, corrupted or in another format"

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
    path = cache.path("acts", "k", compute)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.warns(UserWarning, match=DAMAGED):
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
    assert sorted(p.name for p in (tmp_path / "acts").iterdir()) == sorted(cache.path("acts", k, Compute()).name for k in "ab")


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


def test_the_code_compute_runs_is_part_of_the_key(tmp_path):
    """Two computations under one key, running different code, get separate entries."""
    cache = DiskCache(tmp_path)
    assert cache.get_or_compute("acts", "k", lambda: 1) == 1
    assert cache.get_or_compute("acts", "k", lambda: 2) == 2
    assert cache.get_or_compute("acts", "k", lambda: 1) == 1
    assert (cache.hits, cache.misses) == (1, 2)


# round trips -----------------------------------------------------------------------------------------

@cacheable
@dataclass(frozen=True)
class Pair:
    """A registered result class (frozen, as most of the suite's are)."""

    first: object
    second: object


def assert_same(actual, expected, where="value"):
    """Equal and of the same types all the way down (tensors: dtype, shape, device, requires_grad too)."""
    assert type(actual) is type(expected), f"{where}: {type(actual)} is not {type(expected)}"
    if isinstance(expected, torch.Tensor):
        assert (actual.dtype, actual.shape, actual.device, actual.requires_grad) == \
            (expected.dtype, expected.shape, expected.device, expected.requires_grad), where
        assert torch.equal(actual, expected) or torch.equal(actual.isnan(), expected.isnan()) and \
            torch.equal(actual.nan_to_num(), expected.nan_to_num()), where
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and np.array_equal(actual, expected, equal_nan=expected.dtype.kind == "f")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert [(type(k), k) for k in actual] == [(type(k), k) for k in expected], where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (float, np.floating)):
        assert (math.isnan(actual) and math.isnan(expected)) or (
            actual == expected and math.copysign(1, actual) == math.copysign(1, expected)), where
    elif expected is None or isinstance(expected, (bool, int, str, np.generic)):
        assert actual == expected, where
    else:
        assert_same(vars(actual), vars(expected), f"{where}.__dict__")


def round_trip(cache: DiskCache, value):
    """``value`` stored, then served by ``get_or_compute`` as a hit (compute never called)."""
    def unexpected():
        pytest.fail("a stored value was recomputed")

    cache.store(cache.path("values", "v", unexpected), value)
    hits = cache.hits
    served = cache.get_or_compute("values", "v", unexpected)
    assert cache.hits == hits + 1
    return served


def tensor_view(dtype: torch.dtype, shape: list[int], seed: int) -> torch.Tensor:
    """A tensor that is a strided view into a larger storage (what slicing a batch gives)."""
    base = torch.randn(*shape, 2, generator=torch.Generator().manual_seed(seed)) * 10
    return base.to(dtype)[..., 0]


TENSOR_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                 torch.uint8, torch.bool]
tensors = st.builds(tensor_view, st.sampled_from(TENSOR_DTYPES), st.lists(st.integers(0, 3), max_size=3),
                    st.integers(0, 2**16))
arrays = st.builds(tensor_view, st.sampled_from([d for d in TENSOR_DTYPES if d is not torch.bfloat16]),
                   st.lists(st.integers(0, 3), max_size=3), st.integers(0, 99)).map(torch.Tensor.numpy)
numpy_scalars = (st.floats().map(np.float64) | st.floats(width=32).map(np.float32)
                 | st.integers(-2**63, 2**63 - 1).map(np.int64) | st.integers(0, 255).map(np.uint8)
                 | st.booleans().map(np.bool_))
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
keys = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4)
                    | st.integers(0, 9).map(np.int64), lambda inner: st.tuples(inner, inner), max_leaves=4)
values = st.recursive(
    scalars | tensors | arrays | numpy_scalars,
    lambda inner: (st.lists(inner, max_size=3) | st.lists(inner, max_size=3).map(tuple)
                   | st.dictionaries(keys, inner, max_size=3) | st.builds(Pair, inner, inner)),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values)
def test_every_supported_type_round_trips(tmp_path, value):
    assert_same(round_trip(DiskCache(tmp_path), value), value)


def test_the_suites_cached_result_types_round_trip(tmp_path):
    """What the call sites store: results classes with tuple-keyed dicts, dicts keyed by bands, fitted
    estimators (numpy scalars among their attributes), (logits, ranks) tuples, lists of (layer, head)."""
    from harness.directions.finders import KMeansDirection, MeanDifference
    from harness.experiments.summarization import ResampleEffects
    from harness.interventions.sweep import PatchingResults

    X, y = torch.randn(20, 6, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 2
    value = {
        "patching": PatchingResults(y, torch.randn(20), torch.randn(20),
                                    {("das", 3): torch.randn(20), ("pca", 0): torch.randn(20)}),
        "resampling": {(0, 2): ResampleEffects(y, torch.randn(20), {"precomma": torch.randn(20)})},
        "directions": {0: MeanDifference().fit(X, y), 1: KMeansDirection(n_init=2).fit(X, y)},
        "classified": (torch.randn(20, 2), torch.randint(0, 9, (20, 2))),
        "stage": {"senders": [(0, 1), (1, 3)], "first_position": {0: {"norm_first": 1.5}}},
        "none": None,
    }
    served = round_trip(DiskCache(tmp_path), value)
    assert_same(served, value)
    assert isinstance(served["directions"][1].cluster_positive_share_[0], np.float64)
    assert served["directions"][0].score(X, y) == value["directions"][0].score(X, y)


def test_requires_grad_and_shared_tensors_are_kept(tmp_path):
    weight, shared = torch.randn(3, requires_grad=True), torch.arange(4.0)
    served = round_trip(DiskCache(tmp_path), [weight, shared, {"again": shared}])
    assert served[0].requires_grad and torch.equal(served[0].detach(), weight.detach())
    assert served[2]["again"] is served[1]


def test_a_stored_none_is_a_hit(tmp_path):
    cache, compute = DiskCache(tmp_path), Compute()
    for _ in range(2):
        assert cache.get_or_compute("values", "none", lambda: compute() and None) is None
    assert compute.calls == 1


@pytest.mark.parametrize("value, named", [
    ({1, 2}, "set"),
    ({"a": [object()]}, "object"),
    (Path("x"), "PosixPath" if os.name == "posix" else "Path"),
    ({frozenset({1}): 0}, "frozenset"),
    (np.array(["a", None], dtype=object), "dtype object"),
    (torch.eye(2).to_sparse(), "sparse"),
    (torch.nn.Parameter(torch.zeros(2)), "Parameter"),
    (1 + 2j, "complex"),
])
def test_an_unsupported_type_is_a_type_error_at_store(tmp_path, value, named):
    cache = DiskCache(tmp_path)
    with pytest.raises(TypeError, match=named) as raised:
        cache.get_or_compute("values", "bad", lambda: value)
    assert "accepted" in str(raised.value)
    assert not (tmp_path / "values").exists() or not any((tmp_path / "values").iterdir())


def test_cacheable_refuses_a_taken_name_and_slotted_classes():
    with pytest.raises(ValueError, match="already registered"):
        cacheable(type("Other", (), {}), name="Pair")

    class Slotted:
        __slots__ = ("x",)

    with pytest.raises(TypeError, match="__dict__"):
        cacheable(Slotted)


# reading executes nothing ---------------------------------------------------------------------------

class Plant:
    """Unpickling this writes ``marker``: what a hostile file in a shared cache would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.write_text, (pathlib.Path(self.marker), "executed")


def old_format(payload: bytes) -> bytes:
    """The format the cache used to write (``torch.save`` behind a v1 header)."""
    return b"sentiment-claims-cache v1\n" + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def new_header(body: bytes) -> bytes:
    """``body`` behind a valid current header (magic and a matching checksum)."""
    return disk_cache._MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def torch_saved(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


PLANTS = {
    "old format": lambda plant: old_format(torch_saved(plant)),
    "bare pickle": lambda plant: pickle.dumps(plant),
    "pickle behind a new header": lambda plant: new_header(pickle.dumps(plant)),
    "pickle as the tensor blob": lambda plant: new_header(b'{"tensor":"0"}\n' + torch_saved(plant)),
    "class off the allowlist": lambda plant: new_header(
        json.dumps({"object": "pathlib.Path.write_text", "state": {"dict": [["marker", str(plant.marker)]]}}).encode()
        + b"\n" + safetensors.torch.save({})),
}


@pytest.mark.parametrize("plant", PLANTS)
def test_a_planted_payload_is_refused_never_executed_and_rebuilt(tmp_path, monkeypatch, plant):
    marker = tmp_path / "executed"
    pickle.loads(pickle.dumps(Plant(tmp_path / "armed")))
    assert (tmp_path / "armed").exists(), "the payload is not armed: unpickling it must run code"

    unpickled = []
    for owner, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (torch, "load")):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _original=original, _name=name, **k: (unpickled.append(_name),
                                                                                          _original(*a, **k))[1])
    cache, compute = DiskCache(tmp_path / "cache"), Compute()
    path = cache.path("acts", "k", compute)
    path.parent.mkdir(parents=True)
    path.write_bytes(PLANTS[plant](Plant(marker)))
    with pytest.warns(UserWarning, match=DAMAGED):
        assert_value(cache.get_or_compute("acts", "k", compute))
    assert not marker.exists() and unpickled == []
    assert compute.calls == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_value(cache.get_or_compute("acts", "k", compute))
    assert compute.calls == 1 and not marker.exists()


def test_a_file_is_json_and_safetensors_behind_the_header(tmp_path):
    cache = DiskCache(tmp_path)
    cache.get_or_compute("acts", "k", Compute())
    magic, checksum, tree, tensors = cache.path("acts", "k", Compute()).read_bytes().split(b"\n", 3)
    assert magic + b"\n" == disk_cache._MAGIC and len(checksum) == 64
    assert json.loads(tree) == {"dict": [["resid", {"tensor": "0"}], ["layers", [0, 1, 2]]]}
    assert torch.equal(safetensors.torch.load(tensors)["0"], VALUE["resid"])


# two processes on one entry ---------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import json, sys, time, warnings
    from pathlib import Path
    import torch
    from harness.runtime.disk_cache import DiskCache

    root, me, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    expected = {"resid": torch.arange(1 << 18, dtype=torch.float32) / 7, "layers": (0, 1, 2), "name": "shared"}
    (root / f"ready-{me}").touch()
    while len(list(root.glob("ready-*"))) < 2:
        time.sleep(0.01)
    warnings.simplefilter("error", UserWarning)  # a damaged read would warn
    counts, end, i = {"writes": 0, "reads": 0}, time.monotonic() + seconds, 0
    while time.monotonic() < end:
        cache = DiskCache(root / "cache", refresh=i % 2 == 0)
        value = cache.get_or_compute("acts", "shared", lambda: expected)
        assert torch.equal(value["resid"], expected["resid"]) and value["layers"] == (0, 1, 2), value
        counts["writes"] += cache.misses
        counts["reads"] += cache.hits
        i += 1
    print(json.dumps(counts))
""")


def test_two_processes_on_one_entry_never_see_a_damaged_value(tmp_path):
    root = Path(__file__).parents[1]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), name, "2.0"], cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in "ab"]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    counts = [json.loads(out) for out, _ in outputs]
    assert all(c["writes"] > 0 and c["reads"] > 0 for c in counts), counts
    entries = [p.name for p in (tmp_path / "cache" / "acts").iterdir()]
    assert len(entries) == 1 and entries[0].endswith(".cache")  # one entry, no temporary file left behind
