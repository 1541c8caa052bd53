"""Every run's take: the performer's input and rtgen's output as one type-1 .mid file.

Track 0 holds the tempo map, track 1 ("performer") what came in, track 2
("rtgen") what went out. Messages are stamped in seconds when they happen and
placed on beats through the daemon's clock, so the file lines up with the bars
the performer heard. A background thread writes the file every
``flush_interval_s`` seconds (to a temporary file, then ``os.replace``), so a
run killed even by SIGKILL keeps its take up to the last flush; every write
closes the notes still sounding, so each version of the file is valid MIDI.

Each track's events are encoded to MIDI bytes once, when first flushed, and
then forgotten: a flush costs what arrived since the last one plus copying
bytes, never a rebuild of the whole take (rebuilding with mido took seconds
of interpreter time once a take held 75,000 events, and the output thread
sent 122 ms late). Events of one track come from one thread in time order;
one that arrives stamped before the last flushed event is placed at it.
"""

from __future__ import annotations

import datetime
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import mido

from rtgen.errors import RtgenError
from rtgen.midi.messages import panic_messages

TICKS_PER_BEAT = 480
RECORDED_TYPES = frozenset({"note_on", "note_off", "control_change", "program_change", "pitchwheel"})
TRACKS = ("performer", "rtgen")


def take_path(folder: str | Path, now: datetime.datetime | None = None) -> Path:
    """``folder/rtgen-YYYYmmdd-HHMMSS.mid``, made unique with a counter if that name is taken."""
    folder = Path(folder)
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = folder / f"rtgen-{stamp}.mid"
    counter = 1
    while path.exists():
        path = folder / f"rtgen-{stamp}-{counter}.mid"
        counter += 1
    return path


class TrackBytes:
    """One track's events as MIDI bytes: encoded once, orphan note-offs dropped, sounding notes known."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: deque[tuple[float, mido.Message]] = deque()  # (beat, message), appended by one thread
        self.body = bytearray(b"\x00" + bytes(mido.MetaMessage("track_name", name=name).bytes()))
        self.tick = 0  # tick of the last encoded event
        self.sounding: dict[tuple[int, int], int] = {}  # (channel, note) -> note-ons not yet ended

    def encode_pending(self) -> None:
        """Move what arrived since the last call into ``body`` (called by the writer only)."""
        while self.pending:
            beat, message = self.pending.popleft()
            if message.type in ("note_on", "note_off") and not self._pairs(message):
                continue
            tick = max(self.tick, _ticks(beat))
            self.body += _varint(tick - self.tick) + bytes(message.bytes())
            self.tick = tick

    def _pairs(self, message: mido.Message) -> bool:
        key = (message.channel, message.note)
        if _is_on(message):
            self.sounding[key] = self.sounding.get(key, 0) + 1
            return True
        if self.sounding.get(key, 0) > 0:
            self.sounding[key] -= 1
            return True
        return False

    def chunk(self) -> bytes:
        """The MTrk chunk as of now: the body, then a note-off for every note still sounding."""
        closing = bytearray()
        for (channel, note), count in sorted(self.sounding.items()):
            off = bytes(mido.Message("note_off", channel=channel, note=note).bytes())
            closing += (b"\x00" + off) * count
        data = bytes(self.body) + bytes(closing) + END_OF_TRACK
        return b"MTrk" + struct.pack(">I", len(data)) + data


class Recorder:
    """Collects stamped messages from any thread and keeps ``path`` up to date.

    ``add`` only appends to a deque (atomic under the GIL), so the engine and
    output threads never wait on the writer.
    """

    def __init__(
        self,
        path: str | Path,
        beat_at: Callable[[float], float],
        tempo_bpm: float,
        flush_interval_s: float = 3.0,
    ) -> None:
        self.path = Path(path)
        self.beat_at = beat_at
        self.flush_interval_s = flush_interval_s
        self._tracks = {name: TrackBytes(name) for name in TRACKS}
        self._tempi: list[tuple[float, float]] = [(0.0, tempo_bpm)]  # (beat, bpm)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write_lock = threading.Lock()  # only the writer thread and close() take it
        self.flushes = 0
        self.error: OSError | None = None  # a failed background write; the daemon stops and reports it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RtgenError(f"cannot create the recordings folder {self.path.parent}: {error.strerror}") from None

    def add(self, track: str, t: float, message: mido.Message) -> None:
        """Record ``message`` stamped ``t`` seconds on ``track`` ("performer" or "rtgen")."""
        if message.type in RECORDED_TYPES:
            self._tracks[track].pending.append((self.beat_at(t), message))

    def tempo(self, beat: float, tempo_bpm: float) -> None:
        """A tempo change at ``beat``; changes under 0.05 BPM are not worth an event."""
        if abs(self._tempi[-1][1] - tempo_bpm) >= 0.05:
            self._tempi.append((max(beat, self._tempi[-1][0]), tempo_bpm))

    def start(self) -> None:
        self.flush()
        self._thread = threading.Thread(target=self._run, name="rtgen-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except OSError as error:
                self.error = error
                return

    def flush(self) -> Path:
        """Write the file atomically from everything recorded so far."""
        with self._write_lock:
            for track in self._tracks.values():
                track.encode_pending()
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(self.to_bytes())
            os.replace(tmp, self.path)
            self.flushes += 1
        return self.path

    def close(self) -> Path:
        """Stop the writer thread and write the final file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.flush()

    def to_bytes(self) -> bytes:
        """The take as a type-1 .mid: tempo map, then the performer and rtgen tracks."""
        meta = mido.MidiTrack()
        meta.append(mido.MetaMessage("track_name", name="rtgen take"))
        meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4))
        previous = 0
        for beat, bpm in self._tempi:
            meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=_ticks(beat) - previous))
            previous = _ticks(beat)
        body = b"".join(_varint(m.time) + bytes(m.bytes()) for m in meta) + END_OF_TRACK
        header = b"MThd" + struct.pack(">IHHH", 6, 1, 1 + len(self._tracks), TICKS_PER_BEAT)
        tempo_chunk = b"MTrk" + struct.pack(">I", len(body)) + body
        return header + tempo_chunk + b"".join(track.chunk() for track in self._tracks.values())


