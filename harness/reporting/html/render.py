"""The Jinja2 environment of the HTML pages: the templates under ``templates/`` (``*.html.j2``, with the
inline stylesheet and script they include), autoescaped, and undefined names an error."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from harness.reporting.html.encoding import claim_anchor, interval_text, number_text, row_anchor, script_json

TEMPLATES = Path(__file__).parent / "templates"


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(number=number_text, script_json=script_json, row_anchor=row_anchor,
                       claim_anchor=claim_anchor)
    env.globals.update(interval=interval_text, verdict_class=verdict_class)
    return env


def verdict_class(verdict: object) -> str:
    """The CSS class that colours a verdict ("v-does-not-replicate"); "v-none" for no verdict."""
    return "v-" + ("-".join(str(verdict).split()) if verdict else "none")


def write_page(path: Path, template: str, **context: object) -> Path:
    """Render ``template`` with ``context`` into the file ``path`` (UTF-8); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(environment().get_template(template).render(**context), encoding="utf-8")
    return path
