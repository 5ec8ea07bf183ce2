"""The cross-model replication matrix (``harness/reporting/matrix/``) on synthetic ``results.json`` files shaped like
``reports/<model>/results.json``: the claim-level rules, which files go side by side (declarations, run id,
expected models, duplicates, malformed files), the figures and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.verdicts.declaration import Verdict
from harness.verdicts.declared import CLAIMS, declarations_sha256
from harness.reporting.matrix import (ClaimCell, build_matrix, claim_verdict, load_results, main, matrix_markdown,
                            sweep_by_relative_depth, write_matrix)

RUN = "run-a"
D1_LAYER0 = "test_directions.py::test_d1_methods_agree[layer0-{}]"
DAS_LAYER = "test_directional_patching.py::test_p2_other_methods_flip_sentiment[das-layer{}]"


def row(test_id: str, claim: str, verdict: Verdict, measured: float | None = 0.5,
        ci: tuple[float, float] | None = (0.4, 0.6)) -> dict:
    """A measured claim row as ``ReportBuilder._json`` writes it (declared section, statement, paper value)."""
    declared = CLAIMS[claim]
    low, high = ci if ci and measured is not None else (None, None)
    return {"test_id": test_id, "outcome": "failed" if verdict == Verdict.DOES_NOT_REPLICATE else "passed",
            "status": verdict, "seconds": 1.0, "note": "", "expected_verdict": None, "claim": claim,
            "section": declared.section, "statement": declared.statement, "description": declared.statistic,
            "paper_value": str(declared.paper), "measured": measured, "ci_low": low, "ci_high": high, "n": 52,
            "n_unit": "train prompts", "ci_method": "percentile bootstrap", "threshold": 0.75, "passes_when": "above",
            "threshold_kind": "generic", "tolerance": ">= 0.75", "threshold_source": "generic", "verdict": verdict,
            "passed": verdict == Verdict.REPLICATES, "undefined_resamples": 0, "n_to_decide": None, "centre": None,
            "unit": "", "details": "", "case": None, "preconditions": {}}


def crash(test_id: str, claim: str, outcome: str = "failed") -> dict:
    """A ``not_measured`` row: a test that crashed (or was skipped) before measuring."""
    return {"test_id": test_id, "claim": claim, "outcome": outcome,
            "status": "skipped" if outcome == "skipped" else "ERROR (no measurement; see note)",
            "note": "OSError: config.json is not a valid JSON file" if outcome != "skipped" else "Skipped: gpt2 only"}


def default_rows() -> list[dict]:
    """D1 mixed (2 replicate, 1 does not), D1.random replicates, P1 does not replicate."""
    return [row(D1_LAYER0.format("mean_diff-kmeans"), "D1", Verdict.REPLICATES, 0.97, (0.95, 0.99)),
            row(D1_LAYER0.format("mean_diff-probe"), "D1", Verdict.REPLICATES, 0.9, (0.8, 0.95)),
            row(D1_LAYER0.format("probe-pca"), "D1", Verdict.DOES_NOT_REPLICATE, 0.3, (0.2, 0.4)),
            row("test_directions.py::test_d1_random_is_orthogonal", "D1.random", Verdict.REPLICATES, 0.0862,
                (0.0751, 0.0972)),
            row("test_directional_patching.py::test_p1_das_patching_flips_sentiment[logit_flip]", "P1",
                Verdict.DOES_NOT_REPLICATE, 12.0, (5.0, 20.0))]


def write_results(root: Path, model: str, *, rows: list[dict] | None = None, not_measured: list[dict] | None = None,
                  run_id: str | None = RUN, digest: str | None = "current", generated: int = 1_700_000_000,
                  n_layers: int = 12, sweep: bool = True, directory: str | None = None,
                  claim_verdicts: dict | None = None) -> Path:
    """Write ``root/<directory or model>/results.json`` shaped like the suite's; ``digest="current"`` is the
    current declarations' digest, ``None`` leaves the key out (an older file), as ``run_id=None`` does."""
    layers = range(n_layers + 1)
    content: dict = {"model": model}
    if run_id is not None:
        content["run_id"] = run_id
    if digest is not None:
        content["declarations_sha256"] = declarations_sha256() if digest == "current" else digest
    content |= {
        "claims": default_rows() if rows is None else rows,
        "not_measured": not_measured or [],
        "verdict_counts": {},
        **({"claim_verdicts": claim_verdicts} if claim_verdicts else {}),
        "seeds": {"seeds": [0], "by_test": {}},
        "data": {"toy_sweep": {"ld_recovered": {m: {str(l): 10.0 * l for l in layers} for m in ("mean_diff", "das")}},
                 "toy_sweep_ci": {"ld_recovered": {m: {str(l): [10.0 * l - 5, 10.0 * l + 5] for l in layers}
                                                   for m in ("mean_diff", "das")}}} if sweep else {},
        "timings": {},
        "environment": {"model": model, "architecture": "GPT2LMHeadModel", "n_layers": n_layers, "d_model": 64,
                        "weights_sha256": "0" * 64, "git_commit": "abc123", "packages": {}, "settings": {},
                        "generated_unix_time": generated},
    }
    path = root / (directory or model) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


