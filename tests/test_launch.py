"""The many-model launcher (``harness/reporting/launch.py``) with submitit's local executor: one job per tiny
random-weight model (``tiny_dirs`` from ``tests/conftest.py``), each running one D1 claim test, then the
matrix of the run. The jobs use the suite's cache as this session does (the tiny models' tokenizer
comes from its converted SmolLM2 copy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.reporting.launch import main
from harness.verdicts.declaration import Verdict

pytestmark = pytest.mark.e2e

SUBSET = ["-k", "d1_methods_agree and layer0-mean_diff-kmeans", "--threads", "1", "--das-epochs", "1"]
DECIDED = (Verdict.REPLICATES, Verdict.DOES_NOT_REPLICATE, Verdict.INCONCLUSIVE)


@pytest.fixture
def launch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run the launcher on the given model directories (local executor, the one-test subset); returns its
    exit status, the report directory and the run's matrix.json."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the jobs inherit it: the tiny models are local

    def run(*models: Path) -> tuple[int, Path, dict]:
        reports = tmp_path / "reports"
        argv = [arg for model in models for arg in ("--model", str(model))]
        status = main([*argv, "--executor", "local", "--report-dir", str(reports), "--jobs-dir", str(tmp_path / "jobs"),
                       "--timeout-min", "10", "--", *SUBSET])
        return status, reports, json.loads((reports / "matrix.json").read_text())

    return run


def d1_cell(matrix: dict, model: str) -> dict:
    return next(c for c in matrix["claims"] if c["claim"] == "D1")["cells"][model]


def test_jobs_share_a_run_id_and_a_matrix_and_a_crashing_job_is_a_failed_column(launch, tiny_dirs, tmp_path):
    """One launch of three jobs (two tiny models and a directory whose config is broken): the two that ran
    share the run id and sit in the matrix beside the crashed one, whose column is marked failed."""
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    status, reports, matrix = launch(tiny_dirs["gpt2"], tiny_dirs["neox"], broken)
    assert status == 2  # a job failed
    run_ids = {json.loads((reports / name / "results.json").read_text())["run_id"]
               for name in ("tiny-gpt2", "tiny-neox")}
    assert len(run_ids) == 1 and matrix["run_id"] in run_ids
    failures = {m["model"]: m["failed"] for m in matrix["models"]}
    assert failures == {"tiny-gpt2": None, "tiny-neox": None, "broken-model": "failed (every claim test crashed)"}
    assert all(d1_cell(matrix, model)["verdict"] in DECIDED for model in ("tiny-gpt2", "tiny-neox"))
    markdown = (reports / "MATRIX.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| claim "))
    assert "tiny-gpt2" in header and "tiny-neox" in header
    assert "broken-model: failed (every claim test crashed)" in markdown
