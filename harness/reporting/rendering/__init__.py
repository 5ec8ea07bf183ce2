"""Renderers: each result type the fixtures record turns itself into report sections, data and
figures here, at session end (``ReportBuilder.write``). One module per family of results; a renderer
is registered with ``@render.register`` on the result's type.

    report.record(result)        # in a fixture: nothing is formatted or drawn there
    render(result, report)       # at write: the registered renderer adds sections, data, figures
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import singledispatch
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[3]


def shown_path(path: Path | str) -> str:
    """A file the suite ships, relative to the project (a report reads the same on every machine); a user's
    file as given."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(PROJECT)) if resolved.is_relative_to(PROJECT) else str(path)


@singledispatch
def render(result: object, report) -> None:
    raise TypeError(f"no renderer for {type(result).__name__}: register one in harness/reporting/rendering/")


def _register_renderers() -> None:
    """Import every module of this package: each registers its renderers (a new module needs no list)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_register_renderers()