def markdown_of(matrix) -> str:
    """MATRIX.md's text without drawing the figures."""
    return matrix_markdown(matrix, sweep_by_relative_depth(matrix), [])


def claim_cell(matrix, claim: str, model: str) -> ClaimCell:
    return next(line for line in matrix.claims if line.claim == claim).cells[model]


# Claim-level rules -----------------------------------------------------------------------------------

@pytest.mark.parametrize("tally, verdict", [
    ({Verdict.REPLICATES: 4}, Verdict.REPLICATES),
    ({Verdict.DOES_NOT_REPLICATE: 3}, Verdict.DOES_NOT_REPLICATE),
    ({Verdict.INCONCLUSIVE: 2}, Verdict.INCONCLUSIVE),
    ({Verdict.NOT_APPLICABLE: 5}, Verdict.NOT_APPLICABLE),
    ({Verdict.REPLICATES: 3, Verdict.NOT_APPLICABLE: 2}, Verdict.REPLICATES),  # n/a rows decide nothing
    ({Verdict.REPLICATES: 5, Verdict.DOES_NOT_REPLICATE: 2, Verdict.INCONCLUSIVE: 1}, "mixed"),
    ({Verdict.REPLICATES: 1, Verdict.INCONCLUSIVE: 1}, "mixed"),
    ({"skipped": 5}, "skipped"),
    ({"crashed": 1, "skipped": 1}, "crashed"),
])
def test_claim_verdict_rules(tally, verdict):
    assert claim_verdict(tally) == verdict


def test_claim_cell_text_one_row_and_several():
    one = ClaimCell.of([row(D1_LAYER0.format("a-b"), "D1", Verdict.REPLICATES, 0.91234, (0.88123, 0.95))])
    assert one.text == "replicates 0.912 [0.881, 0.95]"
    rows = ([row(D1_LAYER0.format(i), "D1", Verdict.REPLICATES) for i in range(5)]
            + [row(D1_LAYER0.format(i), "D1", Verdict.DOES_NOT_REPLICATE) for i in range(5, 7)]
            + [row(D1_LAYER0.format(7), "D1", Verdict.INCONCLUSIVE)])
    assert ClaimCell.of(rows).text == "mixed: 5/8 replicate, 2 do not, 1 inconclusive"
    not_applicable = [row(D1_LAYER0.format(i), "D1", Verdict.NOT_APPLICABLE, None) for i in range(4)]
    assert ClaimCell.of(not_applicable).text == "not applicable: 4 n/a"


def test_rows_keyed_by_layers_that_differ_between_models(tmp_path):
    """DAS rows of a 12-layer and a 24-layer model: one claim cell each, a detail row per test (blank where
    the model has no such row)."""
    write_results(tmp_path, "shallow", rows=[row(DAS_LAYER.format(l), "P2", Verdict.REPLICATES) for l in (3, 6)])
    deep_rows = ((6, Verdict.REPLICATES), (12, Verdict.INCONCLUSIVE))
    write_results(tmp_path, "deep", rows=[row(DAS_LAYER.format(l), "P2", v) for l, v in deep_rows], n_layers=24)
    matrix = build_matrix(load_results([tmp_path]))
    assert claim_cell(matrix, "P2", "shallow").text == "replicates: 2/2 replicate"
    assert claim_cell(matrix, "P2", "deep").text == "mixed: 1/2 replicate, 1 inconclusive"
    tests = {t.test_id: set(t.cells) for t in matrix.claims[0].tests}
    assert tests == {DAS_LAYER.format(3): {"shallow"}, DAS_LAYER.format(6): {"shallow", "deep"},
                     DAS_LAYER.format(12): {"deep"}}


