"""The same TUI in a browser: textual-serve runs a shell command per browser session and streams it.

Each browser tab starts its own copy of ``command`` (for ``rtgen run --web``,
the terminal ``rtgen run`` with the same options), so the page shows exactly
the terminal app. The server binds to the loopback address unless told
otherwise: a performer's rig should not be reachable from the network by accident.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtgen.errors import RtgenError

if TYPE_CHECKING:
    from textual_serve.server import Server


def make_server(command: str, host: str = "127.0.0.1", port: int = 8000) -> Server:
    """A textual-serve ``Server`` for ``command`` on ``host:port`` (port 1-65535), titled "rtgen"."""
    if not command.strip():
        raise RtgenError("the web UI needs a command to run per browser session, e.g. 'rtgen run'")
    if not 1 <= port <= 65535:
        raise RtgenError(f"web port {port} must be 1-65535")
    try:
        from textual_serve.server import Server
    except ImportError:
        raise RtgenError("the web UI needs textual-serve: pip install 'rtgen[web]' (or textual-serve)") from None
    return Server(command, host=host, port=port, title="rtgen")
