"""pytest wiring for the suite: its options, seeds, the expectations (strict xfails) and the plugins.

    pytest claims/                         # the embedded model, smollm2-135m
    pytest claims/ --model pythia-2.8b     # a paper model (network or local HF cache)
    pytest claims/ -k "D1 or P1"           # claims by id (every claim test id starts with its claim)
    pytest claims/ --model smollm2-135m --model gemma3-270m [-n 2 --dist loadgroup]
                                           # several models: per-model fixtures, test ids, expectations
                                           # and reports, then reports/MATRIX.md

The suite's activation cache is ``--claims-cache DIR`` (pytest's own ``--cache-dir`` is its cache
plugin's); ``--refresh-claims-cache`` recomputes every entry.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.register_assert_rewrite("fixtures")

from fixtures.claims import claim_id, controls_first, expectation_key
from fixtures.report_plugin import ClaimReportPlugin, claim_test_id, model_of, report_key
from fixtures.settings import settings_from_options, settings_key
from harness.verdicts.declaration import Verdict
from harness.verdicts.declared import CLAIMS
from harness.verdicts.expectations import (
    ClaimInconclusive, ClaimNotReplicated, Expectation, expectations_path, load_expectations, model_file_stem,
)
from harness.models.loading import EMBEDDED_MODEL
from harness.reporting.report import ReportBuilder

ROOT = Path(__file__).parent
# Every module of fixtures/ is a plugin: a new fixture module is picked up without editing this list.
pytest_plugins = [f"fixtures.{path.stem}" for path in sorted((ROOT / "fixtures").glob("*.py")) if path.stem != "__init__"]
SEED = 0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sentiment-claims")
    group.addoption("--model", action="append", default=None,
                    help=f"model to replicate on (default {EMBEDDED_MODEL}): an embedded model (smollm2-135m, "
                         "gemma3-270m), a paper name such as gpt2-small or pythia-2.8b, a hub id owner/name, a local "
                         "HF model directory or a .gguf file; repeat it or give a comma-separated list for several")
    group.addoption("--device", default=None,
                    help="cpu, cuda, cuda:N or mps (default: cuda if present, else cpu); under pytest-xdist a "
                         "comma-separated list (cuda:0,cuda:1) is assigned to the workers in turn")
    group.addoption("--device-map", default=None, choices=("auto", "balanced"),
                    help="place one model's layers over the visible GPUs (Hugging Face accelerate); recorded in "
                         "the report")
    group.addoption("--claims-run-id", default=None,
                    help="the run's id, written into every model's results.json (default: a fresh one; "
                         "harness.reporting.launch passes one id to all its jobs)")
    group.addoption("--dtype", default="float32", help="float32 (default), float16 or bfloat16")
    group.addoption("--prepend-bos", default="true", choices=("true", "false"),
                    help="prepend BOS to every prompt (default true, as the paper's TransformerLens did)")
    group.addoption("--claims-cache", default=None,
                    help="directory of the suite's activation/direction cache (default: $SENTIMENT_CLAIMS_CACHE "
                         "or the user cache dir, ~/.cache/sentiment-claims)")
    group.addoption("--refresh-claims-cache", action="store_true", help="recompute every cached entry")
    group.addoption("--das-epochs", type=int, default=None,
                    help="DAS epoch cap (early stopping on held-out loss; default: 64 on paper models, 12 otherwise)")
    group.addoption("--das-batch-size", type=int, default=None,
                    help="DAS batch size (default: the paper's per-model size; 8 on other models)")
    group.addoption("--das-layers", default=None,
                    help="layers to fit DAS at: 'paper' (default, the authors' select_layers), 'all', or '0,3,6'")
    group.addoption("--report-dir", default=None, help="where <model>/REPORT.md is written (default: reports/)")
    group.addoption("--expectations-dir", default=None,
                    help="directory of <model>.toml expectations (default: claims/expectations/)")
    group.addoption("--sst-path", default=None,
                    help="directory of SST files in the shipped format (stsa.binary.train/.dev/.test, "
                         "'LABEL SENTENCE' per line; whichever exist). Default: the SST-2 files the suite ships")
    group.addoption("--transfer-data", action="append", default=None, metavar="PATH",
                    help="a transfer dataset file, or a directory of *.all / stsa.binary.* files, in the SST "
                         "format ('LABEL SENTENCE' per line), for the transfer claims G1-G3; repeatable. A dataset is "
                         "named by its file name without .all (mpqa.all: mpqa) and replaces a shipped one of that "
                         "name (shipped: mpqa, subj). Names starting with 'subj' are specificity controls (two "
                         "classes, no sentiment label); all others are sentiment data (1 positive, 0 negative)")
    group.addoption("--strict-verdicts", action="store_true",
                    help="an inconclusive claim (its 95%% CI straddles the threshold) fails the run "
                         "(default: it passes with the status 'inconclusive')")
    group.addoption("--update-expectations", action="store_true",
                    help="rewrite each model's expectations file (claims/expectations/<model>.toml) from this run: "
                         "an entry per row that does not replicate, reasons kept where the verdict is unchanged and "
                         "marked VERDICT CHANGED where it changed; the run itself checks no expectation")
    group.addoption("--seeds", type=int, default=1,
                    help="run the seeded parts (DAS and K-means init, random directions, sampling, bootstrap) "
                         "with seeds 0..N-1; the report shows each claim's verdict under each seed (default 1)")
    group.addoption("--threads", type=int, default=None,
                    help="torch CPU threads (default: all cores, split evenly between pytest-xdist workers)")
    group.addoption("--ablation-hook", default="resid_post", choices=("resid_post", "resid_pre"),
                    help="where the SST ablations apply layer L's direction (docs/PAPER.md §5.3): resid_post (default, "
                         "the authors' off-by-one: fitted at resid_pre L, applied at resid_post L) or resid_pre "
                         "(the boundary it was fitted at)")
    group.addoption("--summary-band", default=None,
                    help="layers START-END (inclusive) where the summarization-motif experiments resample value "
                         "vectors (docs/PAPER.md §5.7; default: the paper's 9-14 of 32 scaled to the model's depth)")


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_from_options(config, ROOT)
    config.stash[settings_key] = settings
    torch.set_num_threads(settings.threads)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    described = settings.describe() | {"seed": str(SEED)}
    builders = {name: ReportBuilder(model_name=name, settings=described, run_id=settings.run_id)
                for name in settings.model_names}
    config.stash[report_key] = builders
    config.pluginmanager.register(ClaimReportPlugin(builders, settings), "claim-report")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses the model runs once per ``--model`` (the session fixtures that depend on
    ``model_source`` are built per model; the test id carries the model). ``--seeds N``: every claim test
    runs under each seed (session fixtures that use ``suite_seed`` are rebuilt per seed)."""
    if "model_source" in metafunc.fixturenames:
        sources = metafunc.config.stash[settings_key].model_sources
        # ``--dist loadgroup`` runs all of a model's tests on one worker (``fixtures/xdist_models.py``).
        metafunc.parametrize("model_source", [pytest.param(source, id=model_file_stem(source.name))
                                              for source in sources], indirect=True, scope="session")
    seeds = metafunc.config.getoption("seeds")
    if seeds > 1 and "suite_seed" in metafunc.fixturenames and metafunc.definition.get_closest_marker("claim"):
        metafunc.parametrize("suite_seed", range(seeds), indirect=True, scope="session",
                             ids=[f"seed{seed}" for seed in range(seeds)])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Turn each expectation of a model into a strict xfail on that model's claim test that catches only
    ``ClaimNotReplicated`` (an unlisted row of a model with a file is expected to replicate); check that
    every claim test names a declared claim; run each control before the rows resting on it."""
    settings = config.stash[settings_key]
    updating = config.getoption("update_expectations")
    try:
        expectations = {name: {} if updating else load_expectations(settings.expectations_dir, name)
                        for name in settings.model_names}
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    for item in items:
        identifier = claim_id(item)
        if identifier is not None and identifier not in CLAIMS:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.claim({identifier!r}) is not declared in "
                                    f"harness/verdicts/declared.py")
        source = model_of(item)
        if source is None:
            continue
        expectation = expectations[source.name].get(claim_test_id(item))
        if expectation and identifier is None:
            raise pytest.UsageError(f"{expectation.path}: {expectation.test_id!r} is not a claim test (no claim marker)")
        path = expectations_path(settings.expectations_dir, source.name)
        if expectation is None and identifier is not None and path.is_file() and not updating:
            item.stash[expectation_key] = Expectation.unlisted(path, claim_test_id(item))
        if expectation:
            item.stash[expectation_key] = expectation
            if expectation.verdict in (Verdict.NOT_APPLICABLE, Verdict.NOT_INTERPRETABLE):
                continue
            raises = ClaimNotReplicated if expectation.verdict == Verdict.DOES_NOT_REPLICATE else ClaimInconclusive
            if raises is ClaimInconclusive and not config.getoption("strict_verdicts"):
                continue
            item.add_marker(pytest.mark.xfail(
                strict=True, raises=raises,
                reason=f"{identifier} ({CLAIMS[identifier].statement}) {expectation.verdict} on "
                       f"{source.name}: {expectation.describe()}; {expectation.reason}",
            ))
    controls_first(items)
