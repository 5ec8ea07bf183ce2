"""SST prompts (paper §2.3): scaffolds, length-matched clean/corrupted pairs, the zero-shot ablation set.

- Scaffolds (exact): CLASSIFICATION ``Review Text: {TEXT} Review Sentiment:`` (answers ` Positive`/
  ` Negative`; no comma after TEXT), the patching scaffold of the claims, and the zero-shot ablation
  prompt ``{TEXT} Review Sentiment:`` (§5.3). (The paper's CONTINUATION and PLAIN scaffolds are used
  by no claim.)
- Prompts of different lengths are left-padded with an attention mask (``tokenize_padded``), so the
  final position is every prompt's last real token. TransformerLens 4 derives position ids from the
  mask, so a left-padded prompt gives the logits it gives alone, also on GPT-2's absolute positions
  (``tests/test_sst_prompts.py`` checks this on tiny GPT-2 and NeoX models).
- Pairing for patching (``treebank_data_gen.py``): group sentences by the token count of the raw
  sentence (BOS included), zip positives with negatives in file order within each group, clean =
  [pos, neg, pos, neg, ...] over the groups in order of length, corrupted = clean shifted left by one.
  Deviation, on purpose: the authors shifted the whole list cyclically, so the last pair of every group
  crossed into the next group and differed in length (left-padded, positions misaligned). With the few
  correctly classified negatives of a small model most groups hold one positive/negative couple, and
  half the pairs would be mismatched; the suite cycles *within* each group, so every pair is
  length-matched (a group's last negative is paired with its first positive).
- Zero-shot ablation set (§2.3, [NB:1c63bb5]): keep examples the model classifies correctly (logit
  difference > 0) with the correct answer among its top-10 next tokens, keep those holding a comma
  token, and balance the classes by a seeded subsample of the larger one. Every SST subsample is
  drawn with ``SEED``.
- Competence (P0, ``centred_accuracy``): the share of sentences whose centred logit difference (§5.1:
  the run's mean positive-minus-negative score subtracted, signed by the label) is > 0, over every
  sentence of the split, with its Wilson interval over sentences.
- Comma tokens: SST-2 text is PTB-tokenized (``film , truly``), so its comma is usually the token
  ``" ,"``; both ``","`` and ``" ,"`` count as commas (the authors' NeoX id 13 is ``","``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from harness.measures.metrics import centred_logit_diff
from harness.runtime.progress import track
from harness.runtime.unembedding import contiguous_unembedding
from harness.measures.statistics import Estimate, wilson
from harness.datasets.tokens import single_token_id, tokenize_padded

COMMA_TEXTS = (",", " ,")
SEED = 0


@dataclass(frozen=True)
class Scaffold:
    """A prompt template with ``{TEXT}`` and its (positive, negative) answer tokens."""

    name: str
    template: str
    answers: tuple[str, str]

    def format(self, text: str) -> str:
        return self.template.format(TEXT=text)

    def answer_ids(self, tokenizer) -> Int[Tensor, "2 1"]:
        """Rows: positive answer, negative answer (the metrics' layout); each must be one token."""
        ids = [single_token_id(tokenizer, answer) for answer in self.answers]
        if None in ids:
            raise ValueError(f"{self.name} answers {self.answers} must each be one token for this tokenizer")
        return torch.tensor(ids)[:, None]


CLASSIFICATION = Scaffold("classification", "Review Text: {TEXT} Review Sentiment:", (" Positive", " Negative"))
ZERO_SHOT = Scaffold("zero_shot", "{TEXT} Review Sentiment:", (" Positive", " Negative"))

# ``classify(scaffold, sentences)``: ``answer_logits`` of the model under test (cached by the session)
Classify = Callable[[Scaffold, Sequence[str]], tuple[Float[Tensor, "n 2"], Int[Tensor, "n 2"]]]


@dataclass(frozen=True)
class SSTPrompts:
    """Scaffolded SST sentences, left-padded; ``source_index`` points into the split they came from."""

    scaffold: Scaffold
    sentences: tuple[str, ...]
    labels: Int[Tensor, "n"]
    tokens: Int[Tensor, "n pos"]
    attention_mask: Int[Tensor, "n pos"]
    source_index: Int[Tensor, "n"]

    def __len__(self) -> int:
        return len(self.sentences)


def scaffold_prompts(
    bridge, scaffold: Scaffold, sentences: Sequence[str], labels: Sequence[int], source_index: Sequence[int],
    prepend_bos: bool,
) -> SSTPrompts:
    """Fill ``scaffold`` with each sentence and tokenize, left-padded to the longest prompt."""
    texts = [scaffold.format(sentence) for sentence in sentences]
    tokens, mask = tokenize_padded(bridge, texts, prepend_bos)
    return SSTPrompts(scaffold, tuple(sentences), torch.as_tensor(list(labels)), tokens, mask,
                      torch.as_tensor(list(source_index)))


def answer_logits(
    bridge, scaffold: Scaffold, sentences: Sequence[str], prepend_bos: bool, chunk_size: int = 32
) -> tuple[Float[Tensor, "n 2"], Int[Tensor, "n 2"]]:
    """Final-token logits of the (positive, negative) answers for every scaffolded sentence, and each
    answer's rank among all next tokens (0 = top). Prompts run in chunks of similar length (sorted),
    so little compute goes to padding; left padding does not change a prompt's logits."""
    ids = scaffold.answer_ids(bridge.tokenizer)[:, 0]
    texts = [scaffold.format(sentence) for sentence in sentences]
    order = sorted(range(len(texts)), key=lambda i: len(bridge.tokenizer.encode(texts[i], add_special_tokens=False)))
    logits, ranks = torch.empty(len(texts), 2), torch.empty(len(texts), 2, dtype=torch.long)
    for start in track(range(0, len(order), chunk_size)):
        rows = order[start:start + chunk_size]
        tokens, mask = tokenize_padded(bridge, [texts[i] for i in rows], prepend_bos)
        with torch.no_grad():
            final = bridge.run_with_hooks(tokens.to(bridge.cfg.device), attention_mask=mask.to(bridge.cfg.device),
                                          fwd_hooks=contiguous_unembedding(bridge), logits_to_keep=1)[:, -1].float().cpu()
        answers = final[:, ids]
        logits[rows] = answers
        ranks[rows] = (final[:, None, :] > answers[:, :, None]).sum(-1)
    return logits, ranks


def sentence_lengths(tokenizer, sentences: Sequence[str], prepend_bos: bool) -> list[int]:
    """Token count of each raw sentence (BOS included when prepended), the pairing key of §2.3."""
    return [len(tokenizer.encode(s, add_special_tokens=False)) + int(prepend_bos) for s in sentences]


def length_matched_pairs(
    lengths: Sequence[int], labels: Sequence[int]
) -> tuple[Int[Tensor, "n_pairs"], Int[Tensor, "n_pairs"]]:
    """(clean, corrupted) indices into the sentences (§2.3): per length group (ascending), positives
    zipped with negatives in order; clean alternates pos, neg; corrupted is clean shifted left by one,
    cyclically within the group (the authors cycled over the whole list; see the module docstring)."""
    clean: list[int] = []
    corrupted: list[int] = []
    for length in sorted(set(lengths)):
        group = [i for i, n in enumerate(lengths) if n == length]
        positives = [i for i in group if labels[i] == 1]
        negatives = [i for i in group if labels[i] == 0]
        alternating = [i for couple in zip(positives, negatives) for i in couple]
        clean += alternating
        corrupted += alternating[1:] + alternating[:1]
    return torch.tensor(clean, dtype=torch.long), torch.tensor(corrupted, dtype=torch.long)


def seeded_subset(candidates: Int[Tensor, "n"], size: int, seed: int) -> Int[Tensor, "k"]:
    """``size`` of ``candidates`` drawn without replacement (seeded), kept in their original order;
    all of them if there are no more than ``size``."""
    if len(candidates) <= size:
        return candidates
    order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(seed))[:size]
    return candidates[order.sort().values]


