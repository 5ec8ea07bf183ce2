"""harness.runtime.progress and its pytest display (fixtures/progress.py).

- ``track`` counts each step toward the innermost open stage, its total growing by each loop's length,
  and passes the items through unchanged; with no stage open it does nothing;
- a stage is shown to the display in force when it opens, advances and ends, also when its block raises;
- the CI display writes one line per stage that took a second or more, with the output capture suspended
  (a line written under capture would land in the test's captured output, not in the log).
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from fixtures.progress import StageLines
from harness.runtime import progress
class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int, int]] = []

    def started(self, stage: progress.Stage) -> None:
        self.events.append(("started", stage.name, stage.done, stage.total))

    def advanced(self, stage: progress.Stage) -> None:
        self.events.append(("advanced", stage.name, stage.done, stage.total))

    def finished(self, stage: progress.Stage) -> None:
        self.events.append(("finished", stage.name, stage.done, stage.total))


def test_track_counts_steps_toward_the_innermost_stage():
    recorder = Recorder()
    with progress.use_display(recorder), progress.stage("outer") as outer:
        assert list(progress.track([1, 2])) == [1, 2]
        with progress.stage("inner") as inner:
            assert list(progress.track(iter("abc"), total=3)) == ["a", "b", "c"]
        assert list(progress.track(range(4))) == [0, 1, 2, 3]
    assert (outer.done, outer.total) == (6, 6) and (inner.done, inner.total) == (3, 3)
    assert recorder.events[0] == ("started", "outer", 0, 0)
    assert ("finished", "inner", 3, 3) in recorder.events and recorder.events[-1] == ("finished", "outer", 6, 6)


def test_without_a_stage_track_is_a_plain_iteration():
    recorder = Recorder()
    with progress.use_display(recorder):
        assert list(progress.track(range(3))) == [0, 1, 2]
    assert recorder.events == []


def test_a_stage_that_raises_is_still_finished():
    recorder = Recorder()
    with pytest.raises(ValueError), progress.use_display(recorder), progress.stage("failing"):
        raise ValueError("boom")
    assert recorder.events[-1][:2] == ("finished", "failing")


class FakeTerminal:
    def __init__(self, capture: "FakeCapture") -> None:
        self.capture, self.lines = capture, []

    def write_line(self, line: str) -> None:
        self.lines.append((line, self.capture.suspended))


class FakeCapture:
    suspended = False

    @contextmanager
    def global_and_fixture_disabled(self):
        self.suspended = True
        try:
            yield
        finally:
            self.suspended = False


def test_ci_lines_are_written_with_the_capture_suspended_and_only_for_long_stages():
    capture = FakeCapture()
    terminal = FakeTerminal(capture)
    display = StageLines(terminal, capture)
    quick, slow = progress.Stage("quick"), progress.Stage("slow", total=4, done=4)
    slow.started_at -= 2.0
    for stage in (quick, slow):
        display.started(stage)
        display.advanced(stage)
        display.finished(stage)
    assert len(terminal.lines) == 1
    line, suspended = terminal.lines[0]
    assert line.startswith("[sentiment-claims] slow: 2.") and line.endswith("s, 4/4 steps") and suspended
