"""The JACK harness for end-to-end tests: a private dummy server per test session and a client to talk to rtgen.

The server and client live in ``rtgen.midi.jack`` because ``rtgen bench
realtime`` uses them too; this module is what tests import.
"""

from __future__ import annotations

import shutil

from rtgen.midi.jack import JackClient, JackServer, jack_connections, unpaired_notes, wait_until

__all__ = [
    "AUDIBLE_MS",
    "JackClient",
    "JackServer",
    "jack_available",
    "jack_connections",
    "unpaired_notes",
    "wait_until",
]

# What an end-to-end test can tell apart on two shared cores, in milliseconds. The failures these tests guard
# against are starved or blocked output: notes tens to thousands of ms late (the input flood before its fix: send
# p99 2,978 ms). Scheduling noise on a loaded CI machine, with JACK, the daemon, an abuser and the stamping client
# all on two cores, has put single notes 3-5 ms off. 10 ms is where a listener starts to hear a flam; the precise
# figures are the benchmarks' (`rtgen bench realtime`, `rtgen bench soak`), in docs/benchmarks.md.
AUDIBLE_MS = 10.0


def jack_available() -> bool:
    """True when jackd and jack_lsp are installed (the server itself is started by the fixture)."""
    return shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None
