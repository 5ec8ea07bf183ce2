"""harness.reporting.rendering.das: DAS training renders a per-layer table (epochs run, best epoch, initial and
best validation loss, final train loss, why it stopped, trained), names the dropped layers and why,
puts every curve in ``report.data["das_training"]`` and draws ``das_validation_loss.png``."""

from __future__ import annotations

import json

from harness.directions.das import STOPPED_AT_CAP, STOPPED_BY_PATIENCE, DASSettings, DASTrainingSummary
from harness.directions.fitting import DASTraining
from harness.reporting.report import ReportBuilder

SETTINGS = DASSettings(epochs=12, batch_size=8, layers=(12, 30))


def _training(seed: int = 0) -> DASTraining:
    trained = DASTrainingSummary(12, 12, 11, 0.98, 0.21, 0.18, STOPPED_AT_CAP, True,
                                 tuple(1 - 0.07 * k for k in range(12)), tuple(0.9 - 0.06 * k for k in range(11)) + (0.22,),
                                 39, 13)
    untrained = DASTrainingSummary(30, 3, 0, 1.0, 1.0, 1.0, STOPPED_BY_PATIENCE, False, (1.0,) * 3, (1.0,) * 3, 39, 13)
    return DASTraining("das", SETTINGS, 52, seed, {12: trained, 30: untrained})


def test_das_training_renders_its_table_dropped_layers_data_and_figure(tmp_path):
    report = ReportBuilder("tiny", {})
    report.record(_training())
    text = report.write(tmp_path).read_text()
    assert list(report.sections) == ["DAS training (§4)"]
    header = next(line for line in text.splitlines() if line.replace(" ", "").startswith("|layer|"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "layer", "epochs run", "best epoch", "initial val. loss", "best val. loss", "final train loss", "stopped", "trained"]
    assert "| 0.980 " in text and f"| {STOPPED_BY_PATIENCE} " in text and "| **no** " in text and "| yes " in text
    assert "Dropped (not trained" in text and "L30: best held-out loss 1.000 (epoch 0)" in text
    assert "39 fit / 13 validation pairs" in text
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["das_validation_loss.png"]
    data = json.loads((tmp_path / "results.json").read_text())["data"]["das_training"]
    assert data["seed"] == 0 and list(data["dropped"]) == ["30"]
    assert data["layers"]["12"]["best_epoch"] == 11 and len(data["layers"]["12"]["validation_loss"]) == 12
    assert data["layers"]["30"]["trained"] is False


def test_each_seed_gets_its_own_section_and_figure(tmp_path):
    report = ReportBuilder("tiny", {})
    report.record(_training(0))
    report.record(_training(1))
    report.write(tmp_path)
    assert list(report.sections) == ["DAS training (§4)", "DAS training (§4), seed 1"]
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["das_validation_loss.png",
                                                                         "das_validation_loss_seed1.png"]
