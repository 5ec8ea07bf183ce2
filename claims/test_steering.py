"""§5.5: adding the sentiment direction during generation steers the sentiment of the continuation.

Setup as the authors' ``projection_neuroscope.py`` (docs/PAPER.md §5.5): coef × the unit K-means direction of
the early layer (the paper: layer 1 of gpt2-small, added at ``blocks.0.hook_resid_post``, which is
the same residual as ``blocks.1.hook_resid_pre``) is added at every position, and the hook stays on
while the model generates (top-k 10, temperature 1, 30 new tokens, the paper's settings) on the
paper's positive prompt, used as plain text on every model (SmolLM2 is an Instruct model; no chat
template). The suite adds the mirror: a negative prompt steered positive, measured the same way.

Pre-registered grid (S1's declared protocol, ``STEERING_PROTOCOL``, fixed before measuring): 50
samples per coefficient at the fractions 0, 0.25, 0.5, 0.75 and 1 of a scale. The scale is the median
residual norm at the hook over the paper prompt's tokens (BOS left out): the grid then spans edits
from none to one as large as the residual itself, beyond which the added direction would dominate the
stream. On gpt2-small the scale is the paper's strongest integer coefficient (20), so the grid is 0,
5, 10, 15, 20. This replaces the earlier 11-point grid scaled to 0.5 × the norm, a fraction that was
picked after seeing degenerate outputs at the full norm. Sampling is seeded by the paper's seed +
``suite_seed`` (seed 0: the paper's); every coefficient reuses that seed, so samples at the same
position share their random draws across coefficients.

Continuations (without the prompt) are labelled with VADER's compound score instead of GPT-4
(``harness/datasets/lexicon.py``). Generation keeps the key/value cache on with the suite's fix for the
TransformerLens 4.3 cache bug (``harness/interventions/generation.py``; ``tests/test_generation.py`` shows it equals
generation without the cache token for token). The unit is the generated sample; per run n = 250
samples (5 coefficients × 50).

Fluency control (S1's protocol, ``harness/experiments/steering_fluency.py``): a strong edit turns the
continuation into noise that the lexicon reads neutral, so S1 and S1.strongest are read on each run's
fluent range, the coefficients from 0 up to the first at which fewer than the protocol's share of the
samples are fluent (continuation NLL under the unsteered model at most the unsteered samples' 95%
quantile). The range is chosen on a separate selection draw (20 samples per coefficient, its own
sampling seed), never on the samples S1 reads. A run whose range holds no nonzero coefficient has no
trend to read: those two rows are "not applicable", the fluent share per coefficient named. The
degenerate coefficients stay in the details and the report.

- S1: Spearman ρ over the samples of the fluent range between |coef| and whether the sample has the
  steered-to label (0/1). CI: percentile bootstrap resampling the 50 samples within each coefficient
  (1,000 resamples, seeded by ``suite_seed``). Replicates when the CI lies above 0 (the share rises).
- S1.strongest: the steered-to label's share at the strongest fluent coefficient, Wilson CI over its 50
  samples; replicates when the CI lies above 50%.
- S1.unsteered: the same share at coefficient 0, Wilson CI over 50 samples; replicates when the CI
  lies at or below 20%.
"""

from __future__ import annotations

import pytest

from harness.datasets.lexicon import LABEL_NAMES

RUNS = ["paper prompt, steered negative", "mirror prompt, steered positive"]
RUN_IDS = ["paper_prompt", "mirror"]
CASES = {RUNS[0]: None, RUNS[1]: "mirror"}  # the mirror's paper value: "not in the paper"


def _details(run_name: str, steering, fluency) -> str:
    run, k = steering.runs[run_name], fluency.fluent_range(run_name)
    shares = ", ".join(f"{c:+.1f}: {100 * s:.0f}% ({100 * f:.0f}% of the selection draw fluent{'' if i < k else ', degenerate'})"
                       for i, (c, s, f)
                       in enumerate(zip(run.coefficients, run.share(run.target).tolist(), fluency.fluent_share(run_name).tolist())))
    return (f"{LABEL_NAMES[run.target]} share by coefficient at `{steering.hook}` ({run.labels.shape[1]} samples "
            f"each, scale {steering.strongest:.2f}): {shares}; {fluency.describe()}")


def _fluent_range(fluency, run_name: str) -> dict[str, bool]:
    """S1's and S1.strongest's precondition: the run's fluent range holds a nonzero coefficient."""
    run, k = fluency.runs[run_name], fluency.fluent_range(run_name)
    shares = ", ".join(f"{c:+.2f}: {100 * f:.0f}%" for c, f in zip(run.coefficients, fluency.fluent_share(run_name).tolist()))
    return {f"steering keeps the text fluent at a nonzero coefficient (fluent range, chosen on the selection draw: the "
            f"first {k} of {len(run.coefficients)} coefficients; fluent share {shares})": k >= 2}


@pytest.mark.claim("S1")
@pytest.mark.parametrize("run_name", RUNS, ids=RUN_IDS)
def test_s1_steered_share_rises_with_coefficient(run_name, steering, steering_fluency, claim):
    run, fluent = steering.runs[run_name], _fluent_range(steering_fluency, run_name)
    description = (f"{run_name}: Spearman ρ over the fluent range's samples, |coef| vs having the "
                   f"{LABEL_NAMES[run.target]} label")
    details = _details(run_name, steering, steering_fluency)
    if not claim.applies(fluent, case=CASES[run_name], description=description, details=details):
        return
    claim.check(steering_fluency.trend(run_name, steering.seed), case=CASES[run_name], preconditions=fluent,
                description=description, details=details)


def _check_share(claim, steering, fluency, run_name: str, index: int, preconditions: dict[str, bool]) -> None:
    """The steered-to label's share at coefficient ``index`` of the run, in %, Wilson CI."""
    run = steering.runs[run_name]
    claim.check(run.share_estimate(index), case=CASES[run_name], preconditions=preconditions,
                description=f"{run_name}: {LABEL_NAMES[run.target]} share at coef {run.coefficients[index]:+.2f}",
                details=_details(run_name, steering, fluency))


@pytest.mark.claim("S1.strongest")
@pytest.mark.parametrize("run_name", RUNS, ids=RUN_IDS)
def test_s1_strongest_coefficient_steers_most_samples(run_name, steering, steering_fluency, claim):
    """At the strongest coefficient of the fluent range (where it holds only 0, that one: not applicable)."""
    fluent = _fluent_range(steering_fluency, run_name)
    _check_share(claim, steering, steering_fluency, run_name, max(steering_fluency.fluent_range(run_name), 1) - 1, fluent)


@pytest.mark.claim("S1.unsteered")
@pytest.mark.parametrize("run_name", RUNS, ids=RUN_IDS)
def test_s1_unsteered_share_is_low(run_name, steering, steering_fluency, claim):
    _check_share(claim, steering, steering_fluency, run_name, 0, {})
