"""The same TUI in a browser: textual-serve runs a shell command per browser tab and streams it.

Each browser tab starts its own copy of ``command`` (``rtgen attach --tab``,
whose process ends with its tab: ``rtgen.tui.tab``), so the page shows exactly
the terminal app. The server binds to the loopback address unless told
otherwise: a performer's rig should not be reachable from the network by
accident. ``TabServer`` is textual-serve's server made to leave nothing behind:
on SIGINT, SIGTERM or SIGHUP it drops every tab's connection, so each tab's
process is told to quit at once, and is gone within seconds (textual-serve alone
waited on open tabs, and ignored SIGHUP); a tab still starting then ends as it
sees its input's other end closed (``rtgen.tui.lifetime.watch_input``).
"""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web
from textual_serve.server import Server

from rtgen.errors import RtgenError
from rtgen.tui.lifetime import GONE_S


class TabServer(Server):
    """textual-serve's ``Server``; stopping it (any of SIGINT, SIGTERM, SIGHUP) ends every tab's process."""

    def __init__(self, command: str, host: str, port: int) -> None:
        super().__init__(command, host=host, port=port, title="rtgen")
        self.tabs: dict[asyncio.Task, web.Request] = {}  # each open tab's websocket handler, and its request

    async def on_startup(self, app: web.Application) -> None:
        await super().on_startup(app)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_exit)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        task = asyncio.current_task()
        self.tabs[task] = request
        try:
            return await super().handle_websocket(request)
        finally:
            self.tabs.pop(task, None)

    async def on_shutdown(self, app: web.Application) -> None:
        """Drop each tab's connection: its handler sends its process "quit" and waits for it (``GONE_S`` at most).

        Closing the connection, rather than the websocket's polite close, waits for no browser's reply.
        """
        for request in list(self.tabs.values()):
            if request.transport is not None:
                request.transport.close()
        if self.tabs:
            await asyncio.wait(list(self.tabs), timeout=GONE_S)  # then the server exits: a tab still up reads EOF


def make_server(command: str, host: str = "127.0.0.1", port: int = 8000) -> TabServer:
    """A ``TabServer`` for ``command`` on ``host:port`` (port 1-65535), titled "rtgen"."""
    if not command.strip():
        raise RtgenError("the web UI needs a command to run per browser session, e.g. 'rtgen run'")
    if not 1 <= port <= 65535:
        raise RtgenError(f"web port {port} must be 1-65535")
    return TabServer(command, host=host, port=port)
