"""Progress of the suite's long stages (a DAS fit, a patching sweep, generation), for the person waiting.

A stage is opened by ``ReportBuilder.timed`` (its row of the report's timing table); the loops inside it
call ``track`` on what they iterate over, which counts steps toward the innermost open stage and does
nothing when no stage is open (the harness used as a library stays silent). Where the steps go is the
``display`` in force (``use_display``): by default none; the suite's pytest plugin (``fixtures/progress.py``)
installs a tqdm bar (stage name, step/total, elapsed, remaining) on an interactive terminal and one line
per finished stage elsewhere (CI logs).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol, Sized, TypeVar

T = TypeVar("T")


class Display(Protocol):
    def started(self, stage: "Stage") -> None: ...
    def advanced(self, stage: "Stage") -> None: ...
    def finished(self, stage: "Stage") -> None: ...


@dataclass
class Stage:
    """One open stage: ``total`` grows as tracked loops announce their lengths."""

    name: str
    started_at: float = field(default_factory=time.perf_counter)
    done: int = 0
    total: int = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started_at


class Silent:
    def started(self, stage: Stage) -> None:
        pass

    def advanced(self, stage: Stage) -> None:
        pass

    def finished(self, stage: Stage) -> None:
        pass


_display: Display = Silent()
_open: list[Stage] = []


@contextmanager
def use_display(display: Display) -> Iterator[None]:
    """Send stage progress to ``display`` for the duration of the block."""
    global _display
    previous, _display = _display, display
    try:
        yield
    finally:
        _display = previous


@contextmanager
def stage(name: str) -> Iterator[Stage]:
    """Open a stage (nested stages are shown as their own)."""
    current = Stage(name)
    _open.append(current)
    _display.started(current)
    try:
        yield current
    finally:
        _open.remove(current)
        _display.finished(current)


def track(steps: Iterable[T], total: int | None = None) -> Iterator[T]:
    """Iterate over ``steps``, counting each toward the innermost open stage (its total grows by the
    loop's length, ``total`` or ``len(steps)``, so nested and successive loops add up)."""
    if not _open:
        yield from steps
        return
    current = _open[-1]
    length = total if total is not None else len(steps) if isinstance(steps, Sized) else 0
    current.total += length
    _display.advanced(current)
    for item in steps:
        yield item
        current.done += 1
        _display.advanced(current)
