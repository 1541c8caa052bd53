"""The live piano roll: the performer's notes and rtgen's in two colours, scrolling right to left.

Time runs left to right, ``COLS_PER_BEAT`` cells a beat (a sixteenth per
cell), bar lines every 4 beats (4/4). "Now" is a playhead column
``AHEAD_BEATS`` before the right edge: right of it, rtgen's notes already
planned (the lookahead, and the rest of a committed answer) are drawn dimmed,
so a performer sees the answer before it sounds. Pitch runs up
the rows, compressed to the range of the notes in view: when the range is taller
than the widget, one row holds several semitones. Rendering is a pure function
of the notes and the current beat, so it is tested without a terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from rtgen.daemon.status import RollNote

COLS_PER_BEAT = 4
BEATS_PER_BAR = 4
GUTTER_CELLS = 4  # pitch labels on the left, e.g. "C4 "
AHEAD_BEATS = 2  # beats right of the playhead, where planned notes show
PERFORMER, RTGEN, PLANNED = 1, 2, 4  # bits per cell: who sounds there, or is planned to
STYLES = {PERFORMER: "bold cyan", RTGEN: "bold magenta", PERFORMER | RTGEN: "bold white", PLANNED: "magenta dim"}
BITS = {"performer": PERFORMER, "rtgen": RTGEN, "planned": PLANNED}
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_name(pitch: int) -> str:
    """MIDI 60 -> "C4"."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def window(current_beat: float, cols: int) -> tuple[float, float]:
    """The beats ``[start, end)`` shown in ``cols`` cells: ``current_beat`` snapped up to a cell, then
    ``AHEAD_BEATS`` more."""
    end = math.ceil(current_beat * COLS_PER_BEAT - 1e-9) / COLS_PER_BEAT + AHEAD_BEATS
    return end - cols / COLS_PER_BEAT, end


def playhead_column(current_beat: float, cols: int) -> int:
    """The cell "now" falls in."""
    start, _ = window(current_beat, cols)
    return min(cols - 1, max(0, math.floor((current_beat - start) * COLS_PER_BEAT)))


