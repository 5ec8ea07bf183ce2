"""Values as an HTML page holds them: numbers and intervals as text (±∞ for an unbounded end, as Fieller
intervals have), element ids made from test ids, JSON for a script, figures as ``data:`` URIs.

``results.json`` may hold ``Infinity``, ``-Infinity`` and ``NaN`` (Python's ``json`` writes them), which
are not JSON: ``script_json`` maps them to the strings ``"+inf"``, ``"-inf"`` and ``"nan"`` and encodes
strictly, so a script's ``JSON.parse`` never meets them."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

SAFE_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
NON_FINITE_TEXT = {math.inf: "+∞", -math.inf: "−∞"}


def number_text(value: object) -> str:
    """A measured number as the report writes it (3 decimals under 10, else 1); ±∞ and NaN spelled out,
    "" for none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return NON_FINITE_TEXT[value]
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def interval_text(low: object, high: object) -> str:
    """"[low, high]" (an unbounded end as ±∞); "" when the row has no interval."""
    if low is None and high is None:
        return ""
    return f"[{number_text(low)}, {number_text(high)}]"


def element_id(prefix: str, name: str) -> str:
    """``prefix-name`` with every character outside ``[A-Za-z0-9_.-]`` written as ``~`` and its UTF-8 bytes
    in hex (one-to-one, so two test ids never share an anchor; ``~`` itself becomes ``~7e``)."""
    encoded = "".join(c if c in SAFE_ID_CHARACTERS else "".join(f"~{b:02x}" for b in c.encode()) for c in name)
    return f"{prefix}-{encoded}"


def row_anchor(test_id: str) -> str:
    """The id of a test row on a model's page (the matrix links to it)."""
    return element_id("row", test_id)


def claim_anchor(claim: str) -> str:
    """The id of a claim's line in a model page's claim-level table."""
    return element_id("claim", claim)


def finite_only(value: object) -> object:
    """``value`` with every non-finite float replaced by "+inf", "-inf" or "nan" (lists and dicts walked)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("+inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): finite_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_only(v) for v in value]
    return value


def script_json(value: object) -> Markup:
    """``value`` as strict JSON that is safe inside ``<script type="application/json">`` (``<``, ``>``, ``&``
    and the line separators escaped)."""
    text = json.dumps(finite_only(value), allow_nan=False, ensure_ascii=False, sort_keys=True, default=str)
    for character, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                              ("\u2029", "\\u2029")):
        text = text.replace(character, escape)
    return Markup(text)


def figure_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI (the page carries its figures)."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@dataclass(frozen=True)
class Figure:
    name: str  # the file's stem
    uri: str  # the file as a data: URI


def embedded_figures(figure_dir: Path | None) -> dict[str, Figure]:
    """Every PNG file of ``figure_dir`` (none when it is None or absent), by stem, in name order."""
    if figure_dir is None or not figure_dir.is_dir():
        return {}
    return {p.stem: Figure(p.stem, figure_uri(p)) for p in sorted(figure_dir.glob("*.png"))}


def as_json_values(data: dict) -> dict:
    """``data`` as ``results.json`` / ``matrix.json`` hold it (enums as their values, paths as text), so a page
    shows exactly what the file says."""
    return json.loads(json.dumps(data, default=str))
