"""DensityHold: the performer's notes change what rtgen plays, not how much (pure logic)."""

from __future__ import annotations

from rtgen.engine.density import HOLD_BEATS, MAX_FACTOR, DensityHold, scale_range, shift_cap_steps


def held_at_two_a_beat() -> DensityHold:
    hold = DensityHold()
    for k in range(16):  # rtgen alone: two notes a beat for 8 beats
        hold.own_onset(k / 2)
    hold.performer_onset(8.0)
    return hold


def test_no_performer_no_change():
    hold = DensityHold()
    hold.own_onset(0.5)
    assert hold.factor(1.0) == 1.0 and hold.target(1.0) is None


def test_rtgen_falling_silent_under_a_performer_is_boosted_and_a_steady_rate_is_left_alone():
    hold = held_at_two_a_beat()
    assert hold.rate(8.0) == 1.75 and hold.factor(8.0) == 1.0  # still at its own rate (beats 4-8 hold 7 onsets)
    assert hold.factor(11.0) > 4.0 and hold.target(11.0) == 1.75  # three beats without a note of its own
    assert hold.factor(12.0) == MAX_FACTOR  # none in the window at all
    assert hold.factor(8.0 + HOLD_BEATS + 0.1) == 1.0  # the performer stopped: the hold ends


def test_rtgen_racing_ahead_is_held_back():
    hold = held_at_two_a_beat()
    for k in range(24):
        hold.own_onset(8.0 + k / 8)  # eight a beat
    assert hold.factor(10.9) < 1.0


def test_a_new_entry_holds_the_rate_of_its_own_moment():
    hold = held_at_two_a_beat()
    hold.performer_onset(20.0)  # the performer comes back after rtgen played nothing for 12 beats
    assert hold.target(20.0) == 0.0 and hold.factor(20.0) == 1.0  # 0 a beat is held: nothing to raise


def test_shift_cap_and_scaling():
    assert shift_cap_steps(2.0, 12) == 12  # two intervals of half a beat
    assert shift_cap_steps(30.0, 12) == 1
    assert shift_cap_steps(0.5, 12) == 48
    values = [1.0, 0.0, 2.0, 3.0]
    scale_range(values, 1, 3, 4.0)
    assert values == [1.0, 0.0, 8.0, 3.0]
