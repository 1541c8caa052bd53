"""The OSC protocol's names and framing, shared by the daemon's server and every client.

Kept apart from ``rtgen.daemon.osc`` (the server, which reaches the engine's
commands and so torch) so that a UI process, ``rtgen attach`` or one per
browser tab, imports python-osc and nothing heavier: it starts in a fraction
of the time and holds no model code in its memory.
"""

from __future__ import annotations

from pythonosc.osc_message_builder import OscMessageBuilder

PREFIX = "/rtgen/"  # every address starts with it: /rtgen/controls, /rtgen/status, ...
DEFAULT_PORT = 9200  # the daemon's UDP port unless --osc-port says otherwise


def message(address: str, *args: object) -> bytes:
    """One OSC message as a datagram."""
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram
