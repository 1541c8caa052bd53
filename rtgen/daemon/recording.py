"""Every run's take: the performer's input and rtgen's output as one type-1 .mid file.

Track 0 holds the tempo map, track 1 ("performer") what came in, track 2
("rtgen") what went out. Messages are stamped in seconds when they happen and
placed on beats through the daemon's clock, so the file lines up with the bars
the performer heard. A background thread rewrites the whole file every
``flush_interval_s`` seconds (to a temporary file, then ``os.replace``), so a
run killed even by SIGKILL keeps its take up to the last flush; every write
closes the notes still sounding, so each version of the file is valid MIDI.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
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


class Recorder:
    """Collects stamped messages from any thread and keeps ``path`` up to date.

    ``add`` only appends to a list (atomic under the GIL), so the engine and
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
        self._events: dict[str, list[tuple[float, mido.Message]]] = {name: [] for name in TRACKS}
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
            self._events[track].append((self.beat_at(t), message))

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
        """Rewrite the file atomically from everything recorded so far."""
        with self._write_lock:
            midi = self.to_midi()
            tmp = self.path.with_name(self.path.name + ".tmp")
            midi.save(tmp)
            os.replace(tmp, self.path)
            self.flushes += 1
        return self.path

    def close(self) -> Path:
        """Stop the writer thread and write the final file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.flush()

    def to_midi(self) -> mido.MidiFile:
        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        meta = [(0, mido.MetaMessage("track_name", name="rtgen take"))]
        meta.append((0, mido.MetaMessage("time_signature", numerator=4, denominator=4)))
        meta.extend((_ticks(b), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for b, bpm in self._tempi)
        midi.tracks.append(_track(meta))
        for name in TRACKS:
            events = list(self._events[name])  # a copy: other threads keep appending
            midi.tracks.append(_track([(0, mido.MetaMessage("track_name", name=name))] + _closed(events)))
        return midi


def _ticks(beat: float) -> int:
    return max(0, round(beat * TICKS_PER_BEAT))


def _closed(events: list[tuple[float, mido.Message]]) -> list[tuple[int, mido.Message]]:
    """Events in ticks with orphan note-offs dropped and every open note closed at the end."""
    # A stable sort by tick: at one tick, messages keep the order they happened in (a re-strike is off, then on).
    timed = sorted(((_ticks(beat), message) for beat, message in events), key=lambda item: item[0])
    sounding: dict[tuple[int, int], int] = {}
    result: list[tuple[int, mido.Message]] = []
    for tick, message in timed:
        if message.type in ("note_on", "note_off"):
            key = (message.channel, message.note)
            if _is_on(message):
                sounding[key] = sounding.get(key, 0) + 1
            elif sounding.get(key, 0) > 0:
                sounding[key] -= 1
            else:
                continue
        result.append((tick, message))
    end = result[-1][0] if result else 0
    for (channel, note), count in sorted(sounding.items()):
        result.extend((end, mido.Message("note_off", channel=channel, note=note)) for _ in range(count))
    return result


def _is_on(message: mido.Message) -> bool:
    return message.type == "note_on" and message.velocity > 0


def _track(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    track = mido.MidiTrack()
    previous = 0
    for tick, message in sorted(events, key=lambda item: item[0]):
        track.append(message.copy(time=tick - previous))
        previous = tick
    return track


class MidiFilePort:
    """An output port that writes what it is sent to a .mid file: `--out take.mid` where no MIDI system exists."""

    api_name = "file"

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
