"""Steering controls glide: a knob or slider moved far is followed over a beat, not in one jump.

A register pulled from C3 to C5, or a pitch temperature from 0.4 to 2, heard
in one token is a lurch; spread over ``GLIDE_BEATS`` in ``GLIDE_STEPS`` it is a
move. Which controls glide is each one's ``glide`` in the control registry
(``rtgen.controls``): the steering controls do; one whose 0 means off
(``register``, ``density``) switched to or from 0 takes effect at once, as does
everything else (weights, the fusion method, temperature: the performer's
hand is the smoothing there). Owned by the engine thread; beats are the
daemon clock's.
"""

from __future__ import annotations

from rtgen.controls import CONTROLS

GLIDED = frozenset(name for name, entry in CONTROLS.items() if entry.glide != "none")
SWITCHES = frozenset(name for name, entry in CONTROLS.items() if entry.glide == "glide-unless-0")  # 0 is "off"
GLIDE_BEATS = 1.0
GLIDE_STEPS = 8


class Glide:
    """Moves in progress, each ``(from, to, start beat)``; ``due`` says what to set now."""

    def __init__(self) -> None:
        self.moves: dict[str, tuple[float, float, float]] = {}

    def aim(self, name: str, current: float, target: float, beat: float) -> bool:
        """Start gliding ``name`` toward ``target``; False when it should be set at once instead."""
        if name not in GLIDED or current == target or (name in SWITCHES and 0 in (current, target)):
            self.moves.pop(name, None)
            return False
        self.moves[name] = (float(current), float(target), beat)
        return True

    def due(self, beat: float) -> dict[str, float]:
        """The values the gliding controls have at ``beat`` (in ``GLIDE_STEPS`` steps); finished moves end."""
        values = {}
        for name, (start, target, begun) in list(self.moves.items()):
            done = min(1.0, max(0.0, (beat - begun) / GLIDE_BEATS))
            step = int(done * GLIDE_STEPS) / GLIDE_STEPS
            values[name] = start + (target - start) * step
            if done >= 1.0:
                del self.moves[name]
        return values
