"""Voice: generated tokens to closed, bounded note messages on absolute beats."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.data.timestep import TimeStepEncoding
from rtgen.encoding import EventEncoding
from rtgen.live.listener import Heard
from rtgen.live.voice import Voice

ENC = EventEncoding()


def shift(steps: int) -> int:
    return ENC.shift_base + steps - 1


def run(voice: Voice, tokens: list[int], max_note_beats: float = 4.0) -> list[tuple[float, str, int]]:
    out = []
    for token in tokens:
        out += [(beat, m.type, m.note) for beat, m in voice.advance(token, max_note_beats)]
    return out


def test_leading_silence_is_skipped_so_the_first_note_lands_on_the_start():
    voice = Voice(ENC, start_beat=8.0, end_beat=None)
    events = run(voice, [shift(6), ENC.note_on_id(60), shift(12), ENC.off_base + 60])
    assert events == [(8.0, "note_on", 60), (9.0, "note_off", 60)]


def test_a_time_step_voices_first_note_lands_on_the_start_too():
    """A time-step token's note begins a step before the decoder's time: the first note is still on the start."""
    enc = TimeStepEncoding()
    voice = Voice(enc, start_beat=8.0, end_beat=None)
    (pitch,) = enc.pitch_tokens(60)
    events = run(voice, [enc.rest_id, enc.rest_id, pitch, enc.hold_id, enc.hold_id, enc.hold_id, enc.rest_id])
    assert events == [(8.0, "note_on", 60), (9.0, "note_off", 60)]


def test_answer_end_closes_notes_and_refuses_later_ones():
    voice = Voice(ENC, start_beat=0.0, end_beat=2.0)
    events = run(voice, [ENC.note_on_id(60), shift(12), ENC.note_on_id(64), shift(24), ENC.note_on_id(67)])
    assert events == [(0.0, "note_on", 60), (1.0, "note_on", 64), (2.0, "note_off", 60), (2.0, "note_off", 64)]
    assert voice.finished


def test_long_notes_are_cut_at_max_note_beats_and_the_late_off_is_dropped():
    voice = Voice(ENC, start_beat=0.0, end_beat=None)
    events = run(voice, [ENC.note_on_id(60), shift(48), shift(12), ENC.off_base + 60], max_note_beats=2.0)
    assert events == [(0.0, "note_on", 60), (2.0, "note_off", 60)]


def test_catch_up_moves_by_whole_steps():
    voice = Voice(ENC, start_beat=4.0, end_beat=8.0)
    run(voice, [ENC.note_on_id(60), shift(3)])
    assert not voice.catch_up(4.2)
    assert voice.catch_up(4.3)
    assert voice.position == 4.25 + 1 / 12 and voice.end_beat == 8.0 + 1 / 12


def test_duet_steering_feeds_the_models_and_keeps_one_timeline():
    class Engine:
        fed: list[int] = []

        def feed(self, tokens, *, performer=False):
            assert performer
            self.fed.extend(tokens)

    engine = Engine()
    voice = Voice(ENC, start_beat=0.0, end_beat=None)
    run(voice, [ENC.note_on_id(60), shift(6)])
    voice.steer(Heard(0.0, 1.0, 67, 90, True), engine)  # the stream is half a beat behind the note
    assert engine.fed == [shift(6), ENC.note_on_id(67), ENC.off_base + 67]  # the onset, never a held note
    voice.steer(Heard(0.5, 1.5, 67, 0, False), engine)  # a release: the models never hear it
    assert len(engine.fed) == 3
    assert voice.position == 1.0
    assert TimeStepEncoding().shift_tokens(3) == [2, 2, 2]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(2, len(ENC) - 1), min_size=1, max_size=200),
    st.one_of(st.none(), st.floats(0.5, 8.0)),
    st.floats(0.25, 4.0),
)
def test_any_token_stream_gives_every_note_on_its_note_off(tokens, length, max_note_beats):
    voice = Voice(ENC, start_beat=4.0, end_beat=None if length is None else 4.0 + length)
    events = []
    for token in tokens:
        if voice.finished:
            break
        events += voice.advance(token, max_note_beats)
    if not voice.finished:
        events += voice.close(voice.position)
    sounding: dict[int, float] = {}
    for beat, message in events:
        assert beat >= 4.0
        if message.type == "note_on":
            assert message.note not in sounding
            sounding[message.note] = beat
            if length is not None:
                assert beat < 4.0 + length
        else:
            on = sounding.pop(message.note)
            assert on <= beat <= on + max_note_beats + 1e-9
    assert not sounding
