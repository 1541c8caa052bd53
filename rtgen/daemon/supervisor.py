"""One supervisor for the daemon process, whatever UI is attached: signals, thread errors, lateness, the way out.

``supervise`` runs in the daemon's main thread. SIGINT, SIGTERM, SIGHUP (a
closed terminal) and SIGQUIT all take the same clean way out; SIGUSR1 is a
panic (all notes off) without stopping. An error in any music thread is
reported to every attached UI (the OSC server forwards it within a status
period) and stops the daemon; growing counts of late events and failed sends
are logged once a second at most. The caller then runs
``Daemon.shutdown`` (note-offs, CC123/CC120, the take), whatever happened.

The other half, for a daemon that dies without a way out (SIGKILL, a crash
in C), is ``rtgen.daemon.guard``: the process that started the daemon
silences what it was connected to.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name)
)
ERROR_GRACE_S = 0.3  # after an error, time for the OSC server to hand it to every UI before the way out
TICK_S = 0.05


M_ARENA_MAX = -8  # glibc's mallopt parameter number


def install_signals(daemon) -> None:
    """Every catchable stop signal asks the daemon to stop; SIGUSR1 silences it (main thread only)."""
    from rtgen.daemon.commands import Transport

    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: daemon.request_stop())
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda signum, frame: daemon.submit(Transport("panic")))


def supervise(
    daemon,
    *,
    status_interval_s: float = 5.0,
    on_status: Callable[[object], None] | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> int:
    """Watch the running daemon until a stop request or a thread error; 0 for a clean stop, 1 for an error.

    ``on_event(kind, line)`` gets every log line and error (kind "log" or
    "error") as it happens; ``on_status(snapshot)`` every ``status_interval_s``.
    """
    serial = -1
    next_status = time.monotonic() + status_interval_s
    watch = _Lateness(daemon)
    if daemon.config.realtime and not daemon.scheduler.realtime_granted:
        daemon.log("output thread at normal priority (no real-time rights); timing may suffer under load")
    while True:
        error = daemon.thread_error()  # a music thread that fails also sets the stop request: check first
        if error is not None:
            daemon.error = error
            daemon.report(f"stopping: {one_line(error)}")
            time.sleep(ERROR_GRACE_S)
        if error is not None or daemon.stopping:
            break
        watch.check()
        if daemon.recorder is not None:
            daemon.recorder.tempo(daemon.clock.beat_at(daemon.clock.now()), daemon.clock.tempo_bpm)
        serial = _emit(daemon, serial, on_event)
        if on_status is not None and time.monotonic() >= next_status:
            on_status(daemon.snapshot())
            next_status += status_interval_s
        time.sleep(TICK_S)
    _emit(daemon, serial, on_event)
    return 1 if daemon.error is not None else 0


def _emit(daemon, after: int, on_event) -> int:
    """Hand events newer than ``after`` to ``on_event``; returns the newest serial handed."""
    for serial, kind, line in daemon.events_after(after):
        after = serial
        if on_event is not None:
            on_event(kind, line)
    return after


class _Lateness:
    """Reports growth in late sends and failed sends, at most once a second."""

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.late = self.failed = 0
        self.next_check = 0.0

    def check(self) -> None:
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + 1.0
        stats = self.daemon.scheduler.stats()
        if stats.late > self.late:
            self.daemon.log(f"{stats.late - self.late} events sent late in the last second (p99 {stats.p99_ms:.2f} ms)")
        if stats.failed > self.failed:
            self.daemon.report(f"{stats.failed - self.failed} sends failed (is the output port gone?)")
        self.late, self.failed = stats.late, stats.failed


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Ask glibc for at most ``arenas`` malloc arenas; call before any thread starts. True where it took.

    glibc gives each thread that meets a locked arena one of its own, up to
    8 per core, and memory freed in one is not reused by the others: a
    daemon whose eight threads allocate a little each, for hours, grows
    (measured: 8.6-9.1 MB of RSS over a 30-minute duet, ``rtgen bench soak``).
    Elsewhere (macOS, Windows, musl) this does nothing.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or sys.platform != "linux":
        return False
    try:
        return ctypes.CDLL(name).mallopt(M_ARENA_MAX, arenas) == 1
    except (OSError, AttributeError):
        return False
