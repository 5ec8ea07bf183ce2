"""§6.4: the ToyMovieReview sentiment circuit, found by path patching (Wang et al. 2022).

Setup (``fixtures/circuit.py``, ``harness/path_patching.py``): ToyMovieReview test pairs (§2.1),
clean/corrupted; each head (query head) and MLP path-patched into the final residual stream at the
last position, everything else frozen clean; effect = (LD_patched − LD_clean)/(LD_clean − LD_corrupted)
× 100. Head roles from clean attention patterns (``harness/head_roles.py``). Then path patching into
the summary readers' query/key/value inputs finds the heads that write the summary.

- K1 gpt2-small (paper): at least 6 of the paper's 8 heads {7.1, 7.5, 8.5, 9.2, 9.10, 10.1, 10.4, 11.9}
  are among the 12 heads with the largest |effect|. Other models (generic): the top 5% of heads carry
  at least 50% of the summed |effect| over all heads (a sparse circuit).
- K2 the circuit (top 6 stage-1 heads + top 3 stage-2 writers, "about 9") patched clean → corrupted:
  full head outputs recover >= 50% of the logit difference (generic; the paper's 75% LD and 97% flip are
  [REVIEW] numbers, unverifiable, shown only); the direction-only patch recovers >= 40% of what the
  full patch recovers (paper [REVIEW]: 54.8% LD, 58% flip).
- K3 the residual stream at the summary token (second " movie") alone, patched clean → corrupted at a
  mid layer (n/3 .. 2n/3), recovers >= 20% of the logit difference (best mid layer).

Choices where the paper is ambiguous:
- K2 patches the heads' outputs at *all* positions (the authors' directional patching uses
  ``placeholders=['ALL']`` since @586fbd7). The issue's wording, "at the ADJ and VRB positions", is
  also measured and reported in the details: patching a head's output *at* ADJ/VRB cannot reach the
  final position through the heads that read ADJ/VRB from there, so it is not the claim's measure.
- The direction of K2 is the toy-fitted 1-D DAS direction (§4) at the residual layer each head writes
  into (head layer + 1), or the nearest layer DAS was fitted at (the paper does not say which layer its
  circuit notebook used; DAS is its main method). The direction-only edit is the paper's §5.2 patch on
  each head's output: out' = out + (d·out_clean − d·out) d.
- Stage 2 follows Wang et al.'s three steps: the receivers' inputs are computed with every component
  but the sender frozen clean, then set in a clean run whose later layers recompute freely
  (``harness/path_patching.py``).
"""

from __future__ import annotations

import math

import pytest

from harness.claim_record import ClaimRecord
from harness.metrics import bootstrap_ci, logit_diff_recovered, logit_flip

PAPER_MODEL = "gpt2-small"
PAPER_HEADS = ("7.1", "7.5", "8.5", "9.2", "9.10", "10.1", "10.4", "11.9")
TOP_K, MIN_PAPER_HEADS = 12, 6
SPARSE_FRACTION, SPARSE_SHARE = 0.05, 0.5


def _source(model_name: str) -> str:
    return f"paper ({PAPER_MODEL})" if model_name == PAPER_MODEL else "generic"


@pytest.mark.claim("K1")
def test_k1_circuit_is_sparse(toy_circuit, model, claim):
    heads, effects = toy_circuit.head_effects()
    top = [str(node) for node in toy_circuit.top_heads(TOP_K)]
    if model.name == PAPER_MODEL:
        found = sorted(set(top) & set(PAPER_HEADS))
        claim.check(ClaimRecord(
            claim="K1", section="§6.4", description=f"paper's 8 circuit heads among the top {TOP_K} by |path effect|",
            paper_value="7.1, 7.5, 8.5, 9.2, 9.10, 10.1, 10.4, 11.9 (gpt2-small [R])", measured=len(found),
            tolerance=f">= {MIN_PAPER_HEADS} of 8", threshold_source=_source(model.name),
            passed=len(found) >= MIN_PAPER_HEADS, details=f"top {TOP_K}: {', '.join(top)}; found {found}",
        ))
        return
    magnitude = effects.abs().sort(descending=True).values
    n_top = math.ceil(SPARSE_FRACTION * len(magnitude))
    share = float(magnitude[:n_top].sum() / magnitude.sum())
    claim.check(ClaimRecord(
        claim="K1", section="§6.4", description=f"share of summed |path effect| carried by the top {n_top} of {len(heads)} heads",
        paper_value="a sparse circuit of ~10 heads (gpt2-small [R])", measured=share, tolerance=f">= {SPARSE_SHARE}",
        threshold_source=_source(model.name), passed=share >= SPARSE_SHARE,
        details=f"top {TOP_K} heads: {', '.join(top)}",
    ))


