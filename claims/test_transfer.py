"""Transfer and specificity (suite-added, after §5.2-§5.3 and §6.2): does the ToyMovieReview direction
separate sentiment on other data, move the model's classification of it, and is it about sentiment at all?

The paper fits its directions on ToyMovieReview and tests them on SST. Here the same directions (every
method's, fitted at ADJ on ToyMovieReview train: the ``toy_directions`` fixture, unchanged) are read on
datasets they never saw (``harness/datasets/transfer.py``): shipped, MPQA opinion polarity (news phrases,
1 positive / 0 negative) and Pang & Lee's subjectivity sentences (``subj``: subjective review snippets vs
objective plot summaries, no sentiment label: the specificity control); ``--transfer-data PATH`` adds or
replaces datasets (names starting with ``subj`` are controls). Each dataset is read on a seeded,
balanced sample of 150 items per class (the report gives the sizes).

Setup (``harness/experiments/transfer.py``): one forward per item set keeps, at every layer, the last token's
residual and the mean over the item's tokens (BOS left out); an item's score is the cosine projection
of the last token's residual (the token mean is shown beside it). Each method's layer and sign are
chosen on a balanced 300-sentence sample of the SST held-out split (dev), never on the target data: the
layer of highest AUROC among the method's layers (DAS: its trained layers), each layer's direction
oriented + = positive on that sample.

- G1 (sentiment dataset × method): AUROC(positive vs negative) − the 97.5% quantile of the AUROCs of 100
  seeded random directions at the same layer, each oriented on the SST sample as the method's is. CI:
  percentile bootstrap over items, both terms recomputed on every resample (paired). Passes when > 0.
- G2 (sentiment dataset × DAS / mean difference × positions), causal: gated on the model classifying the
  dataset's sample in the SST CLASSIFICATION scaffold (P0's classification rule; else "not applicable"
  and not run). The direction is projected out at its chosen layer (``resid_pre``, where it was read), at
  every position or every position but the first (BOS); the mean drop of the correctness margin minus
  the 97.5% quantile of the mean drops of a null of 50 seeded random directions ablated exactly the same
  way (same layer and positions; on a seeded subsample of 40 items per class, for the time budget),
  both recomputed in every resample of the items (paired; ``harness/experiments/transfer_ablation.py``);
  studentized (bootstrap-t) CI over items. Passes when > 0.
- G3 (control × sentiment dataset × method): separation |AUROC − 0.5| on the sentiment dataset minus on
  the control, at the method's chosen layer; each dataset's items resampled independently. Passes when
  > 0; reported whatever the result.

The random direction (a control, not a method) is not a claim row here; the report shows it beside the
methods in the transfer tables and the figure.
"""

from __future__ import annotations

import pytest

from harness.directions.registry import methods
from harness.verdicts.declared import declared

G2_PROTOCOL = declared("G2").protocol  # its methods and position sets parametrize G2

# ``transfer_dataset`` (each sentiment dataset) and ``specificity_dataset`` (each control) are parametrized by
# ``fixtures/transfer.py`` over the shipped datasets and ``--transfer-data``.


def _has_direction(transfer, method: str) -> dict[str, bool]:
    return {f"{method} has a trained direction": method in transfer.chosen}


def _layer(transfer, method: str) -> str:
    choice = transfer.chosen[method]
    return f"layer {choice.layer} (SST-sample AUROC {choice.sst_auroc[choice.layer]:.3f}; {transfer.sst.describe()})"


@pytest.mark.claim("G1")
@pytest.mark.parametrize("method", methods(controls=False))
def test_g1_transfer_direction_separates_sentiment(transfer_dataset, method, transfer, claim):
    quantile = f"{transfer.null_quantile_level:.1%} quantile"
    description = f"{transfer_dataset}, {method}: last-token projection AUROC minus the oriented null's {quantile}"
    if not claim.applies(_has_direction(transfer, method), description=description):
        return
    data = transfer.datasets[transfer_dataset]
    claim.check(
        transfer.auroc_above_null(transfer_dataset, method), description=description,
        details=(f"AUROC {transfer.auroc(transfer_dataset, method):.3f} (token mean: "
                 f"{transfer.auroc(transfer_dataset, method, 'mean'):.3f}), "
                 f"null {quantile} {transfer.null_quantile(transfer_dataset, method):.3f}; "
                 f"{_layer(transfer, method)}; "
                 f"{transfer_dataset}: {data.sample.describe()}"),
    )


@pytest.mark.claim("G2")
@pytest.mark.parametrize("positions", G2_PROTOCOL["ablation_positions"])
@pytest.mark.parametrize("method", G2_PROTOCOL["ablation_methods"])
def test_g2_transfer_ablation_hurts_classification(transfer_dataset, method, positions, transfer, transfer_gate,
                                                   transfer_competence, request, claim):
    preconditions = transfer_gate[transfer_dataset] | _has_direction(transfer, method)
    gate = transfer_competence[transfer_dataset].competence.estimate
    description = (f"{transfer_dataset}, {method} ablated at {positions.replace('_', ' ')} positions: margin drop "
                   "minus the random directions' (paired)")
    competence = f"competence (centred accuracy) {gate.value:.1f}% [{gate.ci_low:.1f}, {gate.ci_high:.1f}]"
    if not claim.applies(preconditions, description=description, details=competence):
        return
    ablations = request.getfixturevalue("transfer_ablations")(transfer_dataset)
    claim.check(
        ablations.ablation_margin_drop(method, positions), preconditions=preconditions, description=description,
        details=(f"mean margin drop: direction {ablations.mean_drop(method, positions):.3f}, null of "
                 f"{ablations.random_count} random directions on {int(ablations.null_items.sum())} items: mean "
                 f"{ablations.mean_drop(method, positions, random=True):.3f}, {ablations.null_quantile:.1%} quantile "
                 f"{ablations.null_quantile_drop(method, positions):.3f}; "
                 f"accuracy (margin > 0) clean {ablations.accuracy():.1f}%, direction ablated "
                 f"{ablations.accuracy(method, positions):.1f}%, random "
                 f"{ablations.accuracy(method, positions, True):.1f}%; "
                 f"site {ablations.site}, {_layer(transfer, method)}; {competence}"),
    )


@pytest.mark.claim("G3")
@pytest.mark.parametrize("method", methods(controls=False))
def test_g3_transfer_direction_is_specific_to_sentiment(specificity_dataset, transfer_dataset, method, transfer, claim):
    description = f"{transfer_dataset} vs {specificity_dataset}, {method}: |AUROC − 0.5| on sentiment minus on the control"
    if not claim.applies(_has_direction(transfer, method), description=description):
        return
    claim.check(
        transfer.specificity_gap(specificity_dataset, transfer_dataset, method), description=description,
        details=(f"AUROC {transfer_dataset} {transfer.auroc(transfer_dataset, method):.3f}, {specificity_dataset} "
                 f"{transfer.auroc(specificity_dataset, method):.3f} (class 1 vs 0: objective vs subjective on the "
                 f"shipped subj); {_layer(transfer, method)}; {specificity_dataset}: "
                 f"{transfer.datasets[specificity_dataset].sample.describe()}"),
    )
