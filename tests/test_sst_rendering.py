"""harness.reporting.rendering.sst: the SST results render into the report's sections, data and figures
(section titles, ``report.data`` keys and figure names as the report has always had them), with the
competence (P0) section and, where the zero-shot set fell back, a visible deviation section."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.reporting.report import ReportBuilder
from harness.datasets.sst import SSTFiles, SSTSplit
from harness.experiments.sst_ablations import ABLATIONS, NULL_POSITIONS, SSTAblations, ZeroShotSet
from harness.experiments.sst_patching import SSTPatching
from harness.datasets.sst_prompts import CLASSIFICATION, ZERO_SHOT, SSTPrompts, competence
from harness.interventions.sweep import PatchingResults


def _results() -> list[object]:
    split = SSTSplit("dev", Path("/data/stsa.binary.dev"), ("good .", "bad ."), (1, 0))
    generator = torch.Generator().manual_seed(0)
    labels = torch.tensor([1, 0, 1, 0])
    patched = {(method, layer): torch.randn(4, generator=generator)
               for method, layers in (("mean_diff", range(4)), ("das", (0, 3)), ("random", range(4))) for layer in layers}
    patching = SSTPatching(PatchingResults(labels, torch.tensor([2.0, -2.0, 1.0, -1.0]), torch.tensor([-1.0, 1.0, -2.0, 2.0]),
                                           patched), {"dev sentences": 2, "pairs used (seed 0)": 4}, "dev", "stsa.binary.dev", 3)
    counts = {"candidates": {"positive": 3, "negative": 3}, "balanced (seeded subsample)": {"positive": 2, "negative": 2}}
    prompts = SSTPrompts(ZERO_SHOT, ("good .", "bad ."), labels[:2], torch.ones(2, 3, dtype=torch.long),
                         torch.ones(2, 3, dtype=torch.long), torch.arange(2))
    diagnostic = {layer: {"norm_first": 90.0, "norm_rest": 1.0, "das_first": 3.0, "das_rest": 0.1, "random_first": 2.0,
                          "random_rest": 0.1} for layer in (0, 3)}
    scores = {"clean": torch.tensor([2.0, -2.0, 3.0, -1.0]), "first_position": diagnostic,
              "ablated": {name: torch.randn(4, generator=generator) for name in ABLATIONS},
              "null": {where: torch.randn(3, 4, generator=generator) for where in NULL_POSITIONS}}
    ablations = SSTAblations.from_scores(scores, labels, "resid_post", (0, 3), counts, 64, 0.975)
    measured = competence("classification", CLASSIFICATION, "dev", torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
                          torch.tensor([1, 0]))
    return [SSTFiles({"dev": split}), ZeroShotSet(prompts, counts, 0.75, 64, 10, 10, torch.tensor([2.0, 0.5]), fallback=True), ablations, patching, measured]


def test_sst_results_render_their_sections_data_and_figures(tmp_path):
    report = ReportBuilder("tiny", {})
    for result in _results():
        report.record(result)
    path = report.write(tmp_path)
    text = path.read_text()
    titles = ["SST files (§2.3)", "Deviation: the zero-shot ablation set (§2.3)",
              "SST zero-shot ablations (§5.3, §6.1 A1–A5)", "Directional patching onto SST (§5.2, §6.2 P3–P5)",
              "SST competence, classification scaffold (P0, §5.1)"]
    assert [title for title in report.sections] == titles
    assert all(f"## {title}" in text for title in titles)
    assert "- dev: /data/stsa.binary.dev (2 sentences, 1 positive, 1 negative)" in text
    assert "| das_comma_frozen " in text and "| mean_diff " in text
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["sst_ablations.png", "sst_layer_sweep.png"]
    data = json.loads((tmp_path / "results.json").read_text())["data"]
    assert data["sst_files"] == {"dev": {"path": "/data/stsa.binary.dev", "sentences": 2, "positive": 1}}
    assert data["zero_shot_set"] == {"counts": _results()[1].counts, "raw_accuracy": 0.75, "fallback": True,
                                     "deviation": _results()[1].deviation(),
                                     "class_mean_clean_ld": {"positive": 2.0, "negative": 0.5}}
    assert data["sst_competence"]["classification"]["centred_accuracy"] == 100
    assert data["sst_competence"]["classification"]["n"] == 2
    assert set(data["sst_ablations"]) == {"site", "layers", "counts", "ld_orig_mean", "ablations", "null",
                                          "first_position"}
    assert "| null (3 random, comma) " in text and len(data["sst_ablations"]["null"]["all"]["ld_drop"]) == 3
    assert set(data["sst_ablations"]["ablations"]["das_all"]) == {
        "ld_drop", "accuracy", "positive_ld_drop", "positive_accuracy", "negative_ld_drop", "negative_accuracy"}
    assert set(data["sst_patching"]) == {"counts", "ld_recovered", "logit_flip"}
    assert list(data["sst_patching"]["ld_recovered"]["das"]) == ["0", "3"]
