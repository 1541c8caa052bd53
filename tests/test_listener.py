"""Listener: stamped messages to quantised phrases, pedal, gaps, length cuts, echoes and junk."""

from __future__ import annotations

from fractions import Fraction

import mido
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.errors import RtgenError
from rtgen.live.listener import Listener, ListenerConfig

BPM = 120.0  # 0.5 s a beat


def beat_at(t: float) -> float:
    return t * BPM / 60.0


def on(pitch: int, velocity: int = 80, channel: int = 0) -> mido.Message:
    return mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)


def off(pitch: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=pitch, channel=channel)


def pedal(down: bool) -> mido.Message:
    return mido.Message("control_change", control=64, value=127 if down else 0)


def make(**settings) -> Listener:
    return Listener(ListenerConfig(**settings), steps_per_beat=12, beat_at=beat_at)


def play(listener: Listener, events: list[tuple[float, mido.Message]]) -> None:
    for t, message in events:
        listener.feed(t, message)


def test_phrase_ends_after_the_gap_and_is_quantised_from_its_bar_line():
    listener = make(phrase_gap_beats=1.0)
    # beat 4.02 (bar 2) onwards, slightly late, in beats: 4, 5, 6 each one beat long
    play(listener, [(2.01, on(60)), (2.49, off(60)), (2.5, on(62)), (2.99, off(62)), (3.0, on(64)), (3.51, off(64))])
    assert listener.poll(3.9) is None  # 0.78 beats of silence
    phrase = listener.poll(4.02)
    assert phrase is not None
    assert phrase.origin_beat == 4.0
    assert [(n.start, n.pitch, n.duration) for n in phrase.notes] == [
        (Fraction(0), 60, Fraction(1)),
        (Fraction(1), 62, Fraction(1)),
        (Fraction(2), 64, Fraction(1)),
    ]
    assert phrase.end_beat == 7.0 and phrase.length_beats == 3.0
    assert listener.poll(10.0) is None and not listener.in_phrase


def test_sustain_pedal_holds_notes_until_release():
    listener = make()
    play(listener, [(0.0, pedal(True)), (0.0, on(60)), (0.25, off(60)), (1.0, pedal(False))])
    phrase = listener.poll(1.6)
    assert phrase is not None
    assert phrase.notes[0].duration == Fraction(2)  # released with the pedal at beat 2, not at 0.5


def test_restrike_under_pedal_ends_the_held_note():
    listener = make()
    heard = []
    for t, message in [(0.0, pedal(True)), (0.0, on(60)), (0.1, off(60)), (0.5, on(60)), (0.6, off(60))]:
        heard.extend(listener.feed(t, message))
    heard.extend(listener.feed(0.75, pedal(False)))
    assert [(h.on, h.beat) for h in heard] == [(True, 0.0), (False, 1.0), (True, 1.0), (False, 1.5)]
    phrase = listener.poll(5.0)
    assert [(n.start, n.duration) for n in phrase.notes] == [(0, 1), (1, Fraction(1, 2))]


def test_long_phrase_is_cut_at_max_length_and_the_held_note_carries_on():
    listener = make(max_phrase_beats=4.0)
    play(listener, [(0.0, on(60)), (1.0, on(64)), (1.75, on(67)), (1.9, off(67))])  # 60, 64 held; 67 at beat 3.5
    first = listener.poll(2.0)  # beat 4: the length cut (the last onset was half a beat ago)
    assert first is not None and first.end_beat == 4.0
    assert {(n.pitch, n.end) for n in first.notes} == {(60, 4), (64, 4), (67, Fraction(23, 6))}
    play(listener, [(2.25, on(69)), (2.5, off(60)), (2.5, off(64)), (2.75, off(69))])
    second = listener.poll(4.0)
    assert second is not None and second.origin_beat == 4.0
    assert {(n.pitch, n.start, n.duration) for n in second.notes} == {(60, 0, 1), (64, 0, 1), (69, 0.5, 1)}


def test_carried_tails_alone_are_not_a_call():
    listener = make(max_phrase_beats=4.0)
    play(listener, [(0.0, on(60)), (1.75, on(64))])
    assert listener.poll(2.0) is not None  # beat 4: the length cut carries both
    play(listener, [(2.5, off(60)), (2.5, off(64))])
    assert listener.poll(4.0) is None and not listener.in_phrase


def test_a_held_key_ends_the_phrase_when_onsets_stop_and_answers_once():
    listener = make(phrase_gap_beats=1.0, onset_gap_beats=2.0)
    play(listener, [(0.0, on(60)), (0.5, on(62)), (0.9, off(62))])  # 60 never released
    assert listener.poll(1.4) is None  # beat 2.8: 1.8 beats since the last onset
    phrase = listener.poll(1.5)  # beat 3: two beats without an onset
    assert phrase is not None and phrase.end_beat == 3.0
    assert [(n.pitch, n.end) for n in phrase.notes] == [(60, 3), (62, Fraction(11, 6))]
    assert listener.sounding == {60}  # still held, set aside
    assert all(listener.poll(t) is None for t in (3.0, 10.0, 30.0))  # no phrase of its own, ever
    heard = listener.feed(31.0, off(60))  # the late release is heard (roll, duet), in no phrase
    assert [(h.pitch, h.on) for h in heard] == [(60, False)] and listener.poll(40.0) is None


