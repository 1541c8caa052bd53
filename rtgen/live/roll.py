"""The recent notes the UI draws: performer and rtgen, in beats on the daemon's clock.

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


@dataclass(frozen=True)
class RollNote:
    """One note for the piano roll, in beats on the daemon's clock."""

    start_beat: float
    end_beat: float | None  # None while still sounding
    pitch: int
    source: Literal["performer", "rtgen"]


class Roll:
    """The last ``keep`` finished notes plus those still sounding."""

    def __init__(self, keep: int = 256) -> None:
        self._closed: deque[RollNote] = deque(maxlen=keep)
        self._open: dict[tuple[str, int], RollNote] = {}

    def performer(self, heard: Heard) -> None:
        self._note("performer", heard.beat, heard.pitch, heard.on)

    def rtgen(self, beat: float, message: mido.Message) -> None:
        on = message.type == "note_on" and message.velocity > 0
        self._note("rtgen", beat, message.note, on)

    def _note(self, source: str, beat: float, pitch: int, on: bool) -> None:
        key = (source, pitch)
        previous = self._open.pop(key, None)
        if previous is not None:
            self._closed.append(RollNote(previous.start_beat, max(beat, previous.start_beat), pitch, previous.source))
        if on:
            self._open[key] = RollNote(beat, None, pitch, source)

    def notes(self) -> tuple[RollNote, ...]:
        """Finished notes then sounding ones, each group oldest first."""
        closed = tuple(self._closed)
        sounding = tuple(self._open.values())
        return closed + tuple(sorted(sounding, key=lambda n: n.start_beat))