def test_claims_grouped_by_section_in_declaration_order_and_summary(tmp_path):
    write_results(tmp_path, "m1")
    write_results(tmp_path, "m2", rows=[r | {"verdict": Verdict.REPLICATES} if r["claim"] == "D1" else r
                                        for r in default_rows()])
    matrix = build_matrix(load_results([tmp_path]))
    declared = [c for c in CLAIMS if c in {"D1", "D1.random", "P1"}]
    sections = list(dict.fromkeys(CLAIMS[c].section for c in declared))
    assert list(matrix.sections()) == sections
    assert [line.claim for line in matrix.claims] == [c for s in sections for c in declared if CLAIMS[c].section == s]
    summary = {group: [e["claim"] for e in entries] for group, entries in matrix.summary().items()}
    assert summary == {"every model": [], "some models": ["D1"], "no model": ["P1"],
                       "decided on no model": []}  # paper claims only: D1.random is a control
    assert matrix.others() == {"control": [{"claim": "D1.random", "verdicts": {"m1": "replicates", "m2": "replicates"}}]}
    text = markdown_of(matrix)
    assert "| D1 " in text and "mixed: 2/3 replicate, 1 do not" in text and "replicates 0.0862 [0.0751, 0.0972]" in text
    assert "- Not paper claims, control (1): D1.random (m1: replicates; m2: replicates)" not in text
    assert "- Not paper claims, control (1): D1.random (m1: replicates, m2: replicates)" in text


# Which files go side by side -------------------------------------------------------------------------

def test_other_declarations_are_named_and_left_out(tmp_path):
    write_results(tmp_path, "m1")
    write_results(tmp_path, "m2")
    other = write_results(tmp_path, "m3", digest="f" * 64)
    old = write_results(tmp_path, "m4", digest=None)
    matrix = build_matrix(load_results([tmp_path]))
    assert [c.model for c in matrix.columns] == ["m1", "m2"]
    text = markdown_of(matrix)
    assert f"`{other}`: m3: decided under other declarations (ffffffffffff)" in text
    assert f"`{old}`: m4: decided under other declarations (no digest)" in text


def test_common_digest_used_when_no_file_matches_the_code(tmp_path):
    for model in ("m1", "m2"):
        write_results(tmp_path, model, digest="e" * 64)
    matrix = build_matrix(load_results([tmp_path]))
    assert [c.model for c in matrix.columns] == ["m1", "m2"] and matrix.digest == "e" * 64
    assert "every file agrees on eeeeeeeeeeee, used instead" in markdown_of(matrix)


def test_run_id_filter_and_failed_columns(tmp_path):
    """Another run's file is named; an expected model without results, and one whose every test crashed,
    are columns marked failed."""
    write_results(tmp_path, "m1")
    other_run = write_results(tmp_path, "m2", run_id="run-b")
    write_results(tmp_path, "crashy", rows=[], not_measured=[crash(D1_LAYER0.format("a-b"), "D1"),
                                                             crash("test_x.py::test_p1", "P1", "error")])
    matrix = build_matrix(load_results([tmp_path]), run_id=RUN, expected_models=["m1", "m3", "crashy"])
    failures = {c.model: c.failure for c in matrix.columns}
    assert failures == {"m1": None, "m3": "failed (no results from this run)",
                        "crashy": "failed (every claim test crashed)"}
    assert all(line.cells["m3"].text == "—" for line in matrix.claims)
    assert claim_cell(matrix, "D1", "crashy").verdict == "crashed"
    text = markdown_of(matrix)
    assert "m3: failed (no results from this run)" in text
    assert f"`{other_run}`: m2: from another run (run_id 'run-b')" in text
    assert "OSError: config.json is not a valid JSON file" in text  # the crash's note, in the files table
    assert [e["claim"] for e in matrix.summary()["some models"]] == ["D1"]  # failed columns do not count


