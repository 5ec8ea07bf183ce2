"""The disk cache's code key (``harness.runtime.code_key``): an entry is recomputed when the code its
computation reaches changes, and only then."""

from __future__ import annotations

import pytest

from harness.interventions import sweep as sweep_module
from harness.interventions.sweep import directional_patching_sweep
from harness.runtime import code_key
from harness.runtime.code_key import code_fingerprint, module_digest, reached_modules
from harness.runtime.disk_cache import DiskCache


SWEEP = "harness.interventions.sweep"
RENDERER = "harness.reporting.rendering.directions"


def sweep_computation():
    return lambda: directional_patching_sweep(None, None)


def test_a_computation_reaches_the_library_modules_it_imports_and_no_report_or_declaration():
    reached = reached_modules(sweep_computation())
    assert {SWEEP, "harness.interventions.forward", "harness.measures.statistics"} <= reached
    assert not {m for m in reached if m.startswith(("harness.reporting", "harness.verdicts"))}


def test_docstrings_comments_and_layout_do_not_change_a_module_digest():
    source = '"""Doc."""\nimport os\n\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n'
    assert module_digest(source) == module_digest('import os\ndef f(x):\n    return x + 1\n')
    assert module_digest(source) == module_digest('"""Other doc."""\nimport os\n\n\ndef f(x):\n    """Other."""\n'
                                                  '    # comment\n    return x + 1\n')
    assert module_digest(source) != module_digest('import os\ndef f(x):\n    return x + 2\n')


@pytest.fixture
def edited(monkeypatch):
    """Serve an edited source for one library module (as if the file had been edited)."""
    original = code_key._module_source

    def edit(module: str, old: str, new: str) -> None:
        text = original(module)
        assert old in text, f"{old!r} not in {module}"
        sources = {module: text.replace(old, new, 1)}
        monkeypatch.setattr(code_key, "_module_source", lambda m: sources.get(m) or original(m))
        code_key._library_imports.cache_clear()

    yield edit
    code_key._library_imports.cache_clear()


def test_editing_the_sweep_recomputes_the_sweeps(tmp_path, edited):
    cache = DiskCache(tmp_path)
    cache.get_or_compute("patching", "k", lambda: directional_patching_sweep and 1)
    edited(SWEEP, "\ndef ", "\ndef _an_edited_helper():\n    return 0\n\n\ndef ")
    cache.get_or_compute("patching", "k", lambda: directional_patching_sweep and 1)
    assert cache.misses == 2


def test_editing_a_sweep_docstring_recomputes_nothing(tmp_path, edited):
    cache = DiskCache(tmp_path)
    cache.get_or_compute("patching", "k", lambda: directional_patching_sweep and 1)
    edited(SWEEP, sweep_module.__doc__[:40], "An edited docstring. " + sweep_module.__doc__[:40])
    cache.get_or_compute("patching", "k", lambda: directional_patching_sweep and 1)
    assert (cache.hits, cache.misses) == (1, 1)


def test_editing_a_renderer_or_a_declaration_recomputes_nothing(tmp_path, edited):
    import harness.reporting.rendering.directions  # noqa: F401  (loaded, as in a session)
    import harness.verdicts.declared  # noqa: F401

    before = code_fingerprint(sweep_computation())
    edited(RENDERER, "\ndef ", "\ndef _an_edited_helper():\n    return 0\n\n\ndef ")
    assert code_fingerprint(sweep_computation()) == before
    edited("harness.verdicts.declared", "\ndef ", "\ndef _an_edited_helper():\n    return 0\n\n\ndef ")
    assert code_fingerprint(sweep_computation()) == before


def test_a_fixture_helper_counts_by_its_own_code():
    def helper(x):
        return x + 1

    def other(x):
        return x + 2

    assert code_fingerprint(lambda: helper(1)) != code_fingerprint(lambda: other(1))


def test_a_protocol_number_the_computation_reads_is_part_of_the_key():
    protocol = {"n_pairs": 24}

    def compute():
        return protocol["n_pairs"]

    before = code_fingerprint(compute)
    protocol["n_pairs"] = 136
    assert code_fingerprint(compute) != before


def test_the_key_is_the_same_in_every_process():
    """String hashing changes a set's order between processes; the key must not change with it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = ("from harness.runtime.code_key import code_fingerprint\n"
              "A, B, C, D = 1, 2, 3, 4\n"
              "def f(x):\n    return x in {'a', 'b', 'c', 'd'} and {'k': frozenset({'e', 'f'})}\n"
              "print(code_fingerprint(lambda: f(A) + B + C + D))")
    keys = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[1], env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in range(4)}
    assert len(keys) == 1, keys
