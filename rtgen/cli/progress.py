"""Progress on stderr, one flushed line a step, so a piped or logged long command shows where it is.

stdout stays the command's result (a table, one JSON document); progress goes
to stderr whether or not it is a terminal, because a run piped into a file or
``tee`` is exactly the one whose user cannot see it working otherwise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def note(line: str) -> None:
    """Print one progress line to stderr now."""
    print(line, file=sys.stderr, flush=True)


@dataclass
class Counter:
    """``label: done/total unit (seconds)`` lines for a count, at most one per ``interval_s`` and always the last.

    Short runs finish before the first interval and print only the final line
    when ``quiet_below_s`` allows it: a run shorter than that prints nothing.
    """

    label: str
    total: int
    unit: str
    interval_s: float = 2.0
    quiet_below_s: float = 2.0  # a run that finishes sooner prints no line at all
    say: Callable[[str], None] = note
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0, init=False)
    last: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.started = self.last = self.clock()

    def __call__(self, done: int) -> None:
        now = self.clock()
        finished = done >= self.total
        if finished and now - self.started < self.quiet_below_s:
            return
        if finished or now - self.last >= self.interval_s:
            self.last = now
            self.say(f"{self.label}: {done:,}/{self.total:,} {self.unit} ({now - self.started:.1f} s)")
