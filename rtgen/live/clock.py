"""Beats <-> seconds: an internal tempo, a follower for external MIDI clock, and a clock sender.

(Ableton Link is the third source: ``rtgen.live.link``.)

One monotonic time base (``now``, seconds, ``time.perf_counter`` by default) is
passed in everywhere, so anything that schedules also runs on a ``FakeClock``
in tests. Beats are quarter notes. Every clock publishes its mapping as one
immutable tuple swapped in a single assignment, so the engine thread reads a
consistent beat/time pair while another thread changes the tempo, with no lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Literal, NamedTuple, Protocol

import mido

from rtgen.controls import CONTROLS, check

TICKS_PER_BEAT = 24  # MIDI clock: 24 pulses per quarter note
TICKS_PER_SIXTEENTH = 6  # song position pointer counts sixteenths
MIN_TEMPO_BPM, MAX_TEMPO_BPM = CONTROLS["tempo_bpm"].hard_range()  # the tempo a performer, preset or knob may set
FOLLOW_MIN_BPM = 1.0  # an external MIDI clock is followed anywhere in this range
FOLLOW_MAX_BPM = 999.0
TEMPO_SETTABLE = frozenset({"internal", "link"})  # clock sources whose tempo rtgen may set (Link: proposes it)


class Clock(Protocol):
    """What the engine, daemon and scheduler need from a clock."""

    @property
    def tempo_bpm(self) -> float: ...

    @property
    def source(self) -> Literal["internal", "external", "link"]: ...

    @property
    def running(self) -> bool: ...

    def now(self) -> float: ...

    def beat_at(self, t: float) -> float: ...

    def time_at(self, beat: float) -> float: ...

    def close(self) -> None: ...  # leave what the clock holds (a Link session); the daemon's last call


class Anchor(NamedTuple):
    """Beat ``beat`` falls at time ``t`` (s); beats advance at ``tempo_bpm`` from there."""

    t: float
    beat: float
    tempo_bpm: float

    def beat_at(self, t: float) -> float:
        return self.beat + (t - self.t) * self.tempo_bpm / 60.0

    def time_at(self, beat: float, t0: float | None = None) -> float:
        """When ``beat`` falls, counting from ``t0`` instead of the anchor's time if given (a held clock)."""
        return (self.t if t0 is None else t0) + (beat - self.beat) * 60.0 / self.tempo_bpm


def check_tempo(tempo_bpm: float) -> float:
    """``tempo_bpm`` as a float; outside the registry's range (``rtgen.controls``) raises naming it."""
    return float(check("tempo_bpm", tempo_bpm))


def clamp_tempo(tempo_bpm: float) -> float:
    """``tempo_bpm`` moved into ``MIN_TEMPO_BPM``-``MAX_TEMPO_BPM`` (an external clock may run outside it)."""
    return min(max(float(tempo_bpm), MIN_TEMPO_BPM), MAX_TEMPO_BPM)


class AnchoredClock:
    """A clock whose beat/time mapping is one ``Anchor``, swapped whole; beat 0 falls at construction."""

    def __init__(self, tempo_bpm: float, now: Callable[[], float]) -> None:
        self._now = now
        self._anchor = Anchor(now(), 0.0, check_tempo(tempo_bpm))

    def now(self) -> float:
        return self._now()

    @property
    def tempo_bpm(self) -> float:
        return self._anchor.tempo_bpm


