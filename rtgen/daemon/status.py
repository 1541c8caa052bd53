"""What the UI sees of the running daemon: an immutable snapshot, and the commands it may send.

The TUI (and anything else outside the music threads) never touches models or
ports. It polls ``DaemonControl.snapshot()`` at a capped rate and calls the
command methods, which only enqueue work for the music threads and return at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from rtgen.engine.controls import Controls
from rtgen.live.player import Mode
from rtgen.live.roll import RollNote


@dataclass(frozen=True)
class Snapshot:
    """The daemon's state at one instant; cheap to build, safe to hand to another thread."""

    genres: tuple[str, ...]  # loaded genre models, in slider order
    controls: Controls
    mode: Mode
    playing: bool
    tempo_bpm: float
    clock_source: Literal["internal", "external"]
    current_beat: float
    backend: str = ""  # e.g. "UNIX_JACK"
    in_port: str = ""
    out_port: str = ""
    device: str = "cpu"  # where the models run: "cpu" or "cuda"
    step_p99_ms: float = 0.0  # engine step latency, p99 over the recent window
    send_error_p99_ms: float = 0.0  # |actual - planned| send time, p99 over the recent window
    late_events: int = 0
    notes_in: int = 0
    notes_out: int = 0
    recording: str | None = None  # path of the take being written
    preset: str | None = None  # name of the last loaded preset
    learning: str | None = None  # control waiting for a CC in MIDI learn
    roll: tuple[RollNote, ...] = ()  # recent notes, oldest first
    log: tuple[str, ...] = field(default_factory=tuple)  # recent log lines, oldest first


class DaemonControl(Protocol):
    """The daemon as the UI drives it. Every method returns at once; effects follow within a beat."""

    def snapshot(self) -> Snapshot: ...

    def set_controls(self, **changes: object) -> None: ...

    def set_tempo(self, tempo_bpm: float) -> None: ...

    def set_mode(self, mode: Mode) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def panic(self) -> None: ...

    def load_preset(self, name_or_path: str) -> None: ...

    def save_preset(self, name: str) -> str: ...  # returns the path written

    def presets(self) -> list[str]: ...

    def learn(self, control: str | None) -> None: ...  # next CC received maps to `control`; None cancels
