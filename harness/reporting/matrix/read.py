"""Reading ``results.json`` files for the matrix: finding them under the paths given, checking their shape,
and ``ModelResults``, what the matrix keeps of one file (or why it could not be read)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

REQUIRED_KEYS = {"model": str, "claims": list, "not_measured": list, "environment": dict}
ROW_KEYS = {"claims": ("test_id", "claim", "verdict"), "not_measured": ("test_id", "claim")}
CRASH_OUTCOMES = ("failed", "error")


@dataclass
class ModelResults:
    """One ``results.json``: its model's claim rows and what the matrix needs of the rest. A file that
    could not be read has ``problem`` set and nothing else."""

    path: Path
    model: str = ""
    run_id: str = ""
    digest: str | None = None
    claims: list[dict] = field(default_factory=list)
    not_measured: list[dict] = field(default_factory=list)
    claim_verdicts: dict = field(default_factory=dict)  # claim id -> its claim-level verdict (issue 25, item 6)
    data: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    problem: str | None = None

    @property
    def generated(self) -> float:
        value = self.environment.get("generated_unix_time")
        return float(value) if isinstance(value, (int, float)) else 0.0

    @property
    def crashed(self) -> bool:
        """Nothing was measured: no claim row, and every test that ran crashed (failed or errored)."""
        return not self.claims and all(row.get("outcome") in CRASH_OUTCOMES for row in self.not_measured)

    def describe(self) -> dict[str, object]:
        """The file as the matrix lists it."""
        generated = self.environment.get("generated_unix_time")
        return {"model": self.model, "path": str(self.path), "run_id": self.run_id,
                "git_commit": self.environment.get("git_commit", ""),
                "generated": _utc(generated) if isinstance(generated, (int, float)) else "",
                "declarations_sha256": self.digest, "n_layers": self.environment.get("n_layers"),
                "architecture": self.environment.get("architecture")}


def find_results(paths: Iterable[Path | str]) -> list[Path]:
    """The ``results.json`` files named, or found in a named directory (in it, and one level down)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += [p for p in [path / "results.json", *sorted(path.glob("*/results.json"))] if p.is_file()]
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def load_results(paths: Iterable[Path | str]) -> list[ModelResults]:
    """Each ``results.json`` found under ``paths`` (see ``find_results``); one that cannot be read or lacks
    a required key comes back with ``problem`` saying what is wrong, so the others still merge."""
    return [_load_one(path) for path in find_results(paths)]


def _load_one(path: Path) -> ModelResults:
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        return ModelResults(path, problem=f"cannot be read: {error}")
    except json.JSONDecodeError as error:
        return ModelResults(path, problem=f"not valid JSON: {error}")
    problem = _shape_problem(content)
    if problem:
        return ModelResults(path, problem=problem)
    return ModelResults(path, model=content["model"], run_id=str(content.get("run_id") or ""),
                        digest=content.get("declarations_sha256"), claims=content["claims"],
                        not_measured=content["not_measured"], data=content.get("data") or {},
                        claim_verdicts=content.get("claim_verdicts") or {},
                        environment=content["environment"])


def _shape_problem(content: object) -> str | None:
    if not isinstance(content, dict):
        return f"the top level is a {type(content).__name__}, not an object"
    for key, kind in REQUIRED_KEYS.items():
        if key not in content:
            return f"lacks the required key {key!r}"
        if not isinstance(content[key], kind):
            return f"{key!r} is a {type(content[key]).__name__}, not a {kind.__name__}"
    for key, required in ROW_KEYS.items():
        for index, row in enumerate(content[key]):
            if not isinstance(row, dict):
                return f"{key}[{index}] is a {type(row).__name__}, not an object"
            missing = [k for k in required if k not in row]
            if missing:
                return f"{key}[{index}] lacks {', '.join(map(repr, missing))}"
    return None


def _utc(unix_time: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_time))
