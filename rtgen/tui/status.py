"""The status bar and the log panel, as pure functions of a ``Snapshot`` (tested without a terminal)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from rtgen.daemon.status import Snapshot
from rtgen.tui.roll import BEATS_PER_BAR

SEPARATOR = (" │ ", "grey42")


def transport_line(snap: Snapshot) -> Text:
    """Playing or stopped, position, tempo and its source, mode, preset, MIDI learn state."""
    bar = int(snap.current_beat // BEATS_PER_BAR) + 1
    beat = snap.current_beat % BEATS_PER_BAR + 1
    state = ("▶ playing", "bold green") if snap.playing else ("■ stopped", "bold red")
    parts: list[tuple[str, str] | str] = [
        state,
        SEPARATOR,
        f"bar {bar} beat {beat:.1f}",
        SEPARATOR,
        (f"{snap.tempo_bpm:.1f} bpm", "bold"),
        f" {snap.clock_source}",
        SEPARATOR,
        snap.mode,
        SEPARATOR,
        f"preset {snap.preset or '-'}",
    ]
    if snap.learning:
        parts += [SEPARATOR, (f"LEARN {snap.learning}: move a knob (l cancels)", "black on yellow")]
    return Text.assemble(*parts)


def metrics_line(snap: Snapshot) -> Text:
    """Backend and ports, device, latency figures (ms), late events, note counts, recording file."""
    late_style = "bold red" if snap.late_events else "green"
    parts: list[tuple[str, str] | str] = [
        (snap.backend or "no backend", "bold"),
        f" {snap.in_port or '-'}→{snap.out_port or '-'}",
        SEPARATOR,
        (snap.device, "bold"),
        SEPARATOR,
        f"step p99 {snap.step_p99_ms:.2f}ms",
        SEPARATOR,
        f"send p99 {snap.send_error_p99_ms:.2f}ms",
        SEPARATOR,
        (f"late {snap.late_events}", late_style),
        SEPARATOR,
        f"notes {snap.notes_in} in {snap.notes_out} out",
    ]
    if snap.recording:
        parts += [SEPARATOR, ("● ", "bold red"), Path(snap.recording).name]
    return Text.assemble(*parts)


def status_text(snap: Snapshot) -> Text:
    return Text("\n").join([transport_line(snap), metrics_line(snap)])


def log_text(lines: tuple[str, ...], height: int) -> Text:
    """The last ``height`` log lines, oldest first; lines mentioning an error in red."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for index, line in enumerate(lines[-max(1, height) :]):
        if index:
            text.append("\n")
        style = "red" if "error" in line.lower() else ""
        text.append(line, style=style)
    return text
