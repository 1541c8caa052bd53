"""The terminal UI (Textual) over a running daemon, and the same UI served to a browser.

``rtgen run`` calls ``run_app(daemon)``; ``rtgen run --web`` calls
``serve_web(command)``, which starts that command (a terminal ``rtgen run``)
once per browser session. Textual is imported only when one of these runs, so
importing this package, and ``rtgen --help``, stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual_serve.server import Server

    from rtgen.daemon.status import DaemonControl
    from rtgen.tui.app import RtgenApp


def make_app(daemon: DaemonControl, *, fps: float = 20) -> RtgenApp:
    """The app over ``daemon``, redrawing ``fps`` times a second (capped at 30)."""
    from rtgen.tui.app import RtgenApp

    return RtgenApp(daemon, fps=fps)


def run_app(daemon: DaemonControl, *, fps: float = 20) -> None:
    """Run the app in this terminal; returns when the user quits (``q``). The caller shuts the daemon down."""
    make_app(daemon, fps=fps).run()


def make_server(command: str, host: str = "127.0.0.1", port: int = 8000) -> Server:
    """A textual-serve server that runs ``command`` (a shell command starting the TUI) per browser session."""
    from rtgen.tui.web import make_server as _make_server

    return _make_server(command, host, port)


def serve_web(command: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the TUI at ``http://host:port`` until Ctrl+C; loopback only unless ``host`` says otherwise."""
    make_server(command, host, port).serve()
