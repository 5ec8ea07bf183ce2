"""The paper's models and what the paper fixed for each (§1, §4, §6): hub id, depth, DAS batch size,
and where a claim names a model (the paper's numbers were measured on it), which one.

Everything model-specific that the claims or the harness need is read from here, never restated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperModel:
    name: str
    hub_id: str
    n_layers: int
    das_batch_size: int  # the authors' per-model DAS batch size (``PAPER_BATCH_SIZE``)


PAPER_MODELS: dict[str, PaperModel] = {model.name: model for model in (
    PaperModel("gpt2-small", "openai-community/gpt2", 12, 128),
    PaperModel("gpt2-medium", "openai-community/gpt2-medium", 24, 64),
    PaperModel("gpt2-large", "openai-community/gpt2-large", 36, 32),
    PaperModel("gpt2-xl", "openai-community/gpt2-xl", 48, 8),
    PaperModel("pythia-160m", "EleutherAI/pythia-160m", 12, 128),
    PaperModel("pythia-410m", "EleutherAI/pythia-410m", 24, 64),
    PaperModel("pythia-1.4b", "EleutherAI/pythia-1.4b", 24, 32),
    PaperModel("pythia-2.8b", "EleutherAI/pythia-2.8b", 32, 4),
    PaperModel("pythia-6.9b", "EleutherAI/pythia-6.9b", 32, 4),
)}

PAPER_DAS_EPOCHS = 64

# §6.4: the gpt2-small circuit heads the paper names. The authors' direction-patching list
# [R:6da9576] has ten: 0.4 and 6.4 (early heads, which reach the output through later heads; 6.4 is an
# "attribute mapping" head writing at SBJ2) and the eight below, the direct and intermediate attribute
# extractors that read sentiment into the final position. K1 ranks heads by their path effect on the
# final residual, so it tests the eight (docs/PAPER.md §6.4).
GPT2_CIRCUIT_HEADS = ("7.1", "7.5", "8.5", "9.2", "9.10", "10.1", "10.4", "11.9")

# The paper's steering model (§5.5): its coefficients are used as they are there.
STEERING_MODEL = "gpt2-small"
# §5.4-§5.6 (natural text, steering, negation) ran on gpt2-small's 12 layers: the early layer 1, the late
# layer 10; another model reads them at the same fraction of depth (``experiments.correlation.layer_at_depth``).
NATURAL_TEXT_N_LAYERS = PAPER_MODELS["gpt2-small"].n_layers
EARLY_PAPER_LAYER, LATE_PAPER_LAYER = 1, 10
# The model of the paper's summarization-motif numbers (§5.7) and layer band 9-14 of 32.
SUMMARIZATION_MODEL = "pythia-2.8b"
