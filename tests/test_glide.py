"""Steering controls glide over a beat; switches and everything else jump."""

from __future__ import annotations

from rtgen.daemon.glide import GLIDE_BEATS, GLIDE_STEPS, Glide


def test_a_glide_moves_in_steps_over_a_beat_and_ends():
    glide = Glide()
    assert glide.aim("register", 60, 72, beat=10.0)
    assert glide.due(10.0) == {"register": 60.0}
    assert glide.due(10.0 + GLIDE_BEATS / 2) == {"register": 66.0}
    assert glide.due(10.0 + GLIDE_BEATS / GLIDE_STEPS * 3.5) == {"register": 60 + 12 * 3 / GLIDE_STEPS}
    assert glide.due(11.5) == {"register": 72.0} and glide.due(12.0) == {}


def test_switching_on_or_off_and_other_controls_do_not_glide():
    glide = Glide()
    assert not glide.aim("register", 0, 72, beat=0.0)  # switched on: at once
    assert not glide.aim("density", 2.0, 0.0, beat=0.0)  # switched off: at once
    assert not glide.aim("temperature", 0.5, 1.5, beat=0.0)  # the performer's hand is the smoothing
    assert glide.aim("motif", 0.0, 0.8, beat=0.0) and glide.aim("motif", 0.4, 0.4, beat=0.5) is False
    assert glide.due(2.0) == {}  # a move to where it already is cancels the glide
