"""The command line (``python -m harness.reporting.matrix``): read the files given, build the matrix,
write it; exits 2 when no file is usable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from harness.reporting.matrix.build import build_matrix
from harness.reporting.matrix.read import load_results
from harness.reporting.matrix.write import write_matrix

DESCRIPTION = "The cross-model replication matrix: every model's ``results.json`` merged into one table of claims."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.reporting.matrix", description=DESCRIPTION)
    parser.add_argument("paths", nargs="+", type=Path,
                        help="reports directories (searched for */results.json) or results.json files")
    parser.add_argument("--out", type=Path, default=None,
                        help="where MATRIX.md, matrix.json and figures/ go (default: the first directory given)")
    parser.add_argument("--run-id", default=None, help="only files of this run (results.json's run_id)")
    parser.add_argument("--models", default=None,
                        help="comma-separated model names: exactly these columns (one without results is "
                             "marked failed)")
    args = parser.parse_args(argv)
    results = load_results(args.paths)
    expected = [m for m in args.models.split(",") if m] if args.models else None
    matrix = build_matrix(results, run_id=args.run_id, expected_models=expected)
    if not matrix.used:
        reasons = [f"  {item.path}: {item.reason}" for item in matrix.left_out] or \
                  [f"  no results.json found under {', '.join(map(str, args.paths))}"]
        print("harness.reporting.matrix: no usable results.json:\n" + "\n".join(reasons), file=sys.stderr)
        return 2
    first = args.paths[0]
    out = args.out or (first if first.is_dir() else first.parent.parent)
    path = write_matrix(matrix, out)
    for item in matrix.left_out:
        print(f"left out {item.path}: {item.reason}", file=sys.stderr)
    print(f"replication matrix: {path} ({len(matrix.used)} of {len(results)} files, "
          f"{len(matrix.columns)} models, {len(matrix.claims)} claims)")
    return 0
