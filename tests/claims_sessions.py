"""Real pytest sessions of the claims in a subprocess, for the end-to-end tests: one or several ``--model``
values, a tiny selection of claims (``SELECTION``: D1 at layer 0, one DAS epoch), one thread.

Each session the end-to-end tests read is a session fixture below that *starts* it on ``session_workers``
and returns its ``Future``; a test reads ``.result()``. ``sessions_started_ahead`` (autouse in
``tests/conftest.py``) starts, before the first test of ``tests/`` runs, every session that a selected
test needs: a session spends most of its time on one core (imports, ``--threads 1``), so two at a time
run beside the in-process tests instead of after them. The fixtures are listed in ``STARTED_AHEAD`` in
the order they start; a session that reads another's result (the expectations written from the plain
session's rows) comes after it, so that no worker waits on a session that has not started.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

from harness.verdicts.declaration import Verdict

ROOT = Path(__file__).parents[1]
CLAIM_FILE = "claims/test_directions.py"
SELECTION = "d1 and layer0"
TIMEOUT_S = 600
PARALLEL_SESSIONS = 2  # the CI machine's cores


class Session(NamedTuple):
    result: subprocess.CompletedProcess
    reports: Path  # its --report-dir

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


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
    count_pattern = rf"(\d+) ({re.escape(Verdict.NOT_APPLICABLE)}|\w+)"  # the one status of two words
    counts = {word: int(number) for number, word in re.findall(count_pattern, summary[-1])}
    if "error" in counts:
        counts["errors"] = counts.pop("error")
    return counts


def run_claims(model: Path | list[Path], tmp_path: Path, claims_cache: Path, *extra: str,
               pythonpath: Path | None = None) -> Session:
    """The selection on ``model`` (or each of a list, in one session); returns the result and the report dir."""
    reports = tmp_path / "reports"
    models = [arg for path in (model if isinstance(model, list) else [model]) for arg in ("--model", str(path))]
    result = run_suite(
        CLAIM_FILE, "-k", SELECTION, "-p", "no:cacheprovider", *models, "--device", "cpu", "--claims-cache", str(claims_cache),
        "--report-dir", str(reports), "--das-epochs", "1", "--das-layers", "0", "--threads", "1", *extra,
        pythonpath=pythonpath,
    )
    return Session(result, reports)


def results_of(reports: Path, name: str) -> dict:
    return json.loads((reports / name / "results.json").read_text())


def names_of(models: list[Path]) -> list[str]:
    """The report names of local models: a GGUF file's stem, a directory's name."""
    return [model.stem if model.suffix == ".gguf" else model.name for model in models]


def expectation_entry(test_id: str, measured: float, low: float, high: float) -> str:
    """A ``does not replicate`` expectation recording ``measured``, with the band [low, high]."""
    return (f'["{test_id}"]\nverdict = "{Verdict.DOES_NOT_REPLICATE}"\nmeasured = {measured!r}\n'
            f'band = [{low!r}, {high!r}]\nreason = "test"\n\n')


DIE_PLUGIN = """
import os

from fixtures.report_plugin import model_of

def pytest_runtest_call(item):
    if model_of(item) is not None and model_of(item).name == "{model}":
        os._exit(3)
"""

CRASH_PLUGIN = """
import pytest

from fixtures.report_plugin import claim_test_id

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    if claim_test_id(item).endswith("{test}"):
        raise KeyError("a crash inside a claim test")
"""

BREAK_PLUGIN = """
import torch

def pytest_configure(config):
    import fixtures.model

    load = fixtures.model.load_model

    def load_broken(source, **kwargs):
        loaded = load(source, **kwargs)
        if source.name == "{model}":  # a processed weight perturbed after loading, as a wrong fold would
            weight = next(p for n, p in loaded.bridge.original_model.named_parameters() if p.dim() == 2 and ".0." in n)
            with torch.no_grad():
                weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)) * weight.std() / 2)
        return loaded

    fixtures.model.load_model = load_broken
"""

UNKNOWN_MODELS = ("no-such-model", "missing/dir/model.gguf")


class ExpectationsPlan(NamedTuple):
    """The plain session's rows chosen for the expectations session, and the band each was given."""

    in_band: dict
    out_of_band: dict
    crashed: dict
    passed: dict


