"""P0 (§2.3, §5.1): the model classifies SST reviews, the precondition of P3–P5 and A1–A5.

Statistic: centred accuracy (%) of the answer logit difference over EVERY sentence of the held-out
split (dev on the shipped files; the toy-fitted directions never see SST): score s = logit(` Positive`)
− logit(` Negative`) at the final token, bias = mean s over the split, a sentence is correct when
(s − bias)·sign(label) > 0 (§5.1). Unit: the sentence (n = the split's size); CI: Wilson score
interval. No selection. Two cases, one per scaffold:

- ``classification``: ``Review Text: {TEXT} Review Sentiment:``, the patching scaffold (gates P3–P5);
- ``zero_shot``: ``{TEXT} Review Sentiment:``, the ablation prompt (gates A1–A5).

Rule (declared, fixed before measuring): >= 70%, decided by the whole CI. The same forward passes
feed the pair and zero-shot selections (``fixtures.sst_experiments.sst_classify``). The details give
the uncentred accuracy and the bias, which show how much of a scaffold's accuracy is a class bias.
"""

from __future__ import annotations

import pytest

from fixtures.sst_experiments import COMPETENCE_CASES


@pytest.mark.claim("P0")
@pytest.mark.parametrize("case", list(COMPETENCE_CASES))
def test_p0_model_classifies_sst(case, sst_competence, claim):
    measured = sst_competence[case]
    claim.check(
        measured.estimate, case=case,
        description=f"centred accuracy over every {measured.split_name} sentence, {case} scaffold "
                    f"`{measured.scaffold.template}`",
        details=f"uncentred accuracy {measured.uncentred_accuracy:.1f}%; bias (mean positive − negative score) "
                f"{measured.bias:+.2f}",
    )