def _circuit_metric(results, name: str, key: str) -> tuple[float, tuple[float, float]]:
    statistic = {"ld_recovered": logit_diff_recovered, "logit_flip": logit_flip}[name]
    args = (results.circuit_patch[key], results.clean, results.corrupted, results.labels)
    return float(statistic(*args)), bootstrap_ci(statistic, *args)


@pytest.mark.claim("K2")
def test_k2_circuit_patch_recovers_logit_difference(toy_circuit, model, claim):
    value, (low, high) = _circuit_metric(toy_circuit, "ld_recovered", "full/all")
    flip, _ = _circuit_metric(toy_circuit, "logit_flip", "full/all")
    at_words, _ = _circuit_metric(toy_circuit, "ld_recovered", "full/ADJ+VRB")
    claim.check(ClaimRecord(
        claim="K2", section="§6.4", description="circuit heads' outputs patched clean → corrupted, % LD recovered",
        paper_value="75% LD, 97% flip (gpt2-small [REVIEW], unverified)", measured=value, ci_low=low, ci_high=high,
        unit="%", tolerance=">= 50%", threshold_source="generic", passed=value >= 50,
        details=f"circuit {', '.join(map(str, toy_circuit.circuit))}; logit flip {flip:.1f}%; "
                f"patched at ADJ+VRB only: {at_words:.1f}% LD",
    ))


@pytest.mark.claim("K2")
def test_k2_direction_only_patch_carries_most_of_it(toy_circuit, model, claim):
    full, _ = _circuit_metric(toy_circuit, "ld_recovered", "full/all")
    direction, (low, high) = _circuit_metric(toy_circuit, "ld_recovered", "direction/all")
    flip, _ = _circuit_metric(toy_circuit, "logit_flip", "direction/all")
    ratio = direction / full
    claim.check(ClaimRecord(
        claim="K2", section="§6.4", description="direction-only circuit patch / full circuit patch (% LD recovered)",
        paper_value="54.8% LD, 58% flip vs 75% / 97% full (gpt2-small [REVIEW], unverified)", measured=ratio,
        tolerance=">= 0.4", threshold_source="generic", passed=ratio >= 0.4,
        details=f"direction-only {direction:.1f}% LD [{low:.1f}, {high:.1f}], flip {flip:.1f}%; full {full:.1f}%; "
                f"DAS layers {toy_circuit.direction_layers}",
    ))


@pytest.mark.claim("K3")
def test_k3_summary_position_matters(toy_circuit, model, claim):
    args = lambda layer: (toy_circuit.summary_patch[layer], toy_circuit.clean, toy_circuit.corrupted, toy_circuit.labels)
    by_layer = {layer: float(logit_diff_recovered(*args(layer))) for layer in toy_circuit.summary_patch}
    best = max(by_layer, key=by_layer.get)
    low, high = bootstrap_ci(logit_diff_recovered, *args(best))
    claim.check(ClaimRecord(
        claim="K3", section="§6.4", description="residual stream at the summary token (SBJ2) alone, best mid layer, % LD recovered",
        paper_value="summary heads read SBJ2 (gpt2-small [R]); no number", measured=by_layer[best], ci_low=low,
        ci_high=high, unit="%", tolerance=">= 20%", threshold_source="generic", passed=by_layer[best] >= 20,
        details=f"layer {best}; by layer: " + ", ".join(f"{l}: {v:.1f}" for l, v in by_layer.items()),
    ))
