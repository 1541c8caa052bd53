"""The terminal UI (Textual) over a running daemon, and the same UI served to a browser.

``rtgen run`` and ``rtgen attach`` call ``make_app(client).run()`` with an
OSC client of the daemon (``rtgen.daemon.client``); ``--web`` calls
``serve_web(command)``, which starts that command (a terminal ``rtgen attach``)
once per browser session, so every tab is one more client of one daemon.
Textual is imported only when one of these runs, so importing this package,
and ``rtgen --help``, stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtgen.errors import RtgenError

if TYPE_CHECKING:
    from rtgen.daemon.status import DaemonControl
    from rtgen.tui.app import RtgenApp
    from rtgen.tui.web import TabServer


def make_app(daemon: DaemonControl, *, owner: bool = False, fps: float = 20, tab: bool = False) -> RtgenApp:
    """The app over ``daemon``, redrawing ``fps`` times a second (capped at 30).

    ``owner``: this UI started the daemon (``rtgen run``), so ``q`` stops the
    music; an attached UI (``rtgen attach``) leaves it playing. ``tab``: one
    browser tab's app under textual-serve (``rtgen.tui.tab``).
    """
    from rtgen.tui.app import RtgenApp

    if not tab:
        return RtgenApp(daemon, owner=owner, fps=fps)
    from rtgen.tui.tab import TabDriver

    return RtgenApp(daemon, owner=owner, fps=fps, driver_class=TabDriver)


def make_server(command: str, host: str = "127.0.0.1", port: int = 8000) -> TabServer:
    """A textual-serve server that runs ``command`` (a shell command starting the TUI) per browser session."""
    try:
        from rtgen.tui.web import make_server as _make_server
    except ModuleNotFoundError as error:
        if error.name not in ("textual_serve", "aiohttp"):
            raise
        raise RtgenError("the web UI needs textual-serve: pip install 'rtgen[web]' (or textual-serve)") from None
    return _make_server(command, host, port)


def serve_web(command: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the TUI at ``http://host:port`` until Ctrl+C; loopback only unless ``host`` says otherwise."""
    make_server(command, host, port).serve()
