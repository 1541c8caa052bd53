"""One browser tab's ``rtgen attach``: Textual's web driver, made to end with its tab and with its server.

textual-serve starts ``rtgen attach --tab`` once per browser tab and speaks to
it over its standard input and output. Textual's web driver ends the app when
the server says "quit" (the tab closed or reloaded) and on SIGINT or SIGTERM,
but not when the server itself goes away: standard input reaches its end, the
input thread returns, and the app ran on with no one to draw for (once seen
re-parented to init at 80 % of a core, ended only by SIGKILL). ``TabDriver``
ends the app then too, and on SIGHUP; and whatever asked it to end, the
process is gone soon after (``rtgen.tui.lifetime``) even if the app's loop
never gets there.
"""

from __future__ import annotations

import asyncio
import signal

from textual import messages
from textual.drivers.web_driver import WebDriver

from rtgen.tui.lifetime import GONE_S, arm_on_signals, end_within


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
