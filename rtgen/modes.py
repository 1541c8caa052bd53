"""The ways rtgen plays along: call-and-response, duet, solo.

Named below every layer because everyone speaks of them: the engine thread
plays them (``rtgen.live.player``), the daemon's config, presets, CC map and
OSC server check them, and the TUI, a client in another process, offers them
without importing the engine thread's code.

* ``call-and-response``: answer each phrase the performer plays.
* ``duet``: play on, taking the performer's notes into the models as they come.
* ``solo``: play on from the seed phrase alone.
"""

from __future__ import annotations

from typing import Literal

Mode = Literal["call-and-response", "duet", "solo"]
MODES: tuple[str, ...] = ("call-and-response", "duet", "solo")
