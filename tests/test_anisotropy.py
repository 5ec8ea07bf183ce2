"""The residual-anisotropy diagnostic (``harness.measures.anisotropy``) and its report section."""

from __future__ import annotations

import json

import pytest
import torch

from harness.measures.anisotropy import outlier_dimensions
from harness.reporting.report import ReportBuilder


def test_isotropic_residuals_have_no_outlier_and_a_third_of_their_dimensions_effective():
    resid = torch.randn(1, 4000, 64, generator=torch.Generator().manual_seed(0))
    (row,) = outlier_dimensions(resid, "isotropic").boundaries
    assert row.top1_share < 3 / 64  # about 1/64 on average; the largest of 64 means a little more
    assert row.effective_dims == pytest.approx((64 + 2) / 3, rel=0.05)  # E[(Σx²)²] / E[Σx⁴]


def test_a_planted_outlier_coordinate_is_found_with_its_share():
    resid = torch.randn(2, 2000, 64, generator=torch.Generator().manual_seed(1))
    resid[1, :, 17] += 30.0  # boundary 1: coordinate 17 carries 900 of about 900 + 64 squared units
    diagnostic = outlier_dimensions(resid, "planted")
    clean, planted = diagnostic.boundaries
    assert planted.top_coordinates[0] == 17 and clean.top1_share < 0.1
    assert planted.top1_share == pytest.approx(900 / (900 + 64), abs=0.01)
    assert planted.effective_dims < 1.2
    assert diagnostic.most_dominated() is planted


def test_the_report_shows_the_diagnostic(tmp_path):
    resid = torch.randn(3, 200, 16, generator=torch.Generator().manual_seed(2))
    resid[2, :, 3] += 20.0
    report = ReportBuilder("tiny", {})
    report.record(outlier_dimensions(resid, "tiny sample"))
    report.write(tmp_path)
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Residual anisotropy: outlier dimensions" in text
    assert "boundary 2, coordinate 3" in text
    data = json.loads((tmp_path / "results.json").read_text())["data"]["anisotropy"]
    assert [b["top_coordinates"][0] for b in data["boundaries"]][2] == 3
