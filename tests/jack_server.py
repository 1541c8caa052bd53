"""The JACK harness for end-to-end tests: a private dummy server per test session and a client to talk to rtgen.

The server and client live in ``rtgen.midi.jack`` because ``rtgen bench
realtime`` uses them too; this module is what tests import.
"""

from __future__ import annotations

import shutil

from rtgen.midi.jack import JackClient, JackServer, jack_connections, unpaired_notes, wait_until

__all__ = ["JackClient", "JackServer", "jack_available", "jack_connections", "unpaired_notes", "wait_until"]


def jack_available() -> bool:
    """True when jackd and jack_lsp are installed (the server itself is started by the fixture)."""
    return shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None
