"""§6.4: the ToyMovieReview sentiment circuit, found by path patching (Wang et al. 2022).

Setup (``harness/circuit.py``, ``harness/path_patching.py``): ToyMovieReview test pairs (§2.1),
clean/corrupted; each head (query head) and MLP path-patched into the final residual stream at the
last position, everything else frozen clean; effect = (LD_patched − LD_clean)/(LD_clean − LD_corrupted)
× 100. Head roles from clean attention patterns (``harness/head_roles.py``). Then path patching into
the summary readers' query/key/value inputs finds the heads that write the summary.

- K1.paper_heads, gpt2-small only: how many of the paper's 8 heads (``GPT2_CIRCUIT_HEADS``) are among
  the 12 heads with the largest |effect|. K1, every other model: the share of the summed |effect| over
  all heads that the top 5% of heads carry (a sparse circuit).
- K2 the circuit (top 6 stage-1 heads + top 3 stage-2 writers, "about 9") patched clean → corrupted:
  % of the logit difference its full head outputs recover (the paper's 75% LD and 97% flip are
  [REVIEW] numbers, unverifiable, shown only); K2.direction: what the direction-only patch recovers,
  as a fraction of the full patch (paper [REVIEW]: 54.8% LD, 58% flip).
- K3 the residual stream at the summary token (second " movie") alone, patched clean → corrupted at a
  mid layer (n/3 .. 2n/3): % of the logit difference recovered (best mid layer).
Thresholds and paper values: ``harness/claims_declared.py``.

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

from harness.circuit import CIRCUIT
from harness.metrics import bootstrap_ci, logit_diff_recovered, logit_flip
from harness.paper_models import GPT2_CIRCUIT_HEADS

TOP_K = CIRCUIT.top_heads  # K1.paper_heads: the paper's heads among the top 12
SPARSE_FRACTION = 0.05  # K1: the share of the summed |effect| carried by the top 5% of heads


def _on_paper_model(claim) -> bool:
    return claim.model_name == claim.declaration.paper.model


@pytest.mark.claim("K1")
def test_k1_circuit_is_sparse(toy_circuit, claim):
    if _on_paper_model(claim):
        pytest.skip(f"on {claim.model_name} K1 is the paper's heads (test_k1_paper_heads_among_top_heads)")
    heads, effects = toy_circuit.head_effects()
    top = [str(node) for node in toy_circuit.top_heads(TOP_K)]
    magnitude = effects.abs().sort(descending=True).values
    n_top = math.ceil(SPARSE_FRACTION * len(magnitude))
    share = float(magnitude[:n_top].sum() / magnitude.sum())
    claim.check(share, description=f"share of summed |path effect| carried by the top {n_top} of {len(heads)} heads",
                details=f"top {TOP_K} heads: {', '.join(top)}")


@pytest.mark.claim("K1.paper_heads")
def test_k1_paper_heads_among_top_heads(toy_circuit, claim):
    if not _on_paper_model(claim):
        pytest.skip(f"the paper names its circuit heads on {claim.declaration.paper.model} only")
    top = [str(node) for node in toy_circuit.top_heads(TOP_K)]
    found = sorted(set(top) & set(GPT2_CIRCUIT_HEADS))
    claim.check(len(found), description=f"paper's 8 circuit heads among the top {TOP_K} by |path effect|",
                details=f"top {TOP_K}: {', '.join(top)}; found {found}")


def _circuit_metric(results, name: str, key: str) -> tuple[float, tuple[float, float]]:
    statistic = {"ld_recovered": logit_diff_recovered, "logit_flip": logit_flip}[name]
    args = (results.circuit_patch[key], results.clean, results.corrupted, results.labels)
    return float(statistic(*args)), bootstrap_ci(statistic, *args)


@pytest.mark.claim("K2")
def test_k2_circuit_patch_recovers_logit_difference(toy_circuit, claim):
    value, ci = _circuit_metric(toy_circuit, "ld_recovered", "full/all")
    flip, _ = _circuit_metric(toy_circuit, "logit_flip", "full/all")
    at_words, _ = _circuit_metric(toy_circuit, "ld_recovered", "full/ADJ+VRB")
    claim.check(value, ci=ci, description="circuit heads' outputs patched clean → corrupted, % LD recovered",
                details=f"circuit {', '.join(map(str, toy_circuit.circuit))}; logit flip {flip:.1f}%; "
                        f"patched at ADJ+VRB only: {at_words:.1f}% LD")


@pytest.mark.claim("K2.direction")
def test_k2_direction_only_patch_carries_most_of_it(toy_circuit, claim):
    full, _ = _circuit_metric(toy_circuit, "ld_recovered", "full/all")
    direction, (low, high) = _circuit_metric(toy_circuit, "ld_recovered", "direction/all")
    flip, _ = _circuit_metric(toy_circuit, "logit_flip", "direction/all")
    claim.check(direction / full, description="direction-only circuit patch / full circuit patch (% LD recovered)",
                details=f"direction-only {direction:.1f}% LD [{low:.1f}, {high:.1f}], flip {flip:.1f}%; full {full:.1f}%; "
                        f"DAS layers {toy_circuit.direction_layers}")


@pytest.mark.claim("K3")
def test_k3_summary_position_matters(toy_circuit, claim):
    args = lambda layer: (toy_circuit.summary_patch[layer], toy_circuit.clean, toy_circuit.corrupted, toy_circuit.labels)
    by_layer = {layer: float(logit_diff_recovered(*args(layer))) for layer in toy_circuit.summary_patch}
    best = max(by_layer, key=by_layer.get)
    claim.check(by_layer[best], ci=bootstrap_ci(logit_diff_recovered, *args(best)),
                description="residual stream at the summary token (SBJ2) alone, best mid layer, % LD recovered",
                details=f"layer {best}; by layer: " + ", ".join(f"{l}: {v:.1f}" for l, v in by_layer.items()))
