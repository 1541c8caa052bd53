"""One browser tab's ``rtgen attach``: Textual's web driver, made to end with its tab and with its server.

textual-serve starts ``rtgen attach --tab`` once per browser tab and speaks to
it over its standard input and output. Textual's web driver ends the app when
the server says "quit" (the tab closed or reloaded) and on SIGINT or SIGTERM,
but not when the server itself goes away: standard input reaches its end, the
input thread returns, and the app ran on with no one to draw for (once seen
re-parented to init at 80 % of a core, ended only by SIGKILL). ``TabDriver``
ends the app then too, and on SIGHUP; and whatever asked it to end, the
process is gone soon after (``EXIT_S``, ``GONE_S``) even if the app's loop
never gets there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

from textual import messages
from textual.drivers.web_driver import WebDriver

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


class TabDriver(WebDriver):
    """``WebDriver`` whose process ends, within ``EXIT_S``, on "quit", a stop signal, or the server's end."""

    def start_application_mode(self) -> None:
        super().start_application_mode()  # the loop's SIGINT and SIGTERM handlers ask the app to exit
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._app.post_message, messages.ExitApp())
        arm_on_signals()  # again: the loop replaced the Python-level handlers (its wake-up stays)

    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "quit":  # the tab closed or reloaded, or the server is stopping
            end_within(GONE_S)
        super().on_meta(packet_type, payload)

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():  # input ended while the app runs: the server is gone
            end_within(GONE_S)
            self._app.post_message(messages.ExitApp())
