"""End to end: ``pytest claims/ --model <local file or directory>`` runs claims, in a real pytest session.

Covers the bug where ``--model path/to/model.gguf`` (or a save_pretrained directory) errored on every
claim: the settings kept only the display name and the model fixture resolved that name again. The
sessions here are ``python -m pytest claims/test_directions.py -k "d1 and layer0"`` in a subprocess from
the repository root with tiny random-weight models, started ahead of the tests by the session fixtures of
``tests/claims_sessions.py`` (the two local forms share one session, ``two_model_session``), and the
checks are that

- the session collected and ran claim tests (exit code 0 or 1: random weights may fail claims), with
  no collection or usage error and no error in setup or teardown (``0 errors``), at least one claim
  passed, failed or xfailed;
- ``<report-dir>/<name>/results.json`` exists, names the model by the file's stem / the directory's
  name, has at least one claim row, and records the local path the weights were loaded from.

The two local forms: a ``.gguf`` file (a 2-layer Llama with grouped-query attention written by
``tests/tiny_gguf.py`` with the SmolLM2 tokenizer copied from the embedded GGUF; the suite converts it
into the claims cache) and a ``save_pretrained`` directory (the tiny GPT-2 of ``tests/conftest.py``).
A third test checks that an unknown ``--model`` value stops the session with exit code 4 (usage
error), naming the accepted forms. Each session takes seconds (tiny models, 1 DAS epoch at layer 0,
one thread).
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import Future
from pathlib import Path

import pytest

from harness.models.loading import load_model, resolve_model
from harness.verdicts.declaration import Verdict
from tests.claims_sessions import UNKNOWN_MODELS, outcome_counts
from tests.tiny_gguf import D_MODEL, N_HEADS, N_KV_HEADS, N_LAYERS

pytestmark = pytest.mark.e2e


def check_session(result: subprocess.CompletedProcess, reports: Path, model: Path, name: str) -> None:
    output = result.stdout + result.stderr
    context = f"exit code {result.returncode}; output tail:\n{output[-6000:]}"
    assert result.returncode in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), context
    counts = outcome_counts(output)
    assert counts.get("errors", 0) == 0, context
    ran = sum(counts.get(status, 0)
              for status in ("passed", "failed", "xfailed", Verdict.INCONCLUSIVE, Verdict.NOT_APPLICABLE))
    assert ran >= 1, context

    results_file = reports / name / "results.json"
    assert results_file.is_file(), f"no {results_file}; {context}"
    results = json.loads(results_file.read_text())
    assert results["model"] == name
    assert results["claims"], f"no claim rows in {results_file}"
    assert all(row["test_id"].startswith("test_directions.py::test_d1_") for row in results["claims"])
    assert all("layer0" in row["test_id"] for row in results["claims"])
    # The weights came from the path given, not from a name resolved again.
    assert str(model.resolve()) in json.dumps(results["environment"]), results["environment"]


def test_tiny_gguf_loads_through_the_suite_path(tiny_gguf: Path, claims_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny GGUF is a valid model for transformers' GGUF loader and the suite's bridge."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = resolve_model(str(tiny_gguf))
    assert (source.kind, source.name, source.location) == ("gguf", tiny_gguf.stem, str(tiny_gguf.resolve()))
    loaded = load_model(source, device="cpu", dtype="float32", cache_dir=claims_cache)
    cfg = loaded.bridge.cfg
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads) == (N_LAYERS, D_MODEL, N_HEADS)
    assert getattr(cfg, "n_key_value_heads", N_KV_HEADS) == N_KV_HEADS
    assert loaded.info["architecture"] == "LlamaForCausalLM"
    tokens = loaded.tokenizer(" The movie was great", return_tensors="pt").input_ids
    assert loaded.bridge(tokens).shape == (1, tokens.shape[1], len(loaded.tokenizer))


def test_claims_run_on_a_gguf_file_and_a_save_pretrained_directory(two_models: list[Path],
                                                                    two_model_session: Future) -> None:
    """Both local forms in one session (``two_model_session``): each has its own report, which records the
    path its weights came from."""
    gguf, directory = two_models
    check_session(*two_model_session.result(), gguf, gguf.stem)
    check_session(*two_model_session.result(), directory, directory.name)


@pytest.mark.parametrize("spec, message", zip(UNKNOWN_MODELS, ["unknown --model 'no-such-model'", "no such GGUF file"]))
def test_unknown_model_is_a_usage_error(spec: str, message: str, unknown_model_sessions: dict[str, Future]) -> None:
    session = unknown_model_sessions[spec].result()
    output = session.output
    assert session.result.returncode == pytest.ExitCode.USAGE_ERROR, f"exit code {session.result.returncode}:\n{output[-4000:]}"
    assert message in output, output[-4000:]
    if spec == "no-such-model":
        for form in ("smollm2-135m", "gpt2-small", "owner/name", "config.json", ".gguf"):
            assert form in output, f"{form!r} missing from the accepted forms:\n{output[-4000:]}"
    assert not session.reports.exists()


def test_expectations_catch_only_the_claims_own_verdict(tiny_gguf: Path, two_model_session: Future,
                                                       expectations_session: Future) -> None:
    """An expectation turns a non-replication (value in its band) into an xfail; a value outside the band,
    a crash, or a claim whose verdict is another one is a failure, never "expected". Inconclusive rows
    pass with their own status in the terminal summary. The expectations are written from the plain
    session's rows (the GGUF's, in ``two_model_session``), then a second session runs with them
    (``expectations_session``)."""
    first, reports = two_model_session.result()
    rows = json.loads((reports / tiny_gguf.stem / "results.json").read_text())["claims"]
    assert all(row["verdict"] in tuple(Verdict)
               and all(isinstance(row[key], (int, float)) for key in ("measured", "ci_low", "ci_high", "threshold", "n"))
               and row["passes_when"] in ("above", "below", "abs_below") for row in rows), rows
    if any(row["verdict"] == Verdict.INCONCLUSIVE for row in rows):
        assert re.search(rf"\d+ {Verdict.INCONCLUSIVE}", first.stdout), first.stdout[-3000:]
    plan, second = expectations_session.result()
    if plan is None:
        failed = sum(row["verdict"] == Verdict.DOES_NOT_REPLICATE for row in rows)
        pytest.skip(f"the tiny model gave {failed} non-replicating and {len(rows) - failed} other rows; need 3 and 1")
    output = second.output
    results = json.loads((second.reports / tiny_gguf.stem / "results.json").read_text())
    outcomes = {row["test_id"]: row["outcome"] for row in results["claims"] + results["not_measured"]}
    assert outcomes[plan.in_band["test_id"]] == "xfailed", output[-4000:]
    assert outcomes[plan.out_of_band["test_id"]] == "failed" and "outside the band" in output, output[-4000:]
    assert outcomes[plan.crashed["test_id"]] == "failed" and "a crash inside a claim test" in output, output[-4000:]
    assert outcomes[plan.passed["test_id"]] == "failed" and "expected 'does not replicate'" in output, output[-4000:]
    assert second.result.returncode == pytest.ExitCode.TESTS_FAILED


def test_seeds_rerun_the_claims_and_the_report_tables_verdict_stability(tiny_gguf: Path, seeds_session: Future) -> None:
    """``--seeds 2``: every claim test runs under seeds 0 and 1 (ids gain ``seedK``); results.json keeps
    seed 0's rows under ``claims`` and every seed's verdict under ``seeds``; REPORT.md has the table."""
    result, reports = seeds_session.result()
    check_session(result, reports, tiny_gguf, tiny_gguf.stem)
    assert "seed0" in result.stdout and "seed1" in result.stdout, result.stdout[-3000:]
    results = json.loads((reports / tiny_gguf.stem / "results.json").read_text())
    assert results["seeds"]["seeds"] == [0, 1]
    assert all("seed" not in row["test_id"] for row in results["claims"])
    assert all(set(runs) == {"0", "1"} for runs in results["seeds"]["by_test"].values()), results["seeds"]
    assert "Verdict stability over seeds" in (reports / tiny_gguf.stem / "REPORT.md").read_text()
