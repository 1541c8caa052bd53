"""``rtgen demo``'s piano roll as plain text, fitted to a terminal width.

Pitch rows run high to low, time left to right in bars counted from 1 (the
call's first bar). A roll that fits the width is drawn a sixteenth a column;
one that does not is drawn an eighth a column, and when even that is too wide
it is cut into systems of whole bars stacked one under another, as a score
is. No line is longer than the width, legend included.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from itertools import pairwise

GUTTER_CELLS = 5  # a pitch name right-aligned in 4 cells, then a space
MIN_WIDTH = 40  # narrower terminals get this width: a bar of eighths and the legend still fit
STEPS_PER_BEAT = 4  # onsets are placed on the sixteenth grid before they are put in a column
RESOLUTIONS = ((4, "sixteenths"), (2, "eighths"))  # columns a beat, finest first
Span = tuple[float, float, int, str]  # (start beat, end beat, pitch, marks: onset then held)


def render_roll(call: Sequence, answer: Sequence, beats_per_bar: int = 4, width: int = 80) -> str:
    """The call as '#' then '=', the answer as 'O' then '-', in lines of at most ``width`` cells.

    ``call`` and ``answer`` are ``(beat, message)`` pairs with beat 0 the start
    of bar 1 (a note played a hair early sits on the grid line it was meant for).
    """
    width = max(MIN_WIDTH, width)
    spans = _spans(call, "#=") + _spans(answer, "O-")
    if not spans:
        return "(no notes)"
    first_bar = math.floor(_grid(min(s for s, _, _, _ in spans)) / beats_per_bar) * beats_per_bar
    last_beat = _grid(max(e for _, e, _, _ in spans))
    bars = max(1, math.ceil((last_beat - first_bar) / beats_per_bar))
    columns, unit = _resolution(bars, beats_per_bar, width)
    bar_cells = beats_per_bar * columns
    per_system = max(1, (width - GUTTER_CELLS) // (bar_cells + 1))
    pitches = _rows({p for _, _, p, _ in spans})
    grid = _grid_cells(spans, pitches, first_bar, bars * bar_cells, columns)
    lines: list[str] = []
    for first in range(0, bars, per_system):
        shown = range(first, min(bars, first + per_system))
        if lines:
            lines.append("")
        ruler = "".join(f"|{f'bar {first_bar // beats_per_bar + 1 + b}':<{bar_cells}}" for b in shown)
        lines.append(f"{'':>4} {ruler}")
        for pitch in pitches:
            if pitch is None:
                lines.append(f"{'~':>4}")
                continue
            cells = "".join("|" + "".join(grid[pitch][b * bar_cells : (b + 1) * bar_cells]) for b in shown)
            lines.append(f"{_name(pitch):>4} {cells}")
    legend = f"call: # onset = held    answer: O onset - held    (columns are {unit})"
    return "\n".join([*lines, *textwrap.wrap(legend, width)])


def _resolution(bars: int, beats_per_bar: int, width: int) -> tuple[int, str]:
    """The finest columns-a-beat at which every bar fits on one line; else the coarsest (then systems)."""
    for columns, unit in RESOLUTIONS:
        if GUTTER_CELLS + bars * (beats_per_bar * columns + 1) <= width:
            return columns, unit
    return RESOLUTIONS[-1]


def _grid(beat: float) -> float:
    """``beat`` snapped to the nearest sixteenth (a call played up to 15 ms early or late lands on its note)."""
    return round(beat * STEPS_PER_BEAT) / STEPS_PER_BEAT


def _grid_cells(
    spans: list[Span], pitches: list[int | None], first_bar: float, cells: int, columns: int
) -> dict[int, list[str]]:
    """Per pitch row, ``cells`` characters: '.' on each beat, the notes' marks over them."""
    grid = {p: ["." if c % columns == 0 else " " for c in range(cells)] for p in pitches if p is not None}
    for start, end, pitch, marks in spans:
        c0 = math.floor((_grid(start) - first_bar) * columns)
        c1 = max(c0 + 1, math.floor((_grid(end) - first_bar) * columns))
        for c in range(max(0, c0), min(c1, cells)):
            grid[pitch][c] = marks[0] if c == c0 else marks[1]
    return grid


def _rows(used: set[int], max_gap: int = 3) -> list[int | None]:
    """Pitch rows from high to low: every used pitch, the ones between close neighbours, None for a gap."""
    ordered = sorted(used, reverse=True)
    rows: list[int | None] = [ordered[0]]
    for higher, lower in pairwise(ordered):
        if higher - lower <= max_gap:
            rows.extend(range(higher - 1, lower - 1, -1))
        else:
            rows.extend([None, lower])
    return rows


def _spans(events, marks: str) -> list[Span]:
    """(start beat, end beat, pitch, marks) for each note in (beat, message) events."""
    open_notes: dict[int, float] = {}
    spans = []
    for beat, message in sorted(events, key=lambda e: e[0]):
        if message.type == "note_on" and message.velocity > 0:
            open_notes[message.note] = beat
        elif message.note in open_notes:
            spans.append((open_notes.pop(message.note), beat, message.note, marks))
    return spans


def _name(pitch: int) -> str:
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[pitch % 12]}{pitch // 12 - 1}"
