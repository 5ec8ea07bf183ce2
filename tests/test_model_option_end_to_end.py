"""End to end: ``pytest claims/ --model <local file or directory>`` runs claims, in a real pytest session.

Covers the bug where ``--model path/to/model.gguf`` (or a save_pretrained directory) errored on every
claim: the settings kept only the display name and the model fixture resolved that name again. The
sessions here are ``python -m pytest claims/test_directions.py -k "d1 and layer0"`` in a subprocess from
the repository root with tiny random-weight models (the two local forms share one session,
``two_model_session`` of ``tests/conftest.py``), and the checks are that

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
from pathlib import Path

import pytest

from harness.models import load_model, resolve_model
from tests.claims_sessions import CLAIM_FILE, SELECTION, outcome_counts, run_claims, run_suite
from tests.tiny_gguf import D_MODEL, N_HEADS, N_KV_HEADS, N_LAYERS



def check_session(result: subprocess.CompletedProcess, reports: Path, model: Path, name: str) -> None:
    output = result.stdout + result.stderr
    context = f"exit code {result.returncode}; output tail:\n{output[-6000:]}"
    assert result.returncode in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), context
    counts = outcome_counts(output)
    assert counts.get("errors", 0) == 0, context
    ran = sum(counts.get(status, 0) for status in ("passed", "failed", "xfailed", "inconclusive", "not applicable"))
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


def test_claims_run_on_a_gguf_file_and_a_save_pretrained_directory(
        two_models: list[Path], two_model_session: tuple[subprocess.CompletedProcess, Path]) -> None:
    """Both local forms in one session (``tests/conftest.py``'s ``two_model_session``): each has its own
    report, which records the path its weights came from."""
    gguf, directory = two_models
    check_session(*two_model_session, gguf, gguf.stem)
    check_session(*two_model_session, directory, directory.name)


@pytest.mark.parametrize("spec, message", [
    ("no-such-model", "unknown --model 'no-such-model'"),
    ("missing/dir/model.gguf", "no such GGUF file"),
])
def test_unknown_model_is_a_usage_error(spec: str, message: str, tmp_path: Path) -> None:
    result = run_suite(CLAIM_FILE, "-k", SELECTION, "-p", "no:cacheprovider", "--model", spec,
                       "--claims-cache", str(tmp_path / "claims-cache"), "--report-dir", str(tmp_path / "reports"))
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, f"exit code {result.returncode}:\n{output[-4000:]}"
    assert message in output, output[-4000:]
    if spec == "no-such-model":
        for form in ("smollm2-135m", "gpt2-small", "owner/name", "config.json", ".gguf"):
            assert form in output, f"{form!r} missing from the accepted forms:\n{output[-4000:]}"
    assert not (tmp_path / "reports").exists()


CRASH_PLUGIN = """
import pytest

from fixtures.report_plugin import claim_test_id

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if claim_test_id(item).endswith("{test}"):
        raise KeyError("a crash inside a claim test")
"""


def test_expectations_catch_only_the_claims_own_verdict(tiny_gguf: Path, tmp_path: Path, claims_cache: Path,
                                                       two_model_session: tuple[subprocess.CompletedProcess, Path]) -> None:
    """An expectation turns a non-replication (value in its band) into an xfail; a value outside the band,
    a crash, or a claim whose verdict is another one is a failure, never "expected". Inconclusive rows
    pass with their own status in the terminal summary. The expectations are written from the plain
    session's rows (the GGUF's, in ``two_model_session``), then a second session runs with them."""
    first, reports = two_model_session
    rows = json.loads((reports / tiny_gguf.stem / "results.json").read_text())["claims"]
    assert all(row["verdict"] in ("replicates", "does not replicate", "inconclusive", "not applicable")
               and all(isinstance(row[key], (int, float)) for key in ("measured", "ci_low", "ci_high", "threshold", "n"))
               and row["passes_when"] in ("above", "below", "abs_below") for row in rows), rows
    if any(row["verdict"] == "inconclusive" for row in rows):
        assert re.search(r"\d+ inconclusive", first.stdout), first.stdout[-3000:]
    failed = [row for row in rows if row["verdict"] == "does not replicate"]
    passed = [row for row in rows if row["verdict"] != "does not replicate"]
    if len(failed) < 3 or not passed:
        pytest.skip(f"the tiny model gave {len(failed)} non-replicating and {len(passed)} other rows; need 3 and 1")
    in_band, out_of_band, crashed = failed[:3]
    entries = {in_band["test_id"]: (in_band["measured"] - 1, in_band["measured"] + 1),
               out_of_band["test_id"]: (out_of_band["measured"] + 1, out_of_band["measured"] + 2),
               crashed["test_id"]: (crashed["measured"] - 1, crashed["measured"] + 1),
               passed[0]["test_id"]: (passed[0]["measured"] - 1, passed[0]["measured"] + 1)}
    expectations = tmp_path / "expectations"
    expectations.mkdir()
    (expectations / f"{tiny_gguf.stem}.toml").write_text("".join(
        f'["{test_id}"]\nverdict = "does not replicate"\nmeasured = {(low + high) / 2!r}\n'
        f'band = [{low!r}, {high!r}]\nreason = "test"\n\n' for test_id, (low, high) in entries.items()))
    (tmp_path / "crash_plugin.py").write_text(CRASH_PLUGIN.format(test=crashed["test_id"].split("::", 1)[1]))

    second, reports = run_claims(tiny_gguf, tmp_path / "second", claims_cache, "--expectations-dir",
                                 str(expectations), "-p", "crash_plugin", "-rA", pythonpath=tmp_path)
    output = second.stdout + second.stderr
    results = json.loads((reports / tiny_gguf.stem / "results.json").read_text())
    outcomes = {row["test_id"]: row["outcome"] for row in results["claims"] + results["not_measured"]}
    assert outcomes[in_band["test_id"]] == "xfailed", output[-4000:]
    assert outcomes[out_of_band["test_id"]] == "failed" and "outside the band" in output, output[-4000:]
    assert outcomes[crashed["test_id"]] == "failed" and "a crash inside a claim test" in output, output[-4000:]
    assert outcomes[passed[0]["test_id"]] == "failed" and "its expectation records" in output, output[-4000:]
    assert second.returncode == pytest.ExitCode.TESTS_FAILED


def test_seeds_rerun_the_claims_and_the_report_tables_verdict_stability(tiny_gguf: Path, tmp_path: Path,
                                                                         claims_cache: Path) -> None:
    """``--seeds 2``: every claim test runs under seeds 0 and 1 (ids gain ``seedK``); results.json keeps
    seed 0's rows under ``claims`` and every seed's verdict under ``seeds``; REPORT.md has the table."""
    result, reports = run_claims(tiny_gguf, tmp_path, claims_cache, "--seeds", "2", "-v")
    check_session(result, reports, tiny_gguf, tiny_gguf.stem)
    assert "seed0" in result.stdout and "seed1" in result.stdout, result.stdout[-3000:]
    results = json.loads((reports / tiny_gguf.stem / "results.json").read_text())
    assert results["seeds"]["seeds"] == [0, 1]
    assert all("seed" not in row["test_id"] for row in results["claims"])
    assert all(set(runs) == {"0", "1"} for runs in results["seeds"]["by_test"].values()), results["seeds"]
    assert "Verdict stability over seeds" in (reports / tiny_gguf.stem / "REPORT.md").read_text()
