"""What the engine thread is given: an engine to step (a Protocol) and the daemon's hooks (one frozen value).

The player (``rtgen.live.player``) owns the music state and calls out only
through these, all in its own thread. Both are fixed when the player is made:
the hooks come from a function of the new player, because the daemon's
command applier and input router act on the player they serve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import mido

from rtgen.encoding import Encoding, Note
from rtgen.live.listener import Phrase


class PlayedControls(Protocol):
    """The controls the engine thread reads (``rtgen.engine.controls.Controls`` has them all)."""

    @property
    def max_note_beats(self) -> float: ...  # a generated note ends after this many beats at most
    @property
    def expression(self) -> float: ...  # 0-1: how far velocities and timing are played, not typed
    @property
    def swing(self) -> float: ...  # 0-0.75: the off-beat's delay (rtgen.live.expression)


class TokenEngine(Protocol):
    """What the engine thread asks of an engine (``rtgen.engine.warm.Engine``, ``rtgen.engine.variation``'s)."""

    @property
    def encoding(self) -> Encoding: ...
    @property
    def keeps_bar_phase(self) -> bool: ...  # its notes sit on the call's bar grid: a voice keeps their leading rest
    @property
    def controls(self) -> PlayedControls: ...  # the controls in force
    def reset(self) -> None: ...  # forget the stream: the next token starts a piece
    def prime(self, notes: Sequence[Note]) -> None: ...  # a separator, then the phrase, into the models' state
    def feed(self, tokens: Sequence[int], *, performer: bool = False) -> None: ...  # tokens chosen elsewhere
    def step(self) -> int: ...  # choose the next token and take it into the state
    @property
    def beats_to_section_end(self) -> float | None: ...  # from the stream's position to where the form's section

    # under way closes (a cadence, a restatement's end): inf until the form knows; None for an engine without
    # sections (a chord or time-step stream, the VAE), whose expression then assumes 8-bar sections


def _no_command(command: object) -> None:
    return None


def _no_glide(now: float) -> None:
    return None


def _no_inputs(limit: int) -> list[tuple[float, mido.Message]]:
    return []


def _not_routed(t: float, message: mido.Message) -> bool:
    return False


def _not_told(t: float, message: mido.Message) -> None:
    return None


def _phrase_ignored(phrase: Phrase) -> None:
    return None


def _not_logged(line: str) -> None:
    return None


@dataclass(frozen=True)
class PlayerHooks:
    """The player's ways out, each called in the engine thread; a player without a daemon leaves them idle.

    Times are the daemon clock's seconds; messages are stamped ``(t, message)`` pairs.
    """

    apply: Callable[[object], None] = _no_command  # applies one queued command (rtgen.daemon.commands)
    glide: Callable[[float], None] = _no_glide  # moves gliding controls on to ``now``
    inputs: Callable[[int], list[tuple[float, mido.Message]]] = _no_inputs  # up to n new input messages
    route: Callable[[float, mido.Message], bool] = _not_routed  # clock, CC, program change; False: a note
    on_sent: Callable[[float, mido.Message], None] = _not_told  # what the output thread sent (the take)
    on_heard: Callable[[float, mido.Message], None] = _not_told  # the performer's note messages (the take)
    on_phrase_heard: Callable[[Phrase], None] = _phrase_ignored  # every finished phrase, any mode
    log: Callable[[str], None] = _not_logged  # a line for the log and every attached UI
