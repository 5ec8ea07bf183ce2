"""The cross-model replication matrix: every model's ``results.json`` merged into one table of claims.

    python -m harness.reporting.matrix reports/ [more dirs or results.json files] [--out DIR] [--run-id ID] [--models a,b]

Writes ``MATRIX.md``, ``matrix.json``, ``figures/matrix_heatmap.png`` and ``figures/sweep_relative_depth.png``
under ``--out`` (default: the first reports directory given). A directory is searched for ``*/results.json``
one level down and for ``results.json`` in it.

- ``read``: finding and reading ``results.json`` files (``ModelResults``, ``load_results``);
- ``cells``: a model's rows of one claim as a cell (``ClaimCell``, ``claim_verdict``);
- ``build``: which files go side by side, the columns and claim lines (``build_matrix``, ``Matrix``);
- ``sweep``: the ToyMovieReview sweep against relative depth (``sweep_by_relative_depth``);
- ``figures``: the verdict heatmap and the sweep plot;
- ``write``: ``MATRIX.md``, ``matrix.json`` and the figures (``write_matrix``);
- ``cli``: the command line (``main``; ``__main__`` runs it).
"""

from harness.reporting.matrix.build import ClaimLine, Column, LeftOut, Matrix, TestLine, build_matrix
from harness.reporting.matrix.cells import ClaimCell, claim_verdict, row_category, row_text, tally_text
from harness.reporting.matrix.cli import main
from harness.reporting.matrix.figures import draw_heatmap, draw_sweep
from harness.reporting.matrix.read import ModelResults, find_results, load_results
from harness.reporting.matrix.sweep import Sweep, sweep_by_relative_depth
from harness.reporting.matrix.write import matrix_json, matrix_markdown, write_matrix

__all__ = ["ClaimCell", "ClaimLine", "Column", "LeftOut", "Matrix", "ModelResults", "Sweep", "TestLine",
           "build_matrix", "claim_verdict", "draw_heatmap", "draw_sweep", "find_results", "load_results", "main",
           "matrix_json", "matrix_markdown", "row_category", "row_text", "sweep_by_relative_depth", "tally_text",
           "write_matrix"]
