"""The paper's metrics, exactly as §5.1 defines them (authors' ``utils/circuit_analysis.py``).

- Sentiment score s = mean over the K answer pairs of logit(positive_k) − logit(negative_k), read at
  the final token. A prompt's logit difference (LD) is s for a positive clean label and −s for a
  negative one: the answers are always the *clean* prompt's, also in corrupted and patched runs.
- Centring: bias = mean over prompts of s (in that run); centred LD = LD − bias for positive labels and
  LD + bias for negative ones. Accuracy = fraction of centred LDs > 0.
- % logit difference recovered = (LD_patched − LD_corrupted)/(LD_clean − LD_corrupted) × 100, with
  dataset means of centred LDs; not clipped, so it can exceed 100.
- % logit flip = (acc_patched − acc_corrupted)/(acc_clean − acc_corrupted) × 100, each accuracy
  centred with its own run's bias (the authors' redefinition, docs/PAPER.md §5.1): a change in centred
  accuracy, not a sign count.

The authors averaged per batch; the suite computes each metric over the whole set (one batch); every
statistic accepts a leading resample axis, so ``harness.measures.statistics`` bootstraps it in one call.
"""

from __future__ import annotations

from jaxtyping import Float, Int
from torch import Tensor



def sentiment_score(
    logits: Float[Tensor, "batch d_vocab"], answer_ids: Int[Tensor, "2 n_answers"]
) -> Float[Tensor, "batch"]:
    """s = mean_k logit(positive_k) − logit(negative_k)."""
    return (logits[:, answer_ids[0]] - logits[:, answer_ids[1]]).mean(-1)


def label_signs(labels: Int[Tensor, "batch"]) -> Float[Tensor, "batch"]:
    return labels.float() * 2 - 1


def logit_diff(score: Float[Tensor, "*boot batch"], labels: Int[Tensor, "batch"]) -> Float[Tensor, "*boot batch"]:
    """Uncentred LD: the score signed by the clean label."""
    return score * label_signs(labels)


def centred_logit_diff(score: Float[Tensor, "*boot batch"], labels: Int[Tensor, "batch"]) -> Float[Tensor, "*boot batch"]:
    """LD minus the run's mean positive-minus-negative bias, signed by the label."""
    return (score - score.mean(-1, keepdim=True)) * label_signs(labels)


def accuracy(score: Float[Tensor, "*boot batch"], labels: Int[Tensor, "batch"]) -> Float[Tensor, "*boot"]:
    return (centred_logit_diff(score, labels) > 0).float().mean(-1)


def logit_diff_recovered(
    patched: Tensor, clean: Tensor, corrupted: Tensor, labels: Tensor
) -> Float[Tensor, "*boot"]:
    """% logit difference recovered (§5.1): 100 at the clean run, 0 at the corrupted run."""
    mean = lambda score: centred_logit_diff(score, labels).mean(-1)
    return (mean(patched) - mean(corrupted)) / (mean(clean) - mean(corrupted)) * 100


def logit_flip(patched: Tensor, clean: Tensor, corrupted: Tensor, labels: Tensor) -> Float[Tensor, "*boot"]:
    """% logit flip (§5.1): change in centred accuracy, normalised between corrupted and clean."""
    acc = lambda score: accuracy(score, labels)
    return (acc(patched) - acc(corrupted)) / (acc(clean) - acc(corrupted)) * 100


def ld_percent_change(
    intervened: Float[Tensor, "*boot batch"], original: Float[Tensor, "*boot batch"]
) -> Float[Tensor, "*boot"]:
    """% change of the mean logit difference, (mean LD_intervened − mean LD_original)/mean LD_original × 100
    (§5.3's Δ% LD is its negative; §5.7 reports it as is)."""
    return (intervened.mean(-1) - original.mean(-1)) / original.mean(-1) * 100