def pitch_rows(pitches: Sequence[int], rows: int) -> tuple[int, int]:
    """``(top_pitch, semitones_per_row)`` fitting ``pitches`` into ``rows`` rows, centred."""
    if not pitches:
        low, high = 60, 60
    else:
        low, high = min(pitches), max(pitches)
    per_row = max(1, math.ceil((high - low + 1) / rows))
    spare = rows * per_row - (high - low + 1)
    bottom = max(0, low - spare // 2)
    top = min(127, bottom + rows * per_row - 1)
    return top, per_row


def occupancy(notes: Sequence[RollNote], current_beat: float, cols: int, rows: int) -> tuple[list[list[int]], int, int]:
    """Per cell, the bits of the sources sounding there; plus the pitch layout (top, semitones a row)."""
    start, end = window(current_beat, cols)
    shown = [(note, *span) for note in notes if (span := _span(note, current_beat))[0] < end and span[1] > start]
    top, per_row = pitch_rows([note.pitch for note, _, _ in shown], rows)
    grid = [[0] * cols for _ in range(rows)]
    for note, begin, stop in shown:
        row = (top - note.pitch) // per_row
        if not 0 <= row < rows:
            continue
        first = max(0, math.floor((begin - start) * COLS_PER_BEAT))
        last = min(cols - 1, max(first, math.ceil((stop - start) * COLS_PER_BEAT) - 1))
        for col in range(first, last + 1):
            grid[row][col] |= BITS[note.source]
    return grid, top, per_row


def _span(note: RollNote, current_beat: float) -> tuple[float, float]:
    """Where ``note`` is drawn: a sounding note up to now; a planned one from now on (a cell if its end is unknown)."""
    if note.source == "planned":
        begin = max(note.start_beat, current_beat)
        return begin, max(begin + 1 / COLS_PER_BEAT, note.end_beat or 0.0)
    return note.start_beat, current_beat if note.end_beat is None else note.end_beat


def _in_view(note: RollNote, current_beat: float, start: float, end: float) -> bool:
    begin, finish = _span(note, current_beat)
    return finish > start and begin < end


Run = tuple[str, "str | None"]  # characters and their Rich style


def roll_runs(notes: Sequence[RollNote], current_beat: float, width: int, height: int) -> list[list[Run]]:
    """Each of ``height`` rows as runs of equal style, ``width`` cells in all (pitch labels first)."""
    cols = max(1, width - GUTTER_CELLS)
    rows = max(1, height)
    grid, top, per_row = occupancy(notes, current_beat, cols, rows)
    start, _ = window(current_beat, cols)
    first_step, playhead = round(start * COLS_PER_BEAT), playhead_column(current_beat, cols)
    return [
        [(_label(top - row * per_row, per_row, row, rows), "grey50"), *_cell_runs(cells, first_step, playhead)]
        for row, cells in enumerate(grid)
    ]


def render_roll(notes: Sequence[RollNote], current_beat: float, width: int, height: int) -> Text:
    """The roll as Rich ``Text``: ``height`` lines of ``width`` cells (for printing and tests)."""
    text = Text(no_wrap=True, overflow="crop")
    for index, runs in enumerate(roll_runs(notes, current_beat, width, height)):
        if index:
            text.append("\n")
        for chars, style in runs:
            text.append(chars, style=style)
    return text


def _label(row_top: int, per_row: int, row: int, rows: int) -> str:
    """A pitch name at the top and bottom rows and at rows holding a C; blank elsewhere."""
    row_bottom = row_top - per_row + 1
    c_pitch = next((p for p in range(row_bottom, row_top + 1) if p % 12 == 0), None)
    if row == 0:
        shown = row_top
    elif row == rows - 1:
        shown = row_bottom
    elif c_pitch is not None:
        shown = c_pitch
    else:
        return " " * GUTTER_CELLS
    return f"{pitch_name(shown):<{GUTTER_CELLS - 1}} "[:GUTTER_CELLS]


def _cell_runs(cells: list[int], first_step: int, playhead: int) -> list[Run]:
    """One row's cells, merged into runs of equal style so a line is a handful of segments."""
    runs: list[Run] = []
    chars: list[str] = []
    run_style: str | None = None
    for col, bits in enumerate(cells):
        step = first_step + col
        if bits:
            char, style = "█", STYLES[bits & (PERFORMER | RTGEN) or bits]
        elif col == playhead:
            char, style = "▏", "yellow"
        elif step % (COLS_PER_BEAT * BEATS_PER_BAR) == 0:
            char, style = "│", "grey42"
        elif step % COLS_PER_BEAT == 0:
            char, style = "┊", "grey23"
        else:
            char, style = " ", None
        if style != run_style and chars:
            runs.append(("".join(chars), run_style))
            chars = []
        chars.append(char)
        run_style = style
    if chars:
        runs.append(("".join(chars), run_style))
    return runs


class PianoRoll(Widget):
    """Shows the snapshot's recent notes through the line API: rows are rebuilt only when a cell can change.

    The picture depends on the notes, the window's end (``current_beat``
    snapped to a cell) and the size, so at 120 BPM it is rebuilt at most
    8 times a second however often snapshots arrive. An empty roll stands
    still: with no note in view there is nothing to scroll (the status bar
    counts the bars), and a roll waiting for a performer costs nothing. Each
    rebuild repaints the whole widget, which is most of what a browser tab's
    ``rtgen attach`` spends (docs/benchmarks.md).
    """

    DEFAULT_CSS = "PianoRoll { height: 1fr; width: 1fr; }"

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.notes: tuple[RollNote, ...] = ()
        self.current_beat = 0.0
        self._key: tuple | None = None
        self._strips: list[Strip] = []
        self._styles: dict[str | None, Style] = {}

    def show(self, notes: tuple[RollNote, ...], current_beat: float) -> None:
        self.notes, self.current_beat = notes, current_beat
        if self._picture_key() != self._key:
            self.refresh()

    def _picture_key(self) -> tuple:
        cols = max(1, self.size.width - GUTTER_CELLS)
        start, end = window(self.current_beat, cols)
        if not any(_in_view(note, self.current_beat, start, end) for note in self.notes):
            return (None, self.size.width, self.size.height)
        return (self.notes, end, self.size.width, self.size.height)

    def _style(self, name: str | None) -> Style:
        if name not in self._styles:
            self._styles[name] = Style.parse(name) if name else Style()
        return self._styles[name]

    def render_line(self, y: int) -> Strip:
        key = self._picture_key()
        if key != self._key:
            self._key = key
            rows = roll_runs(self.notes, self.current_beat, self.size.width, self.size.height)
            self._strips = [Strip([Segment(chars, self._style(style)) for chars, style in runs]) for runs in rows]
        if 0 <= y < len(self._strips):
            return self._strips[y].apply_style(self.rich_style)
        return Strip.blank(self.size.width, self.rich_style)
