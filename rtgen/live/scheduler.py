"""Timed MIDI output: one thread sends every event at its absolute time and keeps the note books.

The engine thread calls ``schedule(t, message)``; that only puts the event on a
``queue.SimpleQueue`` (no lock the engine could wait on). The output thread
owns a heap ordered by time and the port: it sleeps on the queue until about
``spin_s`` before the next event, spins on the clock for the rest, sends, and
records |actual - planned| send time. Events already late are sent at once and
counted, never dropped.

Note books, per (channel, pitch): a note-on on a sounding pitch first closes
it; a note-off with no open note-on is dropped; ``panic``, ``stop`` and
``cancel_after`` close what sounds, so no note ever hangs.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import mido

from rtgen.live.timing import GcMonitor, percentile, spin_until
from rtgen.midi.interface import MidiOutput
from rtgen.midi.messages import panic_messages

log = logging.getLogger("rtgen.live.scheduler")
SPIN_S = 0.0005  # the output thread stops sleeping this long before a send and spins (s)
SEND_WINDOW = 2000  # sends the send-error percentiles cover (at 13 sends a second, two and a half minutes)
# SCHED_FIFO priority (1-99) of the output thread where permitted: below JACK's own threads (rtgen.midi.jack's
# JACK_PRIORITY), above every normal thread. The daemon, the benchmarks and the soak's floor all ask for this one.
OUTPUT_PRIORITY = 10
# The daemon's nice value where permitted: every thread of it (the engine's above all) ahead of normal work. The
# FIFO output thread waits for the interpreter lock, and an engine thread holding it but preempted by another
# program's thread keeps it for a whole time slice (a note 15 ms late beside two CPU-bound programs).
DAEMON_NICE = -10

Key = tuple[int, int]  # (channel, pitch)
_MESSAGE, _SAFETY_OFF = 0, 1


@dataclass(frozen=True)
class SendStats:
    """How well sends kept time. Errors are |actual - planned| send time over the last ``window`` sends."""

    count: int  # messages sent since start
    late: int  # sent more than ``late_s`` after their planned time
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    window: int = 0  # sends the percentiles cover
    failed: int = 0  # sends the port could not deliver (peer or server gone)
    pending: int = 0  # events waiting in the heap
    gc_pauses: int = 0  # garbage collections since start
    gc_max_ms: float = 0.0  # longest collection pause


def is_note_on(message: mido.Message) -> bool:
    return message.type == "note_on" and message.velocity > 0


def is_note_off(message: mido.Message) -> bool:
    return message.type == "note_off" or (message.type == "note_on" and message.velocity == 0)


class OutputScheduler:
    """Sends ``schedule``d messages at their times (seconds on ``now``) through ``port``.

    ``spin_s``: how long before an event the thread stops sleeping and spins
    (0.5 ms keeps the error well under a millisecond on a loaded machine).
    ``late_s``: an event sent later than this after its time counts as late.
    ``max_note_s``: when set, a note still sounding this long after its
    note-on is closed, whether or not a note-off was scheduled.
    ``realtime_priority``: SCHED_FIFO priority (1-99) asked for the output
    thread, as JACK does for its own; without the right (rtprio limit, or
    root) the thread runs at normal priority and ``realtime_granted`` is False.
    """

    def __init__(
        self,
        port: MidiOutput,
        now: Callable[[], float] = time.perf_counter,
        spin_s: float = SPIN_S,
        late_s: float = 0.001,
        window: int = SEND_WINDOW,
        max_note_s: float | None = None,
        realtime_priority: int | None = OUTPUT_PRIORITY,
    ) -> None:
        self.port = port
        self.realtime_priority = realtime_priority
        self.realtime_granted = False
        self._now = now
        self.spin_s = spin_s
        self.late_s = late_s
        self.max_note_s = max_note_s
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._heap: list[tuple[float, int, int, object]] = []
        self._serial = itertools.count()
        self._open: dict[Key, int] = {}  # note-ons not yet matched by a note-off
        self._sounding: set[Key] = set()  # notes on at the port right now
        self._generation: dict[Key, int] = {}  # note-ons per key, to match safety offs
        self._sounding_view: frozenset[Key] = frozenset()
        self.channels_used: set[int] = set()
        self._errors: deque[float] = deque(maxlen=window)
        self._count = 0
        self._late = 0
        self._failed = 0
        self.stray_offs = 0  # note-offs with no open note, dropped
        self._gc = GcMonitor()
        self._thread: threading.Thread | None = None
        self._running = False
        self.error: Exception | None = None  # what ended the output thread, if anything did

    # ----- called from any thread -----

    def schedule(self, t: float, message: mido.Message) -> None:
        """Send ``message`` at time ``t`` (seconds on this scheduler's ``now``); returns at once."""
        self._inbox.put((t, message))

    def schedule_note(self, t_on: float, t_off: float, pitch: int, velocity: int = 80, channel: int = 0) -> None:
        """A note-on at ``t_on`` and its note-off at ``t_off`` (seconds)."""
        self.schedule(t_on, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity))
        self.schedule(max(t_off, t_on), mido.Message("note_off", channel=channel, note=pitch, velocity=0))

    def sounding(self) -> frozenset[Key]:
        """(channel, pitch) of the notes on at the port now."""
        return self._sounding_view

    def panic(self) -> None:
        """Drop everything scheduled, close sounding notes now, then CC64=0, CC123, CC120 per channel used."""
        self._command(self._panic)

    def unschedule(self, kind: str) -> None:
        """Drop every queued message of mido type ``kind`` (the clock sender's ticks, when it stops)."""
        self._command(lambda: self._unschedule(kind))

    def cancel_after(self, t: float) -> None:
        """Drop note-ons planned after ``t`` (s), keeping the note-offs of notes that sound at ``t``."""
        self._command(lambda: self._cancel_after(t))

    def stats(self) -> SendStats:
        errors = sorted(self._errors)
        return SendStats(
            count=self._count,
            late=self._late,
            p50_ms=percentile(errors, 0.50) * 1e3,
            p90_ms=percentile(errors, 0.90) * 1e3,
            p99_ms=percentile(errors, 0.99) * 1e3,
            max_ms=(errors[-1] if errors else 0.0) * 1e3,
            window=len(errors),
            failed=self._failed + self.port.failed,
            pending=len(self._heap),
            gc_pauses=self._gc.pauses,
            gc_max_ms=self._gc.max_s * 1e3,
        )

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Start the output thread and GC pause timing."""
        if self._thread is not None:
            return
        self._running = True
        self._gc.install()
        self._thread = threading.Thread(target=self._run, name="rtgen-output", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close every sounding note and send the panic CCs, then end the output thread."""
        thread = self._thread
        if thread is None:
            self._panic()
            return
        done = threading.Event()
        self._inbox.put((_STOP, done))
        thread.join(timeout=5.0)
        self._thread = None
        self._gc.uninstall()
        if not done.is_set():  # the thread had died (see ``error``): take the stop here instead
            self._drain()

    def pump(self) -> int:
        """Without the thread (tests on a fake clock): take queued events and send those due; returns sends."""
        self._drain()
        before = self._count
        self._fire_due()
        return self._count - before

    def _fire_due(self) -> None:
        now = self._now()
        while self._heap and self._heap[0][0] <= now:
            self._fire(heapq.heappop(self._heap))

    # ----- the output thread -----

    def _command(self, action: Callable[[], None], timeout_s: float = 2.0) -> None:
        """Run ``action`` on the output thread (the port's only writer) and wait for it; inline without one."""
        thread = self._thread
        if thread is None or not thread.is_alive() or threading.current_thread() is thread:
            self._drain()
            action()
            return
        done = threading.Event()
        self._inbox.put((action, done))
        if not done.wait(timeout_s):
            log.warning("output thread did not answer within %.1f s", timeout_s)

    def _run(self) -> None:
        self.realtime_granted = raise_priority(self.realtime_priority)
        try:
            while self._running:
                self._wait_and_take()
                self._send_due()
        except Exception as error:  # a broken port or message: keep it for the daemon, close what sounds
            self.error = error
            log.exception("output thread stopped")
            self._panic()
        finally:
            self._running = False

    def _wait_and_take(self) -> None:
        """Sleep on the inbox until the next event is ``spin_s`` away, taking whatever arrives."""
        while self._running:
            wait = self._heap[0][0] - self._now() - self.spin_s if self._heap else 0.1
            if wait <= 0:
                return
            try:
                item = self._inbox.get(timeout=wait)
            except queue.Empty:
                continue
            self._take(item)

    def _send_due(self) -> None:
        now = self._now
        while self._heap and self._heap[0][0] <= now() + self.spin_s:
            spin_until(self._heap[0][0], now)
            self._fire(heapq.heappop(self._heap))

    def _drain(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._take(item)

    def _take(self, item: tuple) -> None:
        first, second = item
        if first is _STOP:
            self._fire_due()  # what is already due still goes (e.g. a clock 'stop')
            self._panic()
            self._running = False
            second.set()
        elif callable(first):
            self._drain()
            first()
            second.set()
        else:
            heapq.heappush(self._heap, (first, next(self._serial), _MESSAGE, second))

    def _fire(self, entry: tuple[float, int, int, object]) -> None:
        planned, _, kind, payload = entry
        if kind == _SAFETY_OFF:
            key, generation = payload
            if key in self._sounding and self._generation.get(key) == generation:
                self._open.pop(key, None)
                self._close(key)
            return
        message = payload
        if is_note_on(message):
            self._note_on(planned, message)
        elif is_note_off(message):
            self._note_off(planned, message)
        else:
            self._send_timed(planned, message)

    def _note_on(self, planned: float, message: mido.Message) -> None:
        key = (message.channel, message.note)
        if key in self._sounding:
            self._send(mido.Message("note_off", channel=key[0], note=key[1], velocity=0))
        self._send_timed(planned, message)
        self._sounding.add(key)
        self._sounding_view = frozenset(self._sounding)
        self._open[key] = self._open.get(key, 0) + 1
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation
        if self.max_note_s is not None:
            safety = (planned + self.max_note_s, next(self._serial), _SAFETY_OFF, (key, generation))
            heapq.heappush(self._heap, safety)

    def _note_off(self, planned: float, message: mido.Message) -> None:
        key = (message.channel, message.note)
        left = self._open.get(key, 0) - 1
        if left < 0:
            self.stray_offs += 1
            return
        if left > 0:  # a retriggered note is still owed its own note-off
            self._open[key] = left
            return
        del self._open[key]
        if key in self._sounding:
            self._sounding.discard(key)
            self._sounding_view = frozenset(self._sounding)
            self._send_timed(planned, mido.Message("note_off", channel=key[0], note=key[1], velocity=0))

    def _close(self, key: Key) -> None:
        self._sounding.discard(key)
        self._sounding_view = frozenset(self._sounding)
        self._send(mido.Message("note_off", channel=key[0], note=key[1], velocity=0))

    def _send_timed(self, planned: float, message: mido.Message) -> None:
        actual = self._send(message)
        error = actual - planned
        if error > self.late_s:
            self._late += 1
        self._errors.append(abs(error))
        self._count += 1

    def _send(self, message: mido.Message) -> float:
        if hasattr(message, "channel"):
            self.channels_used.add(message.channel)
        try:
            self.port.send(message)
        except (OSError, ValueError, RuntimeError) as error:
            self._failed += 1
            log.debug("send failed: %s", error)
        return self._now()

    def _panic(self) -> None:
        self._heap.clear()
        for key in sorted(self._sounding):
            self._close(key)
        self._open.clear()
        for message in panic_messages(sorted(self.channels_used) or [0]):
            self._send(message)

    def _unschedule(self, kind: str) -> None:
        self._heap = [entry for entry in self._heap if entry[2] != _MESSAGE or entry[3].type != kind]
        heapq.heapify(self._heap)

    def _cancel_after(self, t: float) -> None:
        keep, later = [], []
        for entry in self._heap:
            (keep if entry[0] <= t else later).append(entry)
        open_at_t = dict(self._open)
        for _, _, kind, message in sorted(keep):
            if kind == _MESSAGE and is_note_on(message):
                key = (message.channel, message.note)
                open_at_t[key] = open_at_t.get(key, 0) + 1
            elif kind == _MESSAGE and is_note_off(message):
                key = (message.channel, message.note)
                open_at_t[key] = max(0, open_at_t.get(key, 0) - 1)
        for entry in sorted(later):
            _, _, kind, message = entry
            if kind != _MESSAGE or not (is_note_on(message) or is_note_off(message)):
                keep.append(entry)  # clock ticks, controllers and safety offs stay
            elif is_note_off(message) and open_at_t.get((message.channel, message.note), 0) > 0:
                open_at_t[(message.channel, message.note)] -= 1
                keep.append(entry)
        for key, count in open_at_t.items():
            for _ in range(count):
                off = mido.Message("note_off", channel=key[0], note=key[1], velocity=0)
                keep.append((t, next(self._serial), _MESSAGE, off))
        heapq.heapify(keep)
        self._heap = keep


_STOP = object()


def raise_nice(nice: int = DAEMON_NICE) -> bool:
    """Lower the calling thread's nice value to ``nice`` (threads it starts afterwards inherit it); True when
    granted. Call before any other thread starts."""
    if not hasattr(os, "setpriority"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)  # on Linux: this thread, and every one it starts from now on
    except OSError as error:
        log.info("the daemon keeps its nice value (%s)", error)
        return False
    return True


def raise_priority(priority: int | None) -> bool:
    """Ask for SCHED_FIFO on the calling thread (None: do not ask); True when granted."""
    if priority is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as error:
        log.info("thread keeps normal priority (%s)", error)
        return False
    return True