def test_malformed_files_are_named_and_the_rest_merge(tmp_path):
    write_results(tmp_path, "m1")
    write_results(tmp_path, "m2")
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "results.json").write_text('{"model": "x", "claims": [')
    missing = write_results(tmp_path, "m3")
    content = json.loads(missing.read_text())
    del content["claims"]
    missing.write_text(json.dumps(content))
    matrix = build_matrix(load_results([tmp_path]))
    assert [c.model for c in matrix.columns] == ["m1", "m2"]
    reasons = {Path(item.path).parent.name: item.reason for item in matrix.left_out}
    assert reasons["garbled"].startswith("unreadable: not valid JSON")
    assert reasons["m3"] == "unreadable: lacks the required key 'claims'"


def test_newer_file_of_a_model_supersedes_the_older(tmp_path):
    old = write_results(tmp_path, "m1", directory="m1-old", generated=100)
    new = write_results(tmp_path, "m1", directory="m1-new", rows=default_rows()[:1], generated=200)
    matrix = build_matrix(load_results([tmp_path]))
    assert len(matrix.columns) == 1 and matrix.columns[0].results.path == new
    assert f"`{old}`: m1: superseded by the newer {new}" in markdown_of(matrix)


# Writing ---------------------------------------------------------------------------------------------

def test_write_matrix_files_and_figures(tmp_path):
    reports = tmp_path / "reports"
    write_results(reports, "m12", n_layers=12)
    write_results(reports, "m24", n_layers=24)
    write_results(reports, "no-sweep", sweep=False)
    matrix = build_matrix(load_results([reports]), expected_models=["m12", "m24", "no-sweep", "gone"])
    path = write_matrix(matrix, tmp_path / "out")
    for name in ("MATRIX.md", "matrix.json", "figures/matrix_heatmap.png", "figures/sweep_relative_depth.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    text = path.read_text()
    assert "![matrix_heatmap](figures/matrix_heatmap.png)" in text
    assert "No sweep data (not drawn): no-sweep (no toy_sweep data), gone (no results)" in text
    data = json.loads((tmp_path / "out" / "matrix.json").read_text())
    assert [m["model"] for m in data["models"]] == ["m12", "m24", "no-sweep", "gone"]
    curves = data["sweep_relative_depth"]["ld_recovered"]
    assert list(curves) == ["mean_diff", "das"]
    assert curves["mean_diff"]["m24"][-1][:2] == [1.0, 240.0] and curves["mean_diff"]["m12"][6][0] == 0.5
    d1 = next(c for c in data["claims"] if c["claim"] == "D1")
    assert d1["cells"]["m12"]["verdict"] == "mixed" and d1["cells"]["gone"]["verdict"] == "failed"
    assert d1["tests"][0]["cells"]["m12"]["measured"] == 0.97


def test_command_line_on_a_directory(tmp_path, capsys):
    write_results(tmp_path, "m1")
    write_results(tmp_path, "m2", run_id="run-b")
    assert main([str(tmp_path), "--run-id", RUN]) == 0
    assert "1 of 2 files, 1 models" in capsys.readouterr().out
    data = json.loads((tmp_path / "matrix.json").read_text())
    assert [m["model"] for m in data["models"]] == ["m1"] and data["run_id"] == RUN
    assert (tmp_path / "MATRIX.md").is_file()


def test_command_line_without_a_usable_file_fails_clearly(tmp_path, capsys):
    (tmp_path / "m1").mkdir()
    (tmp_path / "m1" / "results.json").write_text("not json")
    assert main([str(tmp_path)]) != 0
    error = capsys.readouterr().err
    assert "no usable results.json" in error and "not valid JSON" in error
    assert not (tmp_path / "MATRIX.md").exists()
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) != 0
    assert "no results.json found" in capsys.readouterr().err


def test_a_cell_takes_the_models_own_claim_level_verdict(tmp_path):
    """Where results.json has claim_verdicts (its declared combine rule, Holm), the cell shows that verdict,
    not the rows' agreement: D1's mixed rows are one claim-level "does not replicate"."""
    write_results(tmp_path, "m1", claim_verdicts={"D1": {"verdict": "does not replicate"}})
    matrix = build_matrix(load_results([tmp_path]))
    assert claim_cell(matrix, "D1", "m1").verdict == Verdict.DOES_NOT_REPLICATE
    assert claim_cell(matrix, "D1", "m1").text.startswith("does not replicate: 2/3 replicate")
