"""End to end: several ``--model`` values in one session, sequentially and on pytest-xdist workers.

Real pytest sessions in a subprocess (``tests/claims_sessions.py``) on two tiny random-weight models, a
GGUF file and a ``save_pretrained`` directory, check what the issue "Many models" asks of a user's run:

- one session runs every selected claim on each model: test ids carry the model, each model gets its
  own ``reports/<model>/`` (both with the session's run id) and the session writes ``MATRIX.md``;
- each model's expectations apply to its own tests only;
- ``-n 2 --dist loadgroup``: each model's tests run on one worker, the values equal the sequential
  session's, the controller writes the matrix;
- a worker that dies on one model leaves the other model's report and the matrix, with the dead
  model's column marked failed;
- an unknown model among several stops the session before any model loads;
- a model that fails the fidelity check errors each of its tests with one message, and the other model runs.
"""

from __future__ import annotations

import json
from concurrent.futures import Future

import pytest

from tests.claims_sessions import names_of, outcome_counts, results_of

pytestmark = pytest.mark.e2e


def measured(results: dict) -> dict[str, float]:
    return {row["test_id"]: row["measured"] for row in results["claims"]}


def test_one_session_runs_every_model_with_its_own_report(two_models, two_model_session: Future) -> None:
    result, reports = two_model_session.result()
    output = result.stdout + result.stderr
    assert result.returncode in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), output[-6000:]
    assert outcome_counts(output).get("errors", 0) == 0, output[-6000:]
    runs = {name: results_of(reports, name) for name in names_of(two_models)}
    for name, results in runs.items():
        assert f"test_d1_methods_agree[{name}-layer0-" in result.stdout, result.stdout[-3000:]
        assert results["model"] == name and results["claims"], results
        assert all("layer0" in row["test_id"] and name not in row["test_id"] for row in results["claims"])
    assert len({results["run_id"] for results in runs.values()}) == 1
    assert set(measured(runs[names_of(two_models)[0]])) == set(measured(runs[names_of(two_models)[1]]))
    matrix = json.loads((reports / "matrix.json").read_text())
    assert (reports / "MATRIX.md").is_file() and all(name in (reports / "MATRIX.md").read_text()
                                                     for name in runs)
    assert "replication matrix" in result.stdout, result.stdout[-2000:]
    assert matrix, matrix


def test_xdist_workers_run_one_model_each_with_the_sequential_values_and_own_expectations(
        two_models, two_model_session: Future, xdist_session: Future) -> None:
    """``-n 2 --dist loadgroup``; an expectation written for the first model's first non-replicating row
    xfails that model's test and leaves the second model's same test as it was."""
    _, sequential_reports = two_model_session.result()
    failing, (result, reports) = xdist_session.result()
    first, second = names_of(two_models)
    output = result.stdout + result.stderr
    assert result.returncode in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), output[-6000:]
    assert "2 workers" in output, output[-3000:]
    assert outcome_counts(output).get("errors", 0) == 0, output[-6000:]
    for name in (first, second):
        assert measured(results_of(reports, name)) == measured(results_of(sequential_reports, name))
    assert results_of(reports, first)["run_id"] == results_of(reports, second)["run_id"]
    assert (reports / "MATRIX.md").is_file()
    if failing is not None:
        outcome = {row["test_id"]: row["outcome"] for row in results_of(reports, first)["claims"]}
        other = {row["test_id"]: row["outcome"] for row in results_of(reports, second)["claims"]}
        assert outcome[failing["test_id"]] == "xfailed"
        assert other[failing["test_id"]] != "xfailed"


def test_a_worker_that_dies_leaves_the_other_models_report_and_the_matrix(
        two_models, dying_worker_session: Future) -> None:
    first, second = names_of(two_models)
    session = dying_worker_session.result()
    assert "crashed" in session.output, session.output[-6000:]
    assert results_of(session.reports, first)["claims"], session.output[-6000:]
    matrix = (session.reports / "MATRIX.md").read_text()
    assert first in matrix and second in matrix
    assert "failed" in matrix.split(second, 1)[1], matrix


def test_an_unknown_model_among_several_stops_the_session_before_any_model_loads(
        unknown_among_several_session: Future) -> None:
    session = unknown_among_several_session.result()
    assert session.result.returncode == pytest.ExitCode.USAGE_ERROR, session.output[-3000:]
    assert "unknown --model 'no-such-model'" in session.output
    assert not session.reports.exists() and not (session.reports.parent / "cache").exists()


def test_a_model_that_fails_the_fidelity_check_errors_its_own_tests_and_the_other_runs(
        two_models, broken_model_session: Future) -> None:
    """The second model's processed weights are perturbed after loading (``BREAK_PLUGIN``): every one of its
    tests errors with the check's message, the first model's run as usual, and both reports record the check."""
    result, reports = broken_model_session.result()
    output = result.stdout + result.stderr
    good, broken = names_of(two_models)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output[-6000:]
    errored = [line for line in result.stdout.splitlines() if line.startswith("ERROR claims/")]
    assert errored and all(f"[{broken}-" in line for line in errored), output[-6000:]
    message = (f"fidelity check failed on {broken}: the processed TransformerBridge's next-token log-probabilities "
               "differ from the unprocessed Hugging Face model's by up to ")
    # Each error's own section, not the short summary: pytest truncates a summary line to the terminal's
    # width except under CI (``CI`` set), where the message appears there a second time.
    reported = [line for line in output.splitlines() if message in line and not line.startswith("ERROR ")]
    assert len(reported) == len(errored), output[-6000:]
    assert len({line.split(message, 1)[1] for line in reported}) == 1
    assert outcome_counts(output)["errors"] == len(errored)
    good_results = results_of(reports, good)
    assert good_results["claims"] and good_results["environment"]["fidelity"].startswith("max |Δ log p| = ")
    assert not good_results["environment"]["fidelity"].endswith("FAILED")
    broken_results = results_of(reports, broken)
    assert broken_results["environment"]["fidelity"].endswith(": FAILED") and not broken_results["claims"]
    assert all(message in row["note"] for row in broken_results["not_measured"])
