"""harness.models.loading.converted_gguf_dir when sessions share one cache:

- two processes started together on an empty cache, converting the tiny GGUF of ``tests/tiny_gguf.py``,
  both get the same converted copy (one converts, the other waits for it and reuses it), and no staging
  folder is left behind (before the lock, the second failed: ``OSError: [Errno 39] Directory not empty``);
- a copy that failed to load is rebuilt once: a second session that saw the same damaged copy reuses the
  rebuilt one, and ``_load_hf`` recovers from a damaged copy;
- the final rename keeps a copy that another writer completed meanwhile and discards the staging copy.

Only the race converts for real (about 20 s of GGUF parsing); the other tests replace the dequantization
with a copy of that conversion, so they exercise the locking and rebuilding alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from harness.models import loading as models
from harness.models.loading import ModelSource, _install_converted, _load_hf, conversion_record, converted_gguf_dir
from tests.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[1]

WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import transformers  # imported before the start line, so both conversions start together
    from harness.models import loading as models
    dequantize, conversions = models._dequantize_gguf, []
    models._dequantize_gguf = lambda *args: (conversions.append(args), dequantize(*args))
    gguf, cache, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    (cache.parent / f"ready-{me}").touch()
    while len(list(cache.parent.glob("ready-*"))) < 2:
        time.sleep(0.01)
    folder = models.converted_gguf_dir(gguf, cache)
    print(len(conversions), folder)
""")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny-llama-gguf.gguf")


@pytest.fixture(scope="module")
def race(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple[int, str, str]], Path]:
    """Two processes converting ``tiny_gguf`` into one empty cache at once: (returncode, stdout, stderr) of
    each, and the cache."""
    cache = tmp_path_factory.mktemp("race") / "cache"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tiny_gguf), str(cache), name], cwd=ROOT,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for name in "ab"]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    return [(worker.returncode, *output) for worker, output in zip(workers, outputs)], cache


def test_two_sessions_on_an_empty_cache_share_one_conversion(race):
    results, cache = race
    for returncode, _, err in results:
        assert returncode == 0, err[-3000:]
    conversions, folders = zip(*(out.strip().splitlines()[-1].split(" ", 1) for _, out, _ in results))
    assert sorted(conversions) == ["0", "1"] and len(set(folders)) == 1  # one converted, the other reused it
    folder = Path(folders[0])
    assert conversion_record(folder) is not None and (folder / "config.json").is_file()
    assert [p.name for p in (cache / "models").iterdir() if p.is_dir()] == [folder.name]


@pytest.fixture
def copied_conversion(race, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Dequantization replaced by a copy of the race's converted copy; returns the staging folders it filled."""
    results, cache = race
    converted = Path(results[0][1].strip().splitlines()[-1].split(" ", 1)[1])
    filled = []

    def dequantize(gguf_path: Path, staging: Path) -> None:
        for path in converted.iterdir():
            if path.name != "COMPLETE":
                shutil.copy(path, staging / path.name)
        filled.append(staging)

    monkeypatch.setattr(models, "_dequantize_gguf", dequantize)
    return filled


def damage(folder: Path) -> None:
    for weights in folder.glob("*.safetensors"):
        weights.write_bytes(b"damaged")


def test_a_damaged_copy_is_rebuilt_once(tiny_gguf, tmp_path, copied_conversion):
    folder = converted_gguf_dir(tiny_gguf, tmp_path)
    damaged = conversion_record(folder)
    damage(folder)
    assert converted_gguf_dir(tiny_gguf, tmp_path, damaged=damaged) == folder
    rebuilt = conversion_record(folder)
    assert rebuilt not in (None, damaged) and len(copied_conversion) == 2
    # a second session that saw the same damaged copy finds it replaced already: no second rebuild
    assert converted_gguf_dir(tiny_gguf, tmp_path, damaged=damaged) == folder
    assert conversion_record(folder) == rebuilt and len(copied_conversion) == 2
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if p.is_dir()) == [folder.name]


def test_load_hf_recovers_from_a_damaged_copy(tiny_gguf, tmp_path, copied_conversion):
    folder = converted_gguf_dir(tiny_gguf, tmp_path)
    damaged = conversion_record(folder)
    damage(folder)
    model, tokenizer, info = _load_hf(ModelSource(tiny_gguf.stem, "gguf", str(tiny_gguf)), torch.float32, tmp_path)
    assert info["converted_copy"] == str(folder) and conversion_record(folder) not in (None, damaged)
    assert model.config.num_hidden_layers == 2 and len(tokenizer) > 0


def test_the_final_rename_keeps_a_copy_completed_meanwhile(tmp_path):
    target, staging = tmp_path / "model-0123", tmp_path / ".staging-x"
    for folder, record in ((target, "winner"), (staging, "loser")):
        folder.mkdir()
        (folder / "weights").write_text(record)
        (folder / "COMPLETE").write_text(record)
    _install_converted(staging, target, replacing=None)
    assert conversion_record(target) == "winner" and (target / "weights").read_text() == "winner"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_the_final_rename_replaces_an_incomplete_copy(tmp_path):
    target, staging = tmp_path / "model-0123", tmp_path / ".staging-x"
    target.mkdir()
    (target / "weights").write_text("partial")
    staging.mkdir()
    (staging / "COMPLETE").write_text("new")
    _install_converted(staging, target, replacing=None)
    assert conversion_record(target) == "new" and not (target / "weights").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
