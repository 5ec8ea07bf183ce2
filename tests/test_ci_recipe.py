"""The CI recipe of ``docs/ci.md``: the GitHub Actions workflow passes actionlint, the shell recipe passes
shellcheck, and the shell recipe works as a replication check.

The end-to-end test runs ``docs/ci/replicate.sh`` three times on the embedded model, restricted to P0 on
40 SST sentences (``--sst-path``; one thread) so that it takes seconds, in a fresh cache whose ``models/``
is the shared cache's (the GGUF's converted copy, made once per machine):

1. ``--update-expectations``: writes the model's expectations file, the recipe's first step, and fills
   the cache;
2. against that file with the warm cache: exit 0, ``results.json`` written, no cache entry added (it
   recomputed nothing);
3. against a copy of that file with one verdict changed: the script exits 1 (``ExpectationOutdated``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from harness.datasets.sst import SHIPPED_DIR, SPLIT_FILES
from harness.models.loading import EMBEDDED_MODEL
from harness.verdicts.expectations import model_file_stem
from tests.claims_sessions import expectation_entry

ROOT = Path(__file__).parents[1]
WORKFLOW = ROOT / "docs" / "ci" / "replication.yml"
SCRIPT = ROOT / "docs" / "ci" / "replicate.sh"
SENTENCES_PER_LABEL = 20
TIMEOUT_S = 600


def linter(name: str, install: str) -> str:
    """The linter's executable, on PATH or beside this interpreter (a virtual environment's bin/)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed ({install})")
    return found


def test_workflow_passes_actionlint() -> None:
    actionlint = linter("actionlint", "pip install -e '.[lint]'")
    result = subprocess.run([actionlint, "-no-color", "-oneline", str(WORKFLOW)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_script_passes_shellcheck(shell: str) -> None:
    shellcheck = linter("shellcheck", "apt-get install shellcheck")
    result = subprocess.run([shellcheck, f"--shell={shell}", str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def few_sst_sentences(directory: Path) -> Path:
    """An SST directory whose one split holds the first ``SENTENCES_PER_LABEL`` sentences of each label of
    the shipped dev split."""
    lines = (SHIPPED_DIR / SPLIT_FILES["dev"]).read_text().splitlines()
    kept = [line for label in "10" for line in [text for text in lines if text.startswith(f"{label} ")][:SENTENCES_PER_LABEL]]
    directory.mkdir()
    (directory / SPLIT_FILES["dev"]).write_text("\n".join(kept) + "\n")
    return directory


def drifted(text: str, rows: list[dict]) -> str:
    """Expectations ``text`` with one row's verdict changed: a row it does not list (so expects to
    replicate) listed as "does not replicate", else its first row's entry removed."""
    listed = tomllib.loads(text)
    unlisted = next((row for row in rows if row["test_id"] not in listed and row["measured"] is not None), None)
    if unlisted is not None:
        value = unlisted["measured"]
        return text + "\n\n" + expectation_entry(unlisted["test_id"], value, value - 1, value + 1)
    return re.sub(rf'^\["{re.escape(rows[0]["test_id"])}"\]\n(?:[^\[\n].*\n?)*', "", text, flags=re.M)


def cache_entries(cache: Path) -> set[Path]:
    return {path for path in (cache / "activations").rglob("*") if path.is_file()}


@pytest.mark.e2e
def test_replicate_script_guards_the_verdicts(tmp_path: Path, cache_dir: Path) -> None:
    cache = tmp_path / "claims-cache"
    cache.mkdir()
    (cache_dir / "models").mkdir(parents=True, exist_ok=True)
    (cache / "models").symlink_to(cache_dir / "models", target_is_directory=True)
    expectations = tmp_path / "expectations"
    sst = few_sst_sentences(tmp_path / "sst")
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST")}
    env |= {"HF_HUB_OFFLINE": "1", "PYTHON": sys.executable, "CLAIMS_MODEL": EMBEDDED_MODEL,
            "CLAIMS_CACHE": cache.name, "CLAIMS_EXPECTATIONS": expectations.name,  # relative to the caller's directory
            "CLAIMS_ARGS": f"-k p0 --device cpu --threads 1 -p no:cacheprovider --sst-path {sst}"}

    def replicate(reports: str, *args: str) -> tuple[subprocess.CompletedProcess, float, Path]:
        start = time.perf_counter()
        result = subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=env | {"CLAIMS_REPORTS": reports},
                                capture_output=True, text=True, timeout=TIMEOUT_S)
        return result, time.perf_counter() - start, tmp_path / reports / model_file_stem(EMBEDDED_MODEL) / "results.json"

    first, cold_s, _ = replicate("reports-1", "--update-expectations")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    written = expectations / f"{model_file_stem(EMBEDDED_MODEL)}.toml"
    assert written.is_file(), first.stdout[-4000:]
    filled = cache_entries(cache)
    assert filled, "the first run stored nothing in the suite's cache"

    second, warm_s, results_file = replicate("reports-2")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    rows = json.loads(results_file.read_text())["claims"]
    assert rows and all(row["claim"] == "P0" for row in rows), rows
    assert cache_entries(cache) == filled, "the warm run recomputed cached entries"
    print(f"replicate.sh on {EMBEDDED_MODEL}, P0 on {2 * SENTENCES_PER_LABEL} sentences: first run {cold_s:.1f} s, "
          f"warm run {warm_s:.1f} s")

    written.write_text(drifted(written.read_text(), rows))
    third, _, drifted_results = replicate("reports-3")
    output = third.stdout + third.stderr
    assert third.returncode == pytest.ExitCode.TESTS_FAILED, output[-4000:]
    assert "ExpectationOutdated" in output, output[-4000:]
    assert drifted_results.is_file(), "the reports are written when a verdict drifts too"
