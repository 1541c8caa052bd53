"""The status bar and the log panel, as pure functions of a ``Snapshot`` and a size (tested without a terminal).

Each status line is fitted to the width it is given: its parts are ranked,
and the least important shortens (a long form, then a short one) or goes
first, so a line never wraps and what a performer needs most stays. Log
lines wrap instead of being cut, the newest at the bottom.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from rtgen.daemon.status import Snapshot
from rtgen.tui.roll import BEATS_PER_BAR

SEPARATOR = (" │ ", "grey42")
LOG_INDENT = "  "  # the continuation rows of a wrapped log line


@dataclass(frozen=True)
class Part:
    """One piece of a status line: its forms from longest to shortest; ``rank`` 0 is never dropped."""

    forms: tuple[Text, ...]
    rank: int


def part(rank: int, *forms: str | tuple[str, str] | Text) -> Part:
    """A ``Part`` from plain strings, ``(text, style)`` pairs or ``Text``."""
    return Part(tuple(f if isinstance(f, Text) else Text.assemble(f) for f in forms), rank)


def fit(parts: Sequence[Part], width: int) -> Text:
    """The parts joined by separators in at most ``width`` cells.

    First the parts take shorter forms, the least important first; then, if
    the line is still too long, the least important go (rank 0 never does).
    """
    chosen = [0] * len(parts)  # index into each part's forms; len(forms) means dropped

    def joined() -> Text:
        shown = [p.forms[c] for p, c in zip(parts, chosen, strict=True) if c < len(p.forms)]
        return Text.assemble(SEPARATOR).join(shown)

    least_first = sorted(range(len(parts)), key=lambda i: -parts[i].rank)
    for dropping in (False, True):
        for index in least_first:
            forms, rank = parts[index].forms, parts[index].rank
            last = len(forms) if dropping and rank > 0 else len(forms) - 1
            while joined().cell_len > width and chosen[index] < last:
                chosen[index] += 1
    text = joined()
    text.truncate(max(1, width), overflow="ellipsis")
    return text


def position(current_beat: float) -> str:
    """``bar 5 beat 1.2``: bars and beats from 1, the beat cut (never rounded up) to a tenth."""
    bar, in_bar = divmod(current_beat, BEATS_PER_BAR)
    tenths = min(BEATS_PER_BAR * 10 - 1, math.floor(in_bar * 10 + 1e-6))  # 3.97 is beat 4.9, never 5.0
    return f"bar {int(bar) + 1} beat {tenths / 10 + 1:.1f}"


def transport_line(snap: Snapshot, width: int) -> Text:
    """Playing or stopped, position, tempo and its source, mode, preset, MIDI learn state."""
    state = ("▶ playing", "bold green") if snap.playing else ("■ stopped", "bold red")
    tempo = (f"{snap.tempo_bpm:.1f} bpm", "bold")
    parts = [
        part(0, state, (state[0][0], state[1])),
        part(0, position(snap.current_beat)),
        part(1, Text.assemble(tempo, f" {snap.clock_source}"), tempo),
        part(2, snap.mode),
        part(3, f"preset {snap.preset or '-'}", snap.preset or "-"),
    ]
    if snap.learning:
        learn = f"LEARN {snap.learning}"
        parts.append(part(0, (f"{learn}: move a knob (l cancels)", "black on yellow"), (learn, "black on yellow")))
    return fit(parts, width)


def metrics_line(snap: Snapshot, width: int) -> Text:
    """Backend and ports, device, latency figures (ms), late events, note counts, recording file."""
    backend = (snap.backend or "no backend", "bold")
    parts = [
        part(3, Text.assemble(backend, f" {snap.in_port or '-'}→{snap.out_port or '-'}"), backend),
        part(5, (snap.device, "bold")),
        part(4, f"step p99 {snap.step_p99_ms:.2f}ms"),
        part(1, f"send p99 {snap.send_error_p99_ms:.2f}ms"),
        part(0, (f"late {snap.late_events}", "bold red" if snap.late_events else "green")),
        part(2, f"notes {snap.notes_in} in {snap.notes_out} out", f"in {snap.notes_in} out {snap.notes_out}"),
    ]
    if snap.recording:
        parts.append(part(1, Text.assemble(("● ", "bold red"), Path(snap.recording).name), ("● rec", "bold red")))
    return fit(parts, width)


def status_text(snap: Snapshot, width: int) -> Text:
    """Two lines, each at most ``width`` cells."""
    return Text("\n").join([transport_line(snap, width), metrics_line(snap, width)])


def log_text(lines: Sequence[str], width: int, height: int) -> Text:
    """The newest log lines that fit ``height`` rows of ``width`` cells, wrapped, oldest first; errors in red.

    A line taller than the panel on its own shows its first rows, the last
    ending in an ellipsis.
    """
    width, height = max(4, width), max(1, height)
    rows: list[tuple[str, str]] = []
    for line in reversed(lines):
        wrapped = textwrap.wrap(line, width, subsequent_indent=LOG_INDENT, break_on_hyphens=False) or [""]
        style = "red" if "error" in line.lower() else ""
        if rows and len(rows) + len(wrapped) > height:
            break
        if len(wrapped) > height:
            wrapped = [*wrapped[: height - 1], wrapped[height - 1][: width - 1] + "…"]
        rows[:0] = [(row, style) for row in wrapped]
    text = Text(no_wrap=True, overflow="ellipsis")
    for index, (row, style) in enumerate(rows):
        if index:
            text.append("\n")
        text.append(row, style=style)
    return text
