"""§5.5: adding the sentiment direction during generation steers the sentiment of the continuation.

Setup as the authors' ``projection_neuroscope.py`` (PAPER.md §5.5): coef × the unit K-means direction of
the early layer (the paper: layer 1 of gpt2-small, added at ``blocks.0.hook_resid_post``, which is
the same residual as ``blocks.1.hook_resid_pre``) is added at every position, and the hook stays on
while the model generates: 20 samples per coefficient (top-k 10, temperature 1, 30 new tokens,
seed 0) on the paper's positive prompt, used as plain text on every model (SmolLM2 is an Instruct
model; no chat template). Coefficients: on gpt2-small the paper's integers, 0 to -20 at every second
value; elsewhere the same 11-point grid scaled so that the strongest |coef| is half the median
residual norm at the hook over the prompt's tokens (BOS left out). The cut-off is the suite's choice:
at the full residual norm SmolLM2's continuations degenerated into non-words when this was set up. Every
coefficient reuses seed 0, so the samples of different coefficients share their random draws.

Continuations (without the prompt) are labelled with VADER's compound score instead of GPT-4
(``harness/lexicon.py``). Generation keeps the key/value cache on with the suite's fix for the
TransformerLens 4.3 cache bug (``harness/generation.py``; ``tests/test_generation.py`` shows it equals
generation without the cache token for token).

- S1 (the paper's figure, qualitatively, PAPER.md §6.5): the share of negative continuations rises
  with |coef| (Spearman rho >= 0.8), exceeds 50% at the strongest coefficient and is <= 20% at 0.
- S1 mirror (added by the suite): a negative prompt steered with positive coefficients, the positive
  share measured the same way.
"""

from __future__ import annotations

import pytest
from scipy.stats import spearmanr

from harness.lexicon import LABEL_NAMES

RUNS = ["paper prompt, steered negative", "mirror prompt, steered positive"]
RUN_IDS = ["paper_prompt", "mirror"]
CASES = {RUNS[0]: None, RUNS[1]: "mirror"}  # the mirror's paper value: "not in the paper"


def _details(run, steering) -> str:
    shares = ", ".join(f"{c:+.1f}: {s:.2f}" for c, s in zip(run.coefficients, run.share(run.target).tolist()))
    return f"{LABEL_NAMES[run.target]} share by coefficient at `{steering.hook}`: {shares}"


@pytest.mark.claim("S1")
@pytest.mark.parametrize("run_name", RUNS, ids=RUN_IDS)
def test_s1_steered_share_rises_with_coefficient(run_name, steering, claim):
    run = steering.runs[run_name]
    rho = float(spearmanr([abs(c) for c in run.coefficients], run.share(run.target).numpy()).statistic)
    claim.check(rho, case=CASES[run_name],
                description=f"{run_name}: Spearman rho, coefficient magnitude vs {LABEL_NAMES[run.target]} share",
                details=_details(run, steering))


def _check_share(claim, steering, run_name: str, index: int, coefficient: str) -> None:
    """The steered-to label's share at coefficient ``index`` of the run, in %."""
    run = steering.runs[run_name]
    share = float(run.share(run.target)[index])
    claim.check(100 * share, case=CASES[run_name],
                description=f"{run_name}: {LABEL_NAMES[run.target]} share at coef {coefficient}",
                details=_details(run, steering))


@pytest.mark.claim("S1.strongest")
@pytest.mark.parametrize("run_name", RUNS, ids=RUN_IDS)
def test_s1_strongest_coefficient_steers_most_samples(run_name, steering, claim):
    _check_share(claim, steering, run_name, -1, f"{steering.runs[run_name].coefficients[-1]:+.2f}")


@pytest.mark.claim("S1.unsteered")
@pytest.mark.parametrize("run_name", RUNS, ids=RUN_IDS)
def test_s1_unsteered_share_is_low(run_name, steering, claim):
    _check_share(claim, steering, run_name, 0, "0")
