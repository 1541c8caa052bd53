"""Which General MIDI instrument rtgen's notes sound on: one program per genre, the heaviest genre's for a blend.

The engine fuses the genres' predictions token by token, so a note has no
single source genre: the output channel plays the program of the genre with
the largest weight, and follows it when the weights move (a knob, OSC, a
preset). Each genre's program is a General MIDI number (0-127, as sent in a
program change; GM's documents count from 1, so violin is their 41)::

    [synth.programs]
    renaissance = 74  # recorder instead of choir aahs

The ``Instrument`` runs in the engine thread: it compares the controls value
it last saw by identity, so a tick with no change costs one comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import mido

from rtgen.errors import RtgenError

# violin, flute, church organ, choir aahs (recorder is 74)
GM_PROGRAMS: dict[str, int] = {"fiddle": 40, "folk": 73, "chorale": 19, "renaissance": 52}
DEFAULT_PROGRAM = 0  # acoustic grand piano, for a genre the table does not name (a user's own model)


def check_programs(programs: Mapping[str, int]) -> None:
    for genre, program in programs.items():
        if not 0 <= program <= 127:
            raise RtgenError(f"program {program} of {genre!r} outside 0-127 (General MIDI numbers minus one)")


def program_of(genre: str, programs: Mapping[str, int]) -> int:
    """The GM program of ``genre``: the configured one, else the built-in table's, else the piano."""
    return programs.get(genre, GM_PROGRAMS.get(genre, DEFAULT_PROGRAM))


def heaviest_genre(weights: Mapping[str, float]) -> str:
    """The genre with the largest weight; ties go to the first in name order, so the choice is stable."""
    if not weights:
        raise RtgenError("no genre weights: nothing to choose an instrument from")
    return min(weights, key=lambda genre: (-weights[genre], genre))


def blend_program(weights: Mapping[str, float], programs: Mapping[str, int]) -> int:
    """The program a blend plays: its heaviest genre's."""
    return program_of(heaviest_genre(weights), programs)


class Instrument:
    """Sends a program change on ``channel`` whenever the blend's program changes (engine thread).

    ``send(message)`` puts the message on the output (the scheduler, at once).
    """

    def __init__(self, programs: Mapping[str, int], channel: int, send: Callable[[mido.Message], None]) -> None:
        self.programs = dict(programs)
        self.channel = channel
        self.send = send
        self.program: int | None = None  # the program last sent
        self._seen: object = None  # the controls value last looked at

    def follow(self, controls) -> None:
        """Look at ``controls`` (a ``Controls``); a new heaviest genre with another program is sent."""
        if controls is self._seen:
            return
        self._seen = controls
        program = blend_program(controls.weights, self.programs)
        if program != self.program:
            self.program = program
            self.send(mido.Message("program_change", channel=self.channel, program=program))

    def resend(self) -> None:
        """Send the program again on the next ``follow`` (a synth that came back has forgotten it)."""
        self.program, self._seen = None, None
