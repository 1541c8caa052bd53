"""MIDI's numbers that rtgen's rules rest on, and the panic sequence: defined here once.

Pure mido, no ports: the listener, the scheduler, the recorder and the guard
all import from here, so "sustain", "all notes off" and "panic" mean one thing.
"""

from __future__ import annotations

from collections.abc import Iterable

import mido

SUSTAIN_CC = 64  # the sustain pedal
PEDAL_DOWN = 64  # a pedal value at or above this is down
ALL_SOUND_OFF_CC = 120
ALL_NOTES_OFF_CC = 123
PANIC_CONTROLS = (SUSTAIN_CC, ALL_NOTES_OFF_CC, ALL_SOUND_OFF_CC)  # pedal up first, so no note is held after
CHANNELS = range(16)


def panic_messages(channels: Iterable[int] = CHANNELS) -> list[mido.Message]:
    """Sustain pedal up (CC64=0), all notes off (CC123), all sound off (CC120), per channel."""
    return [
        mido.Message("control_change", channel=channel, control=control, value=0)
        for channel in channels
        for control in PANIC_CONTROLS
    ]