def comma_ids(tokenizer) -> list[int]:
    """The token ids that are a comma (``","`` and, where it is one token, ``" ,"``)."""
    ids = {single_token_id(tokenizer, text) for text in COMMA_TEXTS} - {None}
    if not ids:
        raise ValueError("no comma token in this tokenizer; the comma ablations need one")
    return sorted(ids)


def token_mask(tokens: Int[Tensor, "n pos"], ids: Sequence[int]) -> Bool[Tensor, "n pos"]:
    """True where a token is one of ``ids``."""
    return torch.isin(tokens, torch.as_tensor(list(ids)))


@dataclass(frozen=True)
class ZeroShotSelection:
    """Indices (into the candidates) of the balanced zero-shot set, and the count after each filter."""

    index: Int[Tensor, "k"]
    counts: dict[str, dict[str, int]]  # filter stage -> {"positive": n, "negative": n}


def select_zero_shot(
    logit_diffs: Float[Tensor, "n"],
    correct_in_top_k: Bool[Tensor, "n"] | None,
    has_comma: Bool[Tensor, "n"],
    labels: Int[Tensor, "n"],
    seed: int,
    max_per_class: int | None = None,
) -> ZeroShotSelection:
    """§2.3's zero-shot ablation set: holding a comma, correct (uncentred LD > 0) with the answer in the
    top k, then the larger class subsampled (seeded) to the size of the smaller one (and both to
    ``max_per_class``). ``logit_diffs`` may be NaN where there is no comma (the model need not run there).
    ``correct_in_top_k=None`` leaves out the top-k filter (correctness only)."""
    stages = {"candidates": torch.ones_like(has_comma)}
    stages["with a comma token"] = stages["candidates"] & has_comma
    if correct_in_top_k is None:
        stages["classified correctly"] = stages["with a comma token"] & (logit_diffs > 0)
    else:
        stages["classified correctly, answer in top 10"] = stages["with a comma token"] & (logit_diffs > 0) & correct_in_top_k
    kept = list(stages.values())[-1]
    per_class = {label: kept.logical_and(labels == label).nonzero().flatten() for label in (1, 0)}
    size = min([len(index) for index in per_class.values()] + [max_per_class or len(labels)])
    index = torch.cat([seeded_subset(per_class[label], size, seed) for label in (1, 0)]).sort().values
    balanced = torch.zeros_like(kept)
    balanced[index] = True
    stages["balanced (seeded subsample)"] = balanced
    counts = {stage: {"positive": int((mask & (labels == 1)).sum()), "negative": int((mask & (labels == 0)).sum())}
              for stage, mask in stages.items()}
    return ZeroShotSelection(index, counts)


