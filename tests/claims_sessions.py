"""Start real pytest sessions of the claims in a subprocess (the end-to-end tests): one or several
``--model`` values, a tiny selection of claims (``SELECTION``: D1 at layer 0, one DAS epoch), one thread."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CLAIM_FILE = "claims/test_directions.py"
SELECTION = "d1 and layer0"
TIMEOUT_S = 600


def run_suite(*args: str, cwd: Path = ROOT, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m pytest *args`` from the repository root, offline, with no inherited pytest options."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST")}
    env["HF_HUB_OFFLINE"] = "1"
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)


def outcome_counts(output: str) -> dict[str, int]:
    """The counts of pytest's final summary line (``3 passed, 2 failed, 1 error in 4.5s``)."""
    words = r"\b(x?passed|x?failed|errors?|skipped|deselected|no tests ran)\b"
    summary = [line for line in output.splitlines() if re.search(words, line) and re.search(r"\bin [\d.]+s\b", line)]
    assert summary, f"no pytest summary line in the output:\n{output[-4000:]}"
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (not applicable|\w+)", summary[-1])}
    if "error" in counts:
        counts["errors"] = counts.pop("error")
    return counts


def run_claims(model: Path | list[Path], tmp_path: Path, claims_cache: Path, *extra: str,
               pythonpath: Path | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    """The selection on ``model`` (or each of a list, in one session); returns the result and the report dir."""
    reports = tmp_path / "reports"
    models = [arg for path in (model if isinstance(model, list) else [model]) for arg in ("--model", str(path))]
    result = run_suite(
        CLAIM_FILE, "-k", SELECTION, "-p", "no:cacheprovider", *models, "--device", "cpu", "--claims-cache", str(claims_cache),
        "--report-dir", str(reports), "--das-epochs", "1", "--das-layers", "0", "--threads", "1", *extra,
        pythonpath=pythonpath,
    )
    return result, reports
