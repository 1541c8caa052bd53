"""What a UI sees of the running daemon: an immutable snapshot, its JSON form, and the commands a UI may send.

UIs are other processes. The daemon's OSC server sends the snapshot as JSON
(``to_json``) to every subscriber at most 20 times a second; the client
(``rtgen.daemon.client``) turns it back into a ``Snapshot`` (``from_json``)
and implements ``DaemonControl`` by sending OSC. Nothing in a UI touches
models, clocks or ports.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rtgen.engine.controls import Controls
from rtgen.live.roll import RollNote  # a UI reads the roll notes from here, with the rest of the snapshot
from rtgen.modes import Mode


@dataclass(frozen=True)
class Snapshot:
    """The daemon's state at one instant; cheap to build, safe to hand to another thread."""

    genres: tuple[str, ...]  # loaded genre models, in slider order
    controls: Controls
    mode: Mode
    playing: bool
    tempo_bpm: float
    clock_source: Literal["internal", "external", "link"]
    current_beat: float
    clock_s: float = 0.0  # the daemon clock's time (perf_counter s, shared by processes on one machine) at current_beat
    backend: str = ""  # e.g. "UNIX_JACK"
    in_port: str = ""
    out_port: str = ""
    device: str = "cpu"  # where the models run: "cpu" or "cuda"
    step_p99_ms: float = 0.0  # engine step latency, p99 over the recent window
    send_error_p90_ms: float = 0.0  # |actual - planned| send time (ms) over the recent window: nine sends in ten
    send_error_p99_ms: float = 0.0
    send_error_max_ms: float = 0.0
    late_events: int = 0
    notes_in: int = 0
    notes_out: int = 0
    recording: str | None = None  # path of the take being written
    preset: str | None = None  # name of the last loaded preset
    learning: str | None = None  # control waiting for a CC in MIDI learn
    roll: tuple[RollNote, ...] = ()  # recent notes, oldest first
    heard: dict[str, float] = field(default_factory=dict)  # genre -> share: the classifier's reading of the performer
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

    def save_preset(self, name: str) -> None: ...  # the path written arrives as a log line

    def load_seed(self, path: str) -> None: ...  # a .mid (a take, say): its last bars are the next seed phrase

    def presets(self) -> list[tuple[str, str]]: ...  # (name, one-line description), in program-change order

    def learn(self, control: str | None) -> None: ...  # next CC received maps to `control`; None cancels

    def take_errors(self) -> list[str]: ...  # errors reported since the last call, oldest first

    @property
    def gone(self) -> str | None: ...  # the daemon's goodbye ("stopped", an error) once it said one; None before

    @property
    def answering(self) -> bool: ...  # its status arrives (the client: within the last 2 s)


SOURCE_LETTERS = {"performer": "p", "rtgen": "r", "planned": "a"}  # a: ahead of the playhead
ROLL_LIMIT = 400  # notes sent in one status message (the newest): keeps a datagram well under 64 KB


def to_json(snap: Snapshot) -> dict[str, Any]:
    """``snap`` as JSON-ready data; the roll as ``[start, end or null, pitch, source letter]`` rows, beats to 1/1000.

    The letter is "p" (performer), "r" (rtgen) or "a" (rtgen's, planned ahead of the playhead).
    """
    data = {f.name: getattr(snap, f.name) for f in dataclasses.fields(snap) if f.name not in ("controls", "roll")}
    data["controls"] = dataclasses.asdict(snap.controls)
    data["roll"] = [
        [
            round(n.start_beat, 3),
            None if n.end_beat is None else round(n.end_beat, 3),
            n.pitch,
            SOURCE_LETTERS[n.source],
        ]
        for n in snap.roll[-ROLL_LIMIT:]
    ]
    return data


def from_json(data: dict[str, Any]) -> Snapshot:
    """The ``Snapshot`` that ``to_json`` wrote (tuples restored)."""
    sources = {letter: source for source, letter in SOURCE_LETTERS.items()}
    roll = tuple(RollNote(start, end, pitch, sources[source]) for start, end, pitch, source in data["roll"])
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k not in ("controls", "roll")}
    return Snapshot(**fields, controls=Controls(**data["controls"]), roll=roll)