END_OF_TRACK = b"\x00\xff\x2f\x00"  # delta 0, meta end-of-track


def _ticks(beat: float) -> int:
    return max(0, round(beat * TICKS_PER_BEAT))


def _varint(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _is_on(message: mido.Message) -> bool:
    return message.type == "note_on" and message.velocity > 0


class MidiFilePort:
    """An output port that writes what it is sent to a .mid file: `--out take.mid` where no MIDI system exists."""

    backend = api_name = "file"
    virtual = False
    failed = 0  # a file takes every message

    def __init__(
        self, path: str | Path, beat_at: Callable[[float], float], tempo_bpm: float, flush_interval_s: float = 3.0
    ):
        self.recorder = Recorder(path, beat_at, tempo_bpm, flush_interval_s)
        self.recorder.start()
        self.name = str(path)
        self.connected = True

    def send(self, message: mido.Message) -> None:
        self.recorder.add("rtgen", time.perf_counter(), message)

    def panic(self) -> None:
        for message in panic_messages():
            self.send(message)

    def check(self) -> str | None:
        return None  # a file does not come and go

    def close(self) -> None:
        self.recorder.close()


def read_take(path: str | Path) -> dict[str, list[tuple[float, mido.Message]]]:
    """A take's tracks by name as (beat, message) lists; used by tests and `rtgen demo`."""
    midi = mido.MidiFile(path)
    tracks: dict[str, list[tuple[float, mido.Message]]] = {}
    for track in midi.tracks:
        name, tick, events = "", 0, []
        for message in track:
            tick += message.time
            if message.is_meta and message.type == "track_name":
                name = message.name
            elif not message.is_meta:
                events.append((tick / midi.ticks_per_beat, message))
        tracks[name] = events
    return tracks
