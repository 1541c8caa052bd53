"""What the daemon does with input that is not a note: MIDI clock, CC knobs, program changes.

Runs in the engine thread (the player calls ``route`` for each stamped
message before the listener sees it). The sustain pedal, all-notes-off,
all-sound-off and reset go to the listener. MIDI clock drives the clock directly;
CC knobs and program changes go through ``Commands``, the one way into the
music state. A mistake in the performer's gear (a preset that fails to load, a
knob that would zero every weight) is reported, never raised: the music goes on.
"""

from __future__ import annotations

from collections.abc import Callable

import mido

from rtgen.live.listener import CLEARING_CCS
from rtgen.midi.messages import SUSTAIN_CC

CLOCK_TYPES = frozenset({"clock", "start", "stop", "continue", "songpos"})
TRANSPORT_TYPES = frozenset({"start", "stop", "continue", "songpos"})
TICKS_PER_BEAT = 24  # MIDI clock
LOST_TICK_RATIO = 1.6  # a gap this many tick periods long may have lost ticks in it
NORMAL_TICK_RATIO = 0.6  # the tick after such a gap, at least this far behind it, confirms the loss


class InputRouter:
    """Routes non-note input; ``route`` returns False for what the listener should take."""

    def __init__(self, *, clock, player, commands, counts, log: Callable[[str], None]) -> None:
        self.clock = clock
        self.player = player
        self.commands = commands
        self.counts = counts  # the listener's counts: ignored clock messages are counted there
        self.log = log
        self._last_tick_s: float | None = None  # arrival of the last MIDI clock tick
        self.repaired_ticks = 0  # ticks lost on the way (a starved MIDI system) and filled in
        self._pending_gap: tuple[float, int] | None = None  # (tick before a long gap, ticks it may lack)

    def route(self, t: float, message: mido.Message) -> bool:
        kind = message.type
        if kind in CLOCK_TYPES:
            self._clock(t, message)
            return True
        if kind == "control_change" and message.control != SUSTAIN_CC and message.control not in CLEARING_CCS:
            self.commands.control_change(message)
            return True
        if kind == "program_change":
            self.commands.program_change(message.program)
            return True
        return False

    def _clock(self, t: float, message: mido.Message) -> None:
        clock = self.clock
        if clock.source != "external":
            self.counts.ignored += 1
            return
        if message.type == "clock":
            self._fill_lost_ticks(t)
        clock.feed_message(message, t)
        if message.type in TRANSPORT_TYPES:
            # The song moved: what was scheduled belongs to the old position.
            player = self.player
            player.silence(t)
            if clock.running and player.playing and player.mode != "call-and-response":
                player.begin_continuous(t)
            self.log(f"external clock: {message.type}")

    def _fill_lost_ticks(self, t: float) -> None:
        """Feed the ticks a starved MIDI system dropped, so the song position does not slip.

        A gap of two to four tick periods (MIDI clock tempo never changes that
        fast between two ticks) is either lost ticks or one late tick. A late
        tick is followed by a short interval (its successor comes on time); lost
        ticks are not. So a gap is judged at the next tick: if that one came at
        a normal interval, the missing ticks are fed then (at the times they
        were due before the gap). A longer gap is a stopped clock, which the
        follower handles itself.
        """
        clock, last = self.clock, self._last_tick_s
        self._last_tick_s = t
        pending, self._pending_gap = self._pending_gap, None
        if last is None or not clock.running:
            return
        period_s = 60.0 / (clock.tempo_bpm * TICKS_PER_BEAT)
        ratio = (t - last) / period_s
        if pending is not None and ratio >= NORMAL_TICK_RATIO:
            gap_start, missing = pending
            for k in range(1, missing + 1):
                clock.feed("clock", gap_start + k * period_s)
            self.repaired_ticks += missing
        missing = round(ratio) - 1
        if ratio >= LOST_TICK_RATIO and 1 <= missing <= 3:
            self._pending_gap = (last, missing)
