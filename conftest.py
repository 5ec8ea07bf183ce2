"""pytest wiring for the suite: its options, seeds, the expectations (strict xfails) and the plugins.

    pytest claims/                         # the embedded model, smollm2-135m
    pytest claims/ --model pythia-2.8b     # a paper model (network or local HF cache)
    pytest claims/ -k "D1 or P1"           # claims by id (every claim test id starts with its claim)

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

from fixtures.claims import claim_id, expectation_key
from fixtures.report_plugin import ClaimReportPlugin, claim_test_id, report_key
from fixtures.settings import settings_from_options, settings_key
from harness.claims_declared import CLAIMS
from harness.expectations import ClaimInconclusive, ClaimNotReplicated, load_expectations
from harness.models import EMBEDDED_MODEL
from harness.report import ReportBuilder

ROOT = Path(__file__).parent
# Every module of fixtures/ is a plugin: a new fixture module is picked up without editing this list.
pytest_plugins = [f"fixtures.{path.stem}" for path in sorted((ROOT / "fixtures").glob("*.py")) if path.stem != "__init__"]
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
    group.addoption("--strict-verdicts", action="store_true",
                    help="an inconclusive claim (its 95%% CI straddles the threshold) fails the run "
                         "(default: it passes with the status 'inconclusive')")
    group.addoption("--seeds", type=int, default=1,
                    help="run the seeded parts (DAS and K-means init, random directions, sampling, bootstrap) "
                         "with seeds 0..N-1; the report shows each claim's verdict under each seed (default 1)")
    group.addoption("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    group.addoption("--ablation-hook", default="resid_post", choices=("resid_post", "resid_pre"),
                    help="where the SST ablations apply layer L's direction (PAPER.md §5.3): resid_post (default, "
                         "the authors' off-by-one: fitted at resid_pre L, applied at resid_post L) or resid_pre "
                         "(the boundary it was fitted at)")
    group.addoption("--summary-band", default=None,
                    help="layers START-END (inclusive) where the summarization-motif experiments resample value "
                         "vectors (PAPER.md §5.7; default: the paper's 9-14 of 32 scaled to the model's depth)")


def pytest_configure(config: pytest.Config) -> None:
    settings = settings_from_options(config, ROOT)
    config.stash[settings_key] = settings
    torch.set_num_threads(settings.threads)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    builder = ReportBuilder(model_name=settings.model_name, settings=settings.describe() | {"seed": str(SEED)})
    config.stash[report_key] = builder
    config.pluginmanager.register(ClaimReportPlugin(builder, settings.report_dir), "claim-report")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``--seeds N``: every claim test runs under each seed (session fixtures that use ``suite_seed`` are
    rebuilt per seed; the rest are shared)."""
    seeds = metafunc.config.getoption("seeds")
    if seeds > 1 and "suite_seed" in metafunc.fixturenames and metafunc.definition.get_closest_marker("claim"):
        metafunc.parametrize("suite_seed", range(seeds), indirect=True, scope="session",
                             ids=[f"seed{seed}" for seed in range(seeds)])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Turn each expectation of this model into a strict xfail on its claim test that catches only
    ``ClaimNotReplicated``, and check that every claim test names a declared claim."""
    settings = config.stash[settings_key]
    try:
        expectations = load_expectations(settings.expectations_dir, settings.model_name)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    for item in items:
        identifier = claim_id(item)
        if identifier is not None and identifier not in CLAIMS:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.claim({identifier!r}) is not declared in "
                                    f"harness/claims_declared.py")
        expectation = expectations.get(claim_test_id(item.nodeid))
        if expectation and identifier is None:
            raise pytest.UsageError(f"claims/expectations: {expectation.test_id!r} is not a claim test (no claim marker)")
        if expectation:
            item.stash[expectation_key] = expectation
            raises = ClaimNotReplicated if expectation.verdict == "does not replicate" else ClaimInconclusive
            if raises is ClaimInconclusive and not config.getoption("strict_verdicts"):
                continue
            item.add_marker(pytest.mark.xfail(
                strict=True, raises=raises,
                reason=f"{identifier} ({CLAIMS[identifier].statement}) {expectation.verdict} on "
                       f"{settings.model_name}: {expectation.describe()}; {expectation.reason}",
            ))