# --- the sessions, started ahead --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def session_workers() -> Iterator[ThreadPoolExecutor]:
    """Runs ``PARALLEL_SESSIONS`` sessions at a time; at the end it drops those not yet running (after a ``-x``
    stop) and waits for the running ones."""
    workers = ThreadPoolExecutor(max_workers=PARALLEL_SESSIONS, thread_name_prefix="claims-session")
    yield workers
    workers.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def two_model_session(two_models: list[Path], claims_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                      session_workers: ThreadPoolExecutor) -> Future:
    """Session: both ``two_models`` in one plain session, read by every test that needs a plain session."""
    root = tmp_path_factory.mktemp("two-model-session")
    return session_workers.submit(lambda: run_claims(two_models, root, claims_cache, "-v"))


@pytest.fixture(scope="session")
def dying_worker_session(two_models: list[Path], claims_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                         session_workers: ThreadPoolExecutor) -> Future:
    """Session: ``-n 2 --dist loadgroup`` where the worker of the second model dies in its first claim test."""
    root = tmp_path_factory.mktemp("dying-worker-session")
    (root / "die_plugin.py").write_text(DIE_PLUGIN.format(model=names_of(two_models)[1]))
    return session_workers.submit(lambda: run_claims(two_models, root, claims_cache, "-n", "2", "--dist", "loadgroup",
                                            "-p", "die_plugin", "--max-worker-restart", "0", pythonpath=root))


@pytest.fixture(scope="session")
def broken_model_session(two_models: list[Path], claims_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                         session_workers: ThreadPoolExecutor) -> Future:
    """Session: both ``two_models``, the second's processed weights perturbed after loading (so it fails the
    fidelity check)."""
    root = tmp_path_factory.mktemp("broken-model-session")
    (root / "break_plugin.py").write_text(BREAK_PLUGIN.format(model=names_of(two_models)[1]))
    return session_workers.submit(lambda: run_claims(two_models, root, claims_cache, "-p", "break_plugin",
                                                     pythonpath=root))


@pytest.fixture(scope="session")
def seeds_session(tiny_gguf: Path, claims_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                  session_workers: ThreadPoolExecutor) -> Future:
    """Session: the GGUF under ``--seeds 2``."""
    root = tmp_path_factory.mktemp("seeds-session")
    return session_workers.submit(lambda: run_claims(tiny_gguf, root, claims_cache, "--seeds", "2", "-v"))


@pytest.fixture(scope="session")
def unknown_model_sessions(tmp_path_factory: pytest.TempPathFactory,
                           session_workers: ThreadPoolExecutor) -> dict[str, Future]:
    """Sessions: each of ``UNKNOWN_MODELS`` as the one ``--model`` (a usage error), by value."""
    def start(spec: str, root: Path) -> Future:
        return session_workers.submit(lambda: Session(run_suite(
            CLAIM_FILE, "-k", SELECTION, "-p", "no:cacheprovider", "--model", spec, "--claims-cache",
            str(root / "claims-cache"), "--report-dir", str(root / "reports")), root / "reports"))

    return {spec: start(spec, tmp_path_factory.mktemp("unknown-model")) for spec in UNKNOWN_MODELS}


@pytest.fixture(scope="session")
def unknown_among_several_session(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory,
                                  session_workers: ThreadPoolExecutor) -> Future:
    """Session: the GGUF and ``smollm2-135m,no-such-model``; its ``reports`` sits beside its (never made) cache."""
    root = tmp_path_factory.mktemp("unknown-among-several")
    return session_workers.submit(lambda: Session(run_suite(
        CLAIM_FILE, "-k", SELECTION, "-p", "no:cacheprovider", "--model", str(tiny_gguf),
        "--model", "smollm2-135m,no-such-model", "--claims-cache", str(root / "cache"),
        "--report-dir", str(root / "reports")), root / "reports"))


@pytest.fixture(scope="session")
def bad_transfer_data_session(claims_cache: Path, tmp_path_factory: pytest.TempPathFactory,
                              session_workers: ThreadPoolExecutor) -> Future:
    """Session: G1 with ``--transfer-data`` a file whose third line is blank (skipped) and whose fourth holds a
    label and no sentence; returns (session, the file)."""
    root = tmp_path_factory.mktemp("bad-transfer-data")
    bad = root / "reviews.all"
    bad.write_text("1 good\n0 bad\n\n1\n0 fine\n")
    return session_workers.submit(lambda: (Session(run_suite(
        "claims/test_transfer.py", "-k", "g1 and reviews and mean_diff", "-p", "no:cacheprovider",
        "--transfer-data", str(bad), "--claims-cache", str(claims_cache), "--report-dir", str(root / "reports"),
        "--device", "cpu", "--threads", "1"), root / "reports"), bad))


