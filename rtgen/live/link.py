"""Ableton Link as rtgen's clock: join the session on the local network, follow its tempo and phase.

``aalink`` (a maintained pybind11 binding of Ableton's Link library) runs the
session in its own threads. ``LinkClock`` reads the session's timeline every
``poll_s`` from a small thread of its own (the Link time of that instant, the
beat at it and the tempo) and publishes it as one immutable anchor, like the internal
clock, so the engine thread maps beats and seconds with no call into Link and
no lock. Link's host clock is the system's monotonic clock, which is also
``time.perf_counter``'s on Linux; the offset between the two is measured at
each read anyway. Beats are Link's session beats: every peer's bar lines
(``quantum`` beats, 4 by default) fall together. A tempo set in rtgen is
proposed to the session; with start/stop sync enabled, the session's
transport starts and stops rtgen.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Literal

from rtgen.errors import RtgenError
from rtgen.live.clock import Anchor, AnchoredClock, check_tempo


class LinkClock(AnchoredClock):
    """The Link session's timeline at ``now`` (perf_counter seconds); see the module docstring.

    aalink needs a running asyncio loop: the clock's thread runs one, owns the
    ``Link`` object and is the only thread that calls it.
    """

    source: Literal["link"] = "link"

    def __init__(
        self, tempo_bpm: float = 120.0, quantum: int = 4, start_stop_sync: bool = False, poll_s: float = 0.005
    ) -> None:
        try:
            import aalink  # noqa: F401 - fail here, in the caller's thread, with a clear message
        except ImportError:
            raise RtgenError("--clock link needs the aalink package (pip install aalink)") from None
        super().__init__(tempo_bpm, time.perf_counter)
        self.poll_s = poll_s
        self._state = (0, True)  # (peers, running), as last read
        self._proposed: float | None = None  # a tempo to hand to the session at the next poll
        self._stop = threading.Event()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._session(tempo_bpm, quantum, start_stop_sync, ready)),
            name="rtgen-link",
            daemon=True,
        )
        self._thread.start()
        ready.wait(5.0)

    async def _session(self, tempo_bpm: float, quantum: int, start_stop_sync: bool, ready: threading.Event) -> None:
        from aalink import Link

        link = Link(tempo_bpm)
        link.quantum = quantum
        link.start_stop_sync_enabled = start_stop_sync
        link.enabled = True
        self._publish(link)
        ready.set()
        while not self._stop.is_set():
            if (proposed := self._proposed) is not None:
                self._proposed = None
                link.tempo = proposed
            self._publish(link)
            await asyncio.sleep(self.poll_s)
        link.enabled = False

    def _publish(self, link) -> None:
        """The session's (time, beat, tempo) now, the time moved onto ``perf_counter``'s base."""
        before = self._now()
        link_s, beat, tempo = link.time.total_seconds(), link.beat, link.tempo
        offset = (before + self._now()) / 2 - time.monotonic()
        self._anchor = Anchor(link_s + offset, float(beat), float(tempo))
        self._state = (int(link.num_peers), bool(link.playing) or not link.start_stop_sync_enabled)

    @property
    def running(self) -> bool:
        return self._state[1]

    @property
    def peers(self) -> int:
        return self._state[0]

    def beat_at(self, t: float) -> float:
        return self._anchor.beat_at(t)

    def time_at(self, beat: float) -> float:
        return self._anchor.time_at(beat)

    def set_tempo(self, tempo_bpm: float) -> None:
        """Propose ``tempo_bpm`` to the session (every peer follows); taken at the next poll."""
        self._proposed = check_tempo(tempo_bpm)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
