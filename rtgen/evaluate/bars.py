"""Repetition bar by bar: literal copies of an earlier bar, and bars that vary one.

A bar is the (onset in grid steps from its bar line, pitch) of every note
starting in it, in order, 4/4 (4 beats a bar, as everywhere in rtgen). A bar
is a **literal copy** when an earlier bar of the same piece is identical; a
**varied** bar is no literal copy but lies within a small edit distance of an
earlier bar: at most ``VARIED_EDITS`` of the longer bar's notes inserted,
deleted or changed (at least one edit), both bars holding at least
``MIN_VARIED_NOTES`` notes (two-note bars are too alike by chance). A
restatement note for note raises the first; a second ending or a re-sampled
bar the second. Empty bars count in neither, and not in the denominator.
"""

from __future__ import annotations

from collections.abc import Sequence

from rtgen.encoding import Note
from rtgen.engine.offline import BEATS_PER_BAR
from rtgen.evaluate.statistics import STEPS_PER_BEAT

VARIED_EDITS = 0.25  # share of the longer bar's notes that may differ in a varied bar
MIN_VARIED_NOTES = 3

Bar = tuple[tuple[int, int], ...]


def bars_of(notes: Sequence[Note], bars: int) -> list[Bar]:
    """The first ``bars`` bars of ``notes`` as (onset step in the bar, pitch) tuples, sorted."""
    out: list[list[tuple[int, int]]] = [[] for _ in range(bars)]
    for note in notes:
        index = int(note.start // BEATS_PER_BAR)
        if 0 <= index < bars:
            out[index].append((round((note.start - index * BEATS_PER_BAR) * STEPS_PER_BEAT), note.pitch))
    return [tuple(sorted(bar)) for bar in out]


def edit_distance(a: Sequence, b: Sequence, limit: int) -> int:
    """Levenshtein distance between ``a`` and ``b``, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def varies(bar: Bar, earlier: Bar) -> bool:
    """``bar`` is within the varied-bar edit distance of ``earlier`` (not identical: that is a copy)."""
    if min(len(bar), len(earlier)) < MIN_VARIED_NOTES or bar == earlier:
        return False
    limit = max(1, int(VARIED_EDITS * max(len(bar), len(earlier))))
    return edit_distance(bar, earlier, limit) <= limit


def bar_repetition(notes: Sequence[Note], bars: int) -> tuple[float, float, int]:
    """(share of non-empty bars that copy an earlier bar, share that vary one, non-empty bars) of a piece."""
    seen: list[Bar] = []
    copies = varied = filled = 0
    for bar in bars_of(notes, bars):
        if not bar:
            continue
        filled += 1
        if bar in seen:
            copies += 1
        elif any(varies(bar, earlier) for earlier in seen):
            varied += 1
        if bar not in seen:
            seen.append(bar)
    return (copies / filled, varied / filled, filled) if filled else (0.0, 0.0, 0)