@pytest.fixture(scope="session")
def xdist_session(two_models: list[Path], two_model_session: Future, claims_cache: Path,
                  tmp_path_factory: pytest.TempPathFactory, session_workers: ThreadPoolExecutor) -> Future:
    """Session: ``-n 2 --dist loadgroup``, with an expectation for the first model's first non-replicating row
    of the plain session; returns (that row or None, the session)."""
    root = tmp_path_factory.mktemp("xdist-session")

    def start() -> tuple[dict | None, Session]:
        first = names_of(two_models)[0]
        rows = results_of(two_model_session.result().reports, first)["claims"]
        failing = next((row for row in rows if row["verdict"] == Verdict.DOES_NOT_REPLICATE), None)
        expectations = root / "expectations"
        expectations.mkdir()
        if failing is not None:
            value = failing["measured"]
            (expectations / f"{first}.toml").write_text(expectation_entry(failing["test_id"], value, value - 1, value + 1))
        return failing, run_claims(two_models, root, claims_cache, "-n", "2", "--dist", "loadgroup",
                                   "--expectations-dir", str(expectations))

    return session_workers.submit(start)


@pytest.fixture(scope="session")
def expectations_session(tiny_gguf: Path, two_model_session: Future, claims_cache: Path,
                         tmp_path_factory: pytest.TempPathFactory, session_workers: ThreadPoolExecutor) -> Future:
    """Session: the GGUF with expectations written from the plain session's rows: one in its band, one out of
    it, one on a test a plugin crashes, one on a row that did not fail to replicate. Returns (the plan, the
    session), or (None, None) when the tiny model gave fewer than 3 non-replicating rows or no other row."""
    root = tmp_path_factory.mktemp("expectations-session")

    def start() -> tuple[ExpectationsPlan | None, Session | None]:
        rows = results_of(two_model_session.result().reports, tiny_gguf.stem)["claims"]
        failed = [row for row in rows if row["verdict"] == Verdict.DOES_NOT_REPLICATE]
        passed = [row for row in rows if row["verdict"] != Verdict.DOES_NOT_REPLICATE]
        if len(failed) < 3 or not passed:
            return None, None
        plan = ExpectationsPlan(*failed[:3], passed[0])
        bands = {plan.in_band["test_id"]: (plan.in_band["measured"] - 1, plan.in_band["measured"] + 1),
                 plan.out_of_band["test_id"]: (plan.out_of_band["measured"] + 1, plan.out_of_band["measured"] + 2),
                 plan.crashed["test_id"]: (plan.crashed["measured"] - 1, plan.crashed["measured"] + 1),
                 plan.passed["test_id"]: (plan.passed["measured"] - 1, plan.passed["measured"] + 1)}
        expectations = root / "expectations"
        expectations.mkdir()
        (expectations / f"{tiny_gguf.stem}.toml").write_text(
            "".join(expectation_entry(test_id, (low + high) / 2, low, high) for test_id, (low, high) in bands.items()))
        (root / "crash_plugin.py").write_text(CRASH_PLUGIN.format(test=plan.crashed["test_id"].split("::", 1)[1]))
        return plan, run_claims(tiny_gguf, root / "second", claims_cache, "--expectations-dir", str(expectations),
                                "-p", "crash_plugin", "-rA", pythonpath=root)

    return session_workers.submit(start)


# Started in this order (a session that reads another's result after it).
STARTED_AHEAD = ("two_model_session", "dying_worker_session", "seeds_session", "unknown_model_sessions",
                 "unknown_among_several_session", "bad_transfer_data_session", "broken_model_session", "xdist_session",
                 "expectations_session")


@pytest.fixture(scope="session", autouse=True)
def sessions_started_ahead(request: pytest.FixtureRequest):
    """Start every session of ``STARTED_AHEAD`` that a selected test needs, before the first test runs."""
    wanted = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    for name in STARTED_AHEAD:
        if name in wanted:
            request.getfixturevalue(name)
