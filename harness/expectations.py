"""Per-model expectations: claims measured not to replicate on a model, each a strict xfail.

A file ``claims/expectations/<model>.toml`` maps a claim test id (its node id under ``claims/``) to the
value measured when it was found not to replicate and the reason:

    ["test_directions.py::test_d1_methods_agree[layer0-mean_diff-kmeans]"]
    measured = "0.758"
    reason = "layer 0 is the token embedding; K-means splits it along another axis"

The test then runs as ``xfail(strict=True)``: it must still fail (CI stays green and honest), and an
unexpected pass fails the run, so the entry is removed once the claim replicates.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Expectation:
    test_id: str
    measured: str
    reason: str


def model_file_stem(model_name: str) -> str:
    """A file-system-safe name for a model (hub ids ``owner/name`` become ``owner__name``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_name.replace("/", "__"))


def load_expectations(directory: Path, model_name: str) -> dict[str, Expectation]:
    path = directory / f"{model_file_stem(model_name)}.toml"
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path}: not valid TOML ({error})") from None
    expectations = {}
    for test_id, entry in table.items():
        if not isinstance(entry, dict) or not {"measured", "reason"} <= set(entry):
            raise ValueError(f"{path}: entry {test_id!r} needs 'measured' and 'reason'")
        expectations[test_id] = Expectation(test_id, str(entry["measured"]), str(entry["reason"]))
    return expectations