def test_a_note_held_past_the_limit_is_released():
    listener = make(stuck_note_beats=8.0, onset_gap_beats=16.0, max_phrase_beats=16.0)
    play(listener, [(0.0, on(60))])  # its note-off is lost
    assert listener.expire(3.9) == []
    heard = listener.expire(4.0)  # beat 8
    assert [(h.pitch, h.on, h.beat) for h in heard] == [(60, False, 8.0)] and listener.counts.stuck == 1
    phrase = listener.poll(4.5)  # a beat of silence after the release
    assert phrase is not None and [(n.pitch, n.duration) for n in phrase.notes] == [(60, 8)]
    assert listener.feed(5.0, off(60)) == [] and not listener.sounding


@pytest.mark.parametrize(
    "message",
    [
        mido.Message("control_change", control=123, value=0),
        mido.Message("control_change", control=120, value=0),
        mido.Message("reset"),
    ],
    ids=["all notes off", "all sound off", "reset"],
)
def test_all_notes_off_and_reset_clear_the_listener(message):
    listener = make()
    play(listener, [(0.0, on(60)), (0.1, pedal(True)), (0.2, on(64)), (0.3, off(64))])
    heard = listener.feed(0.4, message)
    assert sorted((h.pitch, h.on) for h in heard) == [(60, False), (64, False)]
    assert not listener.sounding and not listener.in_phrase and listener.counts.cleared == 1
    assert listener.poll(10.0) is None
    listener.feed(10.0, on(62))  # the pedal is up again: a release ends the note
    listener.feed(10.2, off(62))
    assert listener.poll(11.0) is not None


def test_channel_filter_and_junk_are_counted_not_heard():
    listener = make(channel=2)
    play(
        listener,
        [
            (0.0, on(60, channel=0)),
            (0.0, mido.Message("sysex", data=[1, 2, 3])),
            (0.0, off(61, channel=2)),  # note-off without note-on
            (0.0, mido.Message("pitchwheel", pitch=100, channel=2)),
            (0.0, mido.Message("control_change", control=7, value=3, channel=2)),
        ],
    )
    assert listener.counts.filtered == 1
    assert listener.counts.ignored == 4
    assert listener.counts.notes_in == 0 and listener.poll(10.0) is None


def test_echo_of_our_own_output_is_dropped():
    listener = make(echo_window_s=0.05)
    listener.remember_sent(1.0, on(72))
    listener.remember_sent(1.2, off(72))
    assert listener.feed(1.003, on(72)) == []
    assert listener.feed(1.21, off(72)) == []
    assert listener.counts.echoes == 2
    heard = listener.feed(1.5, on(72))  # same pitch long after: the performer
    assert heard and heard[0].on
    listener.remember_sent(2.0, on(75))
    assert listener.feed(2.2, on(75))  # too late for an echo


def test_config_is_checked():
    with pytest.raises(RtgenError, match="channel"):
        ListenerConfig(channel=16)
    with pytest.raises(RtgenError, match="onset_gap_beats"):
        ListenerConfig(phrase_gap_beats=2.0, onset_gap_beats=1.0, max_phrase_beats=4.0)
    with pytest.raises(RtgenError, match="stuck_note_beats"):
        ListenerConfig(stuck_note_beats=0)
    with pytest.raises(RtgenError, match="max_phrase_beats"):
        ListenerConfig(phrase_gap_beats=2.0, max_phrase_beats=1.0)


stamped_notes = st.lists(
    st.tuples(
        st.floats(0.0, 8.0, allow_nan=False),
        st.integers(40, 90),
        st.floats(0.01, 2.0, allow_nan=False),
        st.integers(1, 127),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(stamped_notes)
def test_any_playing_gives_grid_notes_that_stay_within_the_phrase(notes):
    listener = make(phrase_gap_beats=1.0, max_phrase_beats=64.0)
    events = []
    for t, pitch, length, velocity in notes:
        events.append((t, on(pitch, velocity)))
        events.append((t + length, off(pitch)))
    events.sort(key=lambda e: (e[0], e[1].type == "note_on"))
    phrases = []
    for t, message in events:
        listener.feed(t, message)
        phrase = listener.poll(t)
        if phrase:
            phrases.append(phrase)
    final = listener.poll(100.0)
    if final:
        phrases.append(final)
    assert phrases
    for phrase in phrases:
        assert phrase.origin_beat % 4 == 0
        for note in phrase.notes:
            assert (note.start * 12).denominator == 1 and (note.duration * 12).denominator == 1
            assert note.start >= 0 and note.duration > 0
            assert phrase.origin_beat + float(note.end) <= phrase.end_beat + 1e-9


def test_the_echo_filter_forgets_sends_that_never_echoed():
    listener = make(echo_window_s=0.05)
    for k in range(10_000):
        listener.remember_sent(k * 0.01, on(60 + k % 12))
    assert max(len(times) for times in listener.echo._sent.values()) <= 5  # a window's worth, not 10,000
