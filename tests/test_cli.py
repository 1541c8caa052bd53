"""The command line's manners: progress on stderr, one-line errors, output folders, installed models."""

from __future__ import annotations

from rtgen.cli.progress import Counter


class Ticks:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_progress_counts_at_most_once_an_interval_and_always_the_end():
    clock, lines = Ticks(), []
    counter = Counter("generate", 10, "bars", interval_s=2.0, quiet_below_s=2.0, say=lines.append, clock=clock)
    for done in range(1, 11):
        clock.t += 0.5
        counter(done)
    assert lines == ["generate: 4/10 bars (2.0 s)", "generate: 8/10 bars (4.0 s)", "generate: 10/10 bars (5.0 s)"]


def test_progress_stays_quiet_for_a_short_run():
    clock, lines = Ticks(), []
    counter = Counter("generate", 3, "bars", say=lines.append, clock=clock)
    for done in (1, 2, 3):
        clock.t += 0.1
        counter(done)
    assert lines == []
