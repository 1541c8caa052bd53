"""The recent notes the UI draws: performer and rtgen, and rtgen's notes planned ahead, in beats.

Only the engine thread writes; the UI thread copies. A copy of a deque or of a
dict's values is a single C call under the GIL, so a reader never sees a
half-made note and no lock is shared.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import mido

from rtgen.live.listener import Heard

SENT_EARLY = 0.125  # beats: a note-on sent this much before its planned beat is still that planned note
STALE = 4.0  # beats: a planned note this far behind the last note sent never sounded (a skipped late note)
PLANNED_LIMIT = 64  # planned notes kept before the stale ones are looked for


@dataclass(frozen=True)
class RollNote:
    """One note for the piano roll, in beats on the daemon's clock."""

    start_beat: float
    end_beat: float | None  # None while still sounding
    pitch: int
    source: Literal["performer", "rtgen", "planned"]  # planned: scheduled ahead of the playhead, not yet sent


class Roll:
    """The last ``keep`` finished notes, those still sounding, and those planned but not yet sent.

    A planned note is one the engine has generated and handed to the output
    thread (the lookahead, and the rest of a committed answer); it leaves the
    plan when its note-on is sent or when the music is silenced.
    """

    def __init__(self, keep: int = 256) -> None:
        self._closed: deque[RollNote] = deque(maxlen=keep)
        self._open: dict[tuple[str, int], RollNote] = {}
        self._planned: dict[tuple[int, float], RollNote] = {}  # (pitch, start beat) -> note
        self._planning: dict[int, float] = {}  # pitch -> start beat of its planned note still without an end

    def performer(self, heard: Heard) -> None:
        self._note("performer", heard.beat, heard.pitch, heard.on)

    def rtgen(self, beat: float, message: mido.Message) -> None:
        on = message.type == "note_on" and message.velocity > 0
        self._note("rtgen", beat, message.note, on)
        if on:  # it sounds now (sent up to a JACK period early): that planned note is no longer ahead
            starts = [start for pitch, start in self._planned if pitch == message.note and start <= beat + SENT_EARLY]
            if starts:
                del self._planned[(message.note, min(starts))]
            if len(self._planned) > PLANNED_LIMIT:  # a skipped late note never sounds: forget what is far behind
                self._planned = {key: note for key, note in self._planned.items() if note.start_beat > beat - STALE}

    def plan(self, beat: float, message: mido.Message) -> None:
        """A note-on or note-off handed to the output thread for ``beat``."""
        pitch = message.note
        if message.type == "note_on" and message.velocity > 0:
            self._planned[(pitch, beat)] = RollNote(beat, None, pitch, "planned")
            self._planning[pitch] = beat
        elif (start := self._planning.pop(pitch, None)) is not None and (pitch, start) in self._planned:
            self._planned[(pitch, start)] = RollNote(start, max(beat, start), pitch, "planned")

    def unplan_after(self, beat: float) -> None:
        """The music was silenced at ``beat``: what was planned from then on will not sound."""
        self._planned = {key: note for key, note in self._planned.items() if note.start_beat <= beat}
        self._planning.clear()

    def _note(self, source: str, beat: float, pitch: int, on: bool) -> None:
        key = (source, pitch)
        previous = self._open.pop(key, None)
        if previous is not None:
            self._closed.append(RollNote(previous.start_beat, max(beat, previous.start_beat), pitch, previous.source))
        if on:
            self._open[key] = RollNote(beat, None, pitch, source)

    def notes(self) -> tuple[RollNote, ...]:
        """Finished notes, sounding ones, then planned ones, each group oldest first."""
        closed = tuple(self._closed)
        sounding = tuple(self._open.values())
        planned = tuple(self._planned.values())
        by_start = sorted(sounding, key=lambda n: n.start_beat), sorted(planned, key=lambda n: n.start_beat)
        return closed + tuple(by_start[0]) + tuple(by_start[1])
