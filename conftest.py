"""pytest wiring for the suite: options, seeds, expectations (strict xfails) and the report writer.

    pytest claims/                         # the embedded model, smollm2-135m
    pytest claims/ --model pythia-2.8b     # a paper model (network or local HF cache)
    pytest claims/ -k "D1 or P1"           # claims by id (every claim test id starts with its claim)

The suite's activation cache is ``--claims-cache DIR`` (pytest's own ``--cache-dir`` is its cache
plugin's); ``--refresh-claims-cache`` recomputes every entry.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.expectations import load_expectations, model_file_stem
from harness.models import EMBEDDED_MODEL, ModelSpecError, resolve_device, resolve_dtype, resolve_model
from harness.report import ClaimOutcome, ReportBuilder
from fixtures.settings import SuiteSettings, report_key, settings_key

pytest_plugins = [
    "fixtures.model",
    "fixtures.toy_movie_review",
    "fixtures.directions",
    "fixtures.sst",
    "fixtures.sst_experiments",
    "fixtures.toy_mood_story",
    "fixtures.circuit",
    "fixtures.natural_text",
    "fixtures.claims",
]

ROOT = Path(__file__).parent
SEED = 0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sentiment-claims")
    group.addoption("--model", default=EMBEDDED_MODEL,
                    help=f"model to replicate on (default {EMBEDDED_MODEL}): a paper name such as gpt2-small or "
                         "pythia-2.8b, a hub id owner/name, a local HF model directory or a .gguf file")
    group.addoption("--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda if present, else cpu)")
    group.addoption("--dtype", default="float32", help="float32 (default), float16 or bfloat16")
    group.addoption("--prepend-bos", default="true", choices=("true", "false"),
                    help="prepend BOS to every prompt (default true, as the paper's TransformerLens did)")
    group.addoption("--claims-cache", default=None,
                    help="directory of the suite's activation/direction cache (default: $SENTIMENT_CLAIMS_CACHE "
                         "or the user cache dir, ~/.cache/sentiment-claims)")
    group.addoption("--refresh-claims-cache", action="store_true", help="recompute every cached entry")
    group.addoption("--das-epochs", type=int, default=None,
                    help="DAS epochs (default: 64 on paper models, 8 otherwise)")
    group.addoption("--das-batch-size", type=int, default=None,
                    help="DAS batch size (default: the paper's per-model size; 8 on other models)")
    group.addoption("--das-layers", default=None,
                    help="layers to fit DAS at: 'paper' (default, the authors' select_layers), 'all', or '0,3,6'")
    group.addoption("--report-dir", default=str(ROOT / "reports"), help="where reports/<model>/ is written")
    group.addoption("--sst-path", default=None,
                    help="directory of SST files in the shipped format (stsa.binary.train/.dev/.test, "
                         "'LABEL SENTENCE' per line; whichever exist). Default: the SST-2 files the suite ships")
    group.addoption("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    group.addoption("--ablation-hook", default="resid_post", choices=("resid_post", "resid_pre"),
                    help="where the SST ablations apply layer L's direction (PAPER.md §5.3): resid_post (default, "
                         "the authors' off-by-one: fitted at resid_pre L, applied at resid_post L) or resid_pre "
                         "(the boundary it was fitted at)")
    group.addoption("--summary-band", default=None,
                    help="layers START-END (inclusive) where the summarization-motif experiments resample value "
                         "vectors (PAPER.md §5.7; default: the paper's 9-14 of 32 scaled to the model's depth)")


def pytest_configure(config: pytest.Config) -> None:
    try:
        source = resolve_model(config.getoption("--model"))
        device = resolve_device(config.getoption("--device"))
        dtype = config.getoption("--dtype")
        resolve_dtype(dtype)
    except ModelSpecError as error:
        raise pytest.UsageError(str(error)) from None
    for option in ("--das-epochs", "--das-batch-size", "--threads"):
        value = config.getoption(option)
        if value is not None and value < 1:
            raise pytest.UsageError(f"{option} must be a positive integer; got {value}")
    cache = config.getoption("--claims-cache") or os.environ.get("SENTIMENT_CLAIMS_CACHE")
    if cache is None:
        from harness.models import default_cache_dir

        cache = default_cache_dir()
    threads = config.getoption("--threads") or os.cpu_count() or 1
    settings = SuiteSettings(
        model=source.name if source.kind != "hub" else source.location,
        device=device,
        dtype=dtype,
        prepend_bos=config.getoption("--prepend-bos") == "true",
        cache_dir=Path(cache),
        refresh_cache=config.getoption("--refresh-claims-cache"),
        das_epochs=config.getoption("--das-epochs"),
        das_batch_size=config.getoption("--das-batch-size"),
        das_layers=config.getoption("--das-layers"),
        report_dir=Path(config.getoption("--report-dir")),
        threads=threads,
        sst_path=Path(config.getoption("--sst-path")) if config.getoption("--sst-path") else None,
        ablation_hook=config.getoption("--ablation-hook"),
        summary_band=_summary_band(config.getoption("--summary-band")),
    )
    config.stash[settings_key] = settings
    torch.set_num_threads(threads)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    builder = ReportBuilder(
        model_name=settings.model,
        settings={k: str(v) for k, v in settings.__dict__.items()} | {"seed": SEED},
    )
    config.stash[report_key] = builder
    config.pluginmanager.register(ClaimReportPlugin(builder, settings), "claim-report")


def _summary_band(text: str | None) -> tuple[int, int] | None:
    from harness.value_patching import parse_layer_band

    try:
        return None if text is None else parse_layer_band(text)
    except ValueError as error:
        raise pytest.UsageError(f"--summary-band: {error}") from None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Turn each expectation of this model into a strict xfail on its claim test."""
    settings = config.stash[settings_key]
    try:
        expectations = load_expectations(ROOT / "claims" / "expectations", settings.model)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    for item in items:
        expectation = expectations.get(_claim_test_id(item))
        if expectation:
            item.add_marker(pytest.mark.xfail(
                strict=True,
                reason=f"does not replicate on {settings.model}: measured {expectation.measured}; {expectation.reason}",
            ))


def _claim_test_id(item: pytest.Item) -> str:
    return item.nodeid.split("claims/", 1)[-1]


def _is_claim(nodeid: str) -> bool:
    return nodeid.startswith("claims/") or "/claims/" in nodeid


class ClaimReportPlugin:
    """Collects each claim test's record and outcome, and writes the report at session end."""

    def __init__(self, builder: ReportBuilder, settings: SuiteSettings):
        self.builder = builder
        self.settings = settings
        self.durations: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not _is_claim(report.nodeid):
            return
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.when != "call" and report.passed:
            return
        if report.when == "teardown":
            return
        record = next((value for name, value in report.user_properties if name == "claim_record"), None)
        if hasattr(report, "wasxfail"):
            status, note = ("xfailed" if report.skipped else "xpassed"), report.wasxfail
        elif report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
            status, note = "xpassed", str(report.longrepr)
        elif report.skipped:
            status = "skipped"
            note = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        else:
            status = report.outcome
            note = "" if report.passed else _failure_summary(report)
        self.builder.outcomes.append(
            ClaimOutcome(_claim_test_id(report), status, self.durations[report.nodeid], record, note)
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.builder.outcomes:
            return
        path = self.builder.write(self.settings.report_dir / model_file_stem(self.settings.model))
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        if terminal:
            terminal.write_line(f"replication report: {path}")


def _failure_summary(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return (crash.message if crash else str(report.longrepr)).splitlines()[0][:300]