class InternalClock(AnchoredClock):
    """A steady tempo that can change live without a jump in phase.

    Beat 0 falls at construction (or at ``start``). ``set_tempo`` re-anchors at
    the current instant, so ``beat_at(now())`` is the same just before and just
    after the change; only the slope changes. While stopped the beat holds.
    """

    source: Literal["internal"] = "internal"

    def __init__(self, tempo_bpm: float = 120.0, now: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(tempo_bpm, now)
        self._running = True

    @property
    def running(self) -> bool:
        return self._running

    def beat_at(self, t: float) -> float:
        anchor = self._anchor
        return anchor.beat_at(t) if self._running else anchor.beat

    def time_at(self, beat: float) -> float:
        """When ``beat`` falls; while stopped, as if the clock restarted now."""
        return self._anchor.time_at(beat, None if self._running else self._now())

    def set_tempo(self, tempo_bpm: float) -> None:
        tempo = check_tempo(tempo_bpm)
        t = self._now()
        self._anchor = Anchor(t, self.beat_at(t), tempo)

    def start(self, beat: float = 0.0) -> None:
        """Run from ``beat`` starting now."""
        self._anchor = Anchor(self._now(), float(beat), self._anchor.tempo_bpm)
        self._running = True

    def stop(self) -> None:
        t = self._now()
        self._anchor = Anchor(t, self.beat_at(t), self._anchor.tempo_bpm)
        self._running = False

    def resume(self) -> None:
        """Go on from the beat where ``stop`` left off."""
        if not self._running:
            self.start(self._anchor.beat)

    def close(self) -> None:
        """Nothing to leave: an internal clock is arithmetic on ``now``."""


class FakeClock(InternalClock):
    """A clock whose time only moves when a test says so; also usable as ``now=`` (call it)."""

    def __init__(self, tempo_bpm: float = 120.0, start_s: float = 0.0) -> None:
        self._t = float(start_s)
        super().__init__(tempo_bpm, now=self._read)

    def _read(self) -> float:
        return self._t

    def __call__(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self._t += seconds
        return self._t


class _Fit(NamedTuple):
    """Tick ``n`` (a running count of received ticks) is expected at ``t0 + (n - n0) * period_s``."""

    n0: float
    t0: float
    period_s: float


class _Position(NamedTuple):
    """Received tick number ``n`` is song position ``tick`` (in 24ths of a beat)."""

    n: int
    tick: int


class ExternalClock:
    """Follows MIDI clock from a DAW or drum machine: 24 ticks a beat, start/stop/continue, song position.

    Tempo and phase come from a least-squares line through the last
    ``window_ticks`` tick arrival times, so +-2 ms of jitter on each tick
    (common through USB and JACK) leaves a steady tempo, and the beat is placed
    on that line rather than on the last, jittered tick. A gap longer than
    ``gap_ticks`` tick periods (the DAW paused its clock) starts a fresh fit.
    Before two ticks have arrived the last known tempo (``initial_tempo_bpm``) is used.
    """

    source: Literal["external"] = "external"

    def __init__(
        self,
        now: Callable[[], float] = time.perf_counter,
        window_ticks: int = 36,
        gap_ticks: float = 8.0,
        initial_tempo_bpm: float = 120.0,
    ) -> None:
        if window_ticks < 2:
            raise ValueError("window_ticks must be at least 2")
        self._now = now
        self._ticks: deque[tuple[int, float]] = deque(maxlen=window_ticks)
        self._gap_ticks = gap_ticks
        self._count = 0  # ticks received so far, running or not
        self._fit = _Fit(0.0, now(), 60.0 / (check_tempo(initial_tempo_bpm) * TICKS_PER_BEAT))
        self._position = _Position(0, 0)  # while stopped: the tick where the song stands
        self._running = False

    def now(self) -> float:
        return self._now()

    @property
    def tempo_bpm(self) -> float:
        return 60.0 / (self._fit.period_s * TICKS_PER_BEAT)

    @property
    def running(self) -> bool:
        return self._running

    def feed(self, message_type: str, t: float, data: int | None = None) -> None:
        """Take one realtime message received at ``t`` (s).

        ``message_type`` is mido's name: 'clock', 'start', 'stop', 'continue',
        or 'songpos' with ``data`` the position in sixteenths (0-16383).
        """
        if message_type == "clock":
            self._tick(t)
        elif message_type == "start":
            self._position = _Position(self._count, 0)
            self._running = True
        elif message_type == "continue":
            self._position = _Position(self._count, self._position.tick)
            self._running = True
        elif message_type == "stop":
            self._position = _Position(self._count, self._tick_now())
            self._running = False
        elif message_type == "songpos":
            self._position = _Position(self._count, int(data or 0) * TICKS_PER_SIXTEENTH)
        else:
            raise ValueError(f"not a MIDI clock message: {message_type!r}")

    def feed_message(self, message: mido.Message, t: float) -> bool:
        """Feed a mido message if it is a clock message; True when it was one."""
        if message.type in ("clock", "start", "stop", "continue"):
            self.feed(message.type, t)
            return True
        if message.type == "songpos":
            self.feed("songpos", t, message.pos)
            return True
        return False

    def beat_at(self, t: float) -> float:
        """The song position at ``t`` in beats; held where it stands while stopped."""
        position = self._position
        if not self._running:
            return position.tick / TICKS_PER_BEAT
        fit = self._fit
        n = fit.n0 + (t - fit.t0) / fit.period_s
        return (position.tick + n - position.n) / TICKS_PER_BEAT

    def time_at(self, beat: float) -> float:
        """When ``beat`` falls on the current fit; while stopped, as if the song continued now."""
        position = self._position
        fit = self._fit
        if not self._running:
            return self._now() + (beat * TICKS_PER_BEAT - position.tick) * fit.period_s
        n = position.n + beat * TICKS_PER_BEAT - position.tick
        return fit.t0 + (n - fit.n0) * fit.period_s

    def close(self) -> None:
        """Nothing to leave: the ticks it follows arrive through the daemon's input."""

    def _tick_now(self) -> int:
        """The song position in ticks as of the last received tick."""
        position = self._position
        if not self._running:
            return position.tick
        return position.tick + self._count - position.n

    def _tick(self, t: float) -> None:
        if self._ticks and t - self._ticks[-1][1] > self._gap_ticks * self._fit.period_s:
            self._ticks.clear()
        self._ticks.append((self._count, t))
        self._count += 1
        if len(self._ticks) == 1:
            self._fit = _Fit(float(self._count - 1), t, self._fit.period_s)
        else:
            self._fit = _line(self._ticks, self._fit.period_s)


def _line(points: deque[tuple[int, float]], fallback_period_s: float) -> _Fit:
    """Least-squares ``t = t0 + (n - n0) * period`` through (n, t), anchored at the mean."""
    count = len(points)
    n_mean = sum(n for n, _ in points) / count
    t_mean = sum(t for _, t in points) / count
    snn = sum((n - n_mean) ** 2 for n, _ in points)
    snt = sum((n - n_mean) * (t - t_mean) for n, t in points)
    period = snt / snn if snn > 0 else fallback_period_s
    lowest = 60.0 / (FOLLOW_MAX_BPM * TICKS_PER_BEAT)
    highest = 60.0 / (FOLLOW_MIN_BPM * TICKS_PER_BEAT)
    return _Fit(n_mean, t_mean, min(max(period, lowest), highest))


class ClockSender:
    """Sends MIDI clock as master: a start, then 24 ticks a beat of ``clock``, then a stop.

    Tick ``k`` is scheduled at ``clock.time_at(first_beat + k / 24)``, an
    absolute time, so ticks never drift and follow live tempo changes without
    a jump. Ticks go through the output scheduler (``schedule(t, message)``),
    keeping one thread as the port's only writer; a small thread keeps
    ``lookahead_s`` of ticks queued; on ``stop`` the ticks still queued are
    dropped before the stop is, so no tick follows it however late the output
    thread runs.
    """

    def __init__(self, scheduler, clock: Clock, lookahead_s: float = 0.05, send_start: bool = True) -> None:
        self._scheduler = scheduler
        self._clock = clock
        self._lookahead_s = lookahead_s
        self._send_start = send_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks_sent = 0

    def start(self, first_beat: float | None = None) -> None:
        """Begin at ``first_beat`` (default: the next whole beat of the clock)."""
        if self._thread is not None:
            return
        clock = self._clock
        beat = first_beat if first_beat is not None else float(int(clock.beat_at(clock.now())) + 1)
        if self._send_start:
            self._scheduler.schedule(clock.time_at(beat), mido.Message("start"))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(beat,), name="rtgen-clock-out", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._scheduler.unschedule("clock")
        self._scheduler.schedule(self._clock.now(), mido.Message("stop"))

    def _run(self, first_beat: float) -> None:
        tick = mido.Message("clock")
        k = 0
        while not self._stop.is_set():
            horizon = self._clock.now() + self._lookahead_s
            while True:
                due = self._clock.time_at(first_beat + k / TICKS_PER_BEAT)
                if due > horizon:
                    break
                self._scheduler.schedule(due, tick)
                k += 1
                self.ticks_sent = k
            self._stop.wait(self._lookahead_s / 2)