def centred_accuracy(logits: Float[Tensor, "n 2"], labels: Int[Tensor, "n"]) -> Estimate:
    """P0 (§5.1): % of sentences with centred LD > 0 (bias = mean score over all of them), Wilson CI."""
    correct = centred_logit_diff(logits[:, 0] - logits[:, 1], torch.as_tensor(labels)) > 0
    return wilson(int(correct.sum()), len(correct), unit="sentences")


@dataclass(frozen=True)
class SSTCompetence:
    """P0 for one scaffold: centred accuracy over every sentence of the split (``centred_accuracy``)."""

    case: str  # the P0 case: "classification" (gates P3–P5) or "zero_shot" (gates A1–A5)
    scaffold: Scaffold
    split_name: str
    estimate: Estimate
    uncentred_accuracy: float  # % with LD > 0 before centring (the bias shows in the gap)
    bias: float  # mean positive-minus-negative score over the split


def competence(case: str, scaffold: Scaffold, split_name: str, logits: Float[Tensor, "n 2"],
               labels: Int[Tensor, "n"]) -> SSTCompetence:
    scores, labels = logits[:, 0] - logits[:, 1], torch.as_tensor(labels)
    uncentred = float(((scores * (labels.float() * 2 - 1)) > 0).float().mean() * 100)
    return SSTCompetence(case, scaffold, split_name, centred_accuracy(logits, labels), uncentred, float(scores.mean()))
