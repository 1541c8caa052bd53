"""``rtgen attach``: the terminal UI (or, with ``--web``, the browser UI) for a daemon that is already running.

The UI is an OSC client of the daemon (``rtgen.daemon.client``): quitting it,
or killing it, leaves the music playing, and a second ``rtgen attach`` shows
the current state. ``--web`` serves one attached UI per browser tab; stopping
that web server stops no music, since the daemon is not its own.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from rtgen.errors import RtgenError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attach",
        help="a UI for a running daemon (rtgen run --headless), over OSC",
        description="Attach the terminal UI to a running rtgen daemon; quitting it leaves the music playing.",
    )
    add_osc_arguments(parser)
    parser.add_argument("--web", action="store_true", help="serve the UI to browsers instead (needs textual-serve)")
    parser.add_argument("--tab", action="store_true", help=argparse.SUPPRESS)  # one browser tab's UI (--web runs it)
    add_web_arguments(parser)
    parser.set_defaults(handler=attach)


def add_osc_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--osc-host", help="the daemon's OSC address (default 127.0.0.1)")
    parser.add_argument("--osc-port", type=int, help="the daemon's OSC port (default 9200)")


def add_web_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="--web: address to serve on (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="--web: port to serve on (default 8000)")


def attach(args: argparse.Namespace) -> int:
    from rtgen.daemon.protocol import DEFAULT_PORT

    osc_port = args.osc_port or DEFAULT_PORT
    osc_host = args.osc_host or "127.0.0.1"
    if not 1 <= osc_port <= 65535:
        raise RtgenError(f"--osc-port {osc_port} must be 1-65535")
    if args.web:
        serve_web_ui(osc_port, args.host, args.port, osc_host)
        return 0
    return attach_tui(osc_port, owner=False, host=osc_host, tab=args.tab)


def attach_tui(osc_port: int, *, owner: bool, host: str = "127.0.0.1", tab: bool = False) -> int:
    """Run the TUI over the daemon at ``host:osc_port`` until ``q`` (or the daemon ends); 0, or 1 on its error.

    ``tab``: this process is one browser tab's, started by ``serve_web_ui``; it ends with the tab or the server.
    """
    if tab:  # before the imports below, which take seconds on a busy machine
        from rtgen.tui.lifetime import arm_on_signals, watch_input

        arm_on_signals()
        watch_input()
    from rtgen.daemon.client import DaemonClient
    from rtgen.tui import make_app

    client = DaemonClient(osc_port, host).connect()
    try:
        make_app(client, owner=owner, tab=tab).run()
    finally:
        client.close()
    if client.gone is not None and client.gone != "stopped":
        print(f"rtgen: the daemon stopped: {client.gone}", file=sys.stderr)
        return 1
    return 0


def serve_web_ui(osc_port: int, host: str, port: int, osc_host: str = "127.0.0.1") -> None:
    """Serve ``rtgen attach`` to browsers at ``host:port``, one attached UI per tab, until Ctrl+C."""
    from rtgen.tui import serve_web

    argv = [sys.executable, "-m", "rtgen", "attach", "--tab", "--osc-host", osc_host, "--osc-port", str(osc_port)]
    serve_web(shlex.join(argv), host=host, port=port)
