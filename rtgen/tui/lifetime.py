"""How a browser tab's process ends: soon after it is asked to, and when its web server is gone.

Standard library only: ``rtgen attach --tab`` arms these first, before it
imports Textual, so a tab still starting on a busy machine is covered too. A
tab's app hears "quit" or the end of its input only once it runs; a server
stopped while the tab was still importing left the process running after it
(seen beside two CPU-bound programs: the tab outlived a SIGTERM to the server
by more than 3 s).
"""

from __future__ import annotations

import os
import select
import signal
import threading

EXIT_S = 1.5  # seconds from a stop signal to the process's end, at most (issue 20 asks for 3)
GONE_S = 0.5  # from "quit" or the server's end: no one is left to see a graceful exit
END_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


_deadline: list[threading.Timer] = []  # the one armed timer, once armed


def end_within(seconds: float = EXIT_S) -> None:
    """This process ends ``seconds`` from now unless it has ended by then (any thread, a signal handler; once)."""
    if not _deadline:
        timer = threading.Timer(seconds, os._exit, (0,))
        timer.daemon = True
        _deadline.append(timer)
        timer.start()


def arm_on_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP arm the deadline (main thread): from the process's start, so a tab closed while
    its app is still starting ends too. The event loop's own handlers, where installed, ask the app to exit first."""
    for sig in END_SIGNALS:
        signal.signal(sig, lambda signum, frame: end_within())


def watch_input(fd: int = 0) -> None:
    """End this process ``GONE_S`` after the other end of its input, the web server's pipe, is closed (the server
    stopped, or was killed). Waits on the pipe's hang-up alone and reads nothing: the app reads the same input.
    Where the system has no ``poll`` (Windows), the app's own end of input and "quit" remain."""
    if not hasattr(select, "poll"):
        return
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: poll reports only a hang-up, an error or a closed descriptor

    def watch() -> None:
        poller.poll()  # blocks until the hang-up
        end_within(GONE_S)

    threading.Thread(target=watch, daemon=True, name="rtgen-tab-input").start()
