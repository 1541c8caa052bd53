"""Expression: each rule alone, the shaper's guarantees (range, order, no hanging note), and expression 0."""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.controls import CONTROLS
from rtgen.encoding import EventEncoding, Note
from rtgen.engine.controls import Controls
from rtgen.live import expression as x
from rtgen.live.clock import FakeClock
from rtgen.live.expression import Meter, Performer, Shaper, express_notes
from rtgen.live.scheduler import OutputScheduler
from rtgen.live.voice import Voice
from rtgen.midi.ports import FakeOutputPort

ENC = EventEncoding()
SWING_RANGE = CONTROLS["swing"].hard


def test_metric_accents_rank_downbeat_middle_beat_then_off_beats():
    accent = [x.metric_accent(b, 4) for b in (8.0, 2.0, 1.0, 0.5, 1 / 3, 0.25)]
    assert accent == sorted(accent, reverse=True) and len(set(accent)) == len(accent)
    assert x.metric_accent(3.0, 3) == x.metric_accent(0.0, 3) + 0 and x.metric_accent(2.0, 3) == x.ACCENT_BEAT
    assert x.metric_accent(-4.0, 4) == x.ACCENT_DOWNBEAT  # bar lines before the clock's zero too


def test_the_arch_rises_to_its_peak_and_ends_softer_than_it_began():
    rising = [x.arch(i / 10, peak=0.6) for i in range(7)]
    falling = [x.arch(i / 10, peak=0.6) for i in range(6, 11)]
    assert rising == sorted(rising) and falling == sorted(falling, reverse=True)
    assert x.arch(0.6, 0.6) == x.ARCH_PEAK and x.arch(1.0) < x.arch(0.0)
    assert x.arch(0.3, peak=0.3) == x.ARCH_PEAK  # a known high point moves the peak


def test_high_notes_are_louder_up_to_a_cap():
    values = [x.high_loud(pitch, 60.0) for pitch in range(40, 90)]
    assert values == sorted(values) and values[0] == -x.HIGH_MAX and values[-1] == x.HIGH_MAX
    assert x.high_loud(60, 60.0) == 0


@pytest.mark.parametrize(("swing", "off_beat"), [(0.0, 0.5), (0.5, 2 / 3), (0.75, 0.75)])
def test_swing_moves_the_off_beat_eighth_and_keeps_the_beat(swing, off_beat):
    assert x.swung(3.5, swing) == pytest.approx(3 + off_beat)
    assert x.swung(3.0, swing) == 3.0 and x.swung(4.0, swing) == 4.0
    assert x.swung(1.25, swing, pair_beats=0.5) == pytest.approx(1 + off_beat / 2)  # sixteenths


def test_the_ritardando_grows_into_the_section_end_and_lands_on_it():
    beats = [28 + i / 8 for i in range(33)]
    late = [x.ritardando(b, 32.0, 4.0, 1.0) - b for b in beats]
    assert late[0] == 0.0 and late[-1] == 0.0  # the window's start and the section's end stay put
    assert max(late) <= x.RITARD_BEATS and late[24] > late[16] > late[8] > 0
    played = [x.ritardando(b, 32.0, 4.0, 1.0) for b in beats]
    assert all(a < b for a, b in zip(played, played[1:], strict=False))
    assert x.ritardando(30.0, 32.0, 4.0, 0.0) == 30.0 and x.ritardando(27.0, 32.0, 4.0, 1.0) == 27.0


def test_a_solo_slows_into_each_eight_bar_section_end_only():
    shaper = Shaper()
    shaper.begin(4.0, solo=True)  # sections from bar 1: ends at beats 36, 68, ...
    assert shaper.time(35.5, 1.0, 0.0) > 35.5 and shaper.time(36.0, 1.0, 0.0) == 36.0
    assert shaper.time(30.5, 1.0, 0.0) == 30.5
    shaper.begin(4.0)  # duet: no ritardando
    assert shaper.time(35.5, 1.0, 0.0) == 35.5
    shaper.hear_call([30, 40])
    shaper.begin(0.0, solo=True)
    assert shaper.performer is None  # alone, rtgen does not play at the last call's level


def test_a_solo_slows_into_the_section_end_the_engine_reports_not_into_the_grids():
    shaper = Shaper()
    shaper.begin(4.0, solo=True)
    shaper.section_end = 22.0  # the form closes at a cadence on beat 22, off the 8-bar grid
    assert shaper.time(21.5, 1.0, 0.0) > 21.5 and shaper.time(22.0, 1.0, 0.0) == 22.0
    assert shaper.time(17.5, 1.0, 0.0) == 17.5 and shaper.time(35.5, 1.0, 0.0) == 35.5
    shaper.section_end = math.inf  # a form whose close is not known yet: no ritardando anywhere
    assert shaper.time(35.5, 1.0, 0.0) == 35.5 and shaper.time(21.5, 1.0, 0.0) == 21.5
    shaper.begin(4.0, solo=True)  # a new voice: 8-bar sections again until the engine says otherwise
    assert shaper.section_end is None and shaper.time(35.5, 1.0, 0.0) > 35.5


def test_the_phrase_arch_ends_softly_on_a_known_section_end():
    def played(section_end: float | None) -> int:
        shaper = Shaper()
        shaper.begin(0.0)
        shaper.section_end = section_end
        return shaper.velocity(9.5, 60, 79, 1.0)  # beat 9.5: near the grid phrase's peak (0.59 of 16 beats)

    assert played(None) == played(math.inf) > played(10.0) + 30  # the section closes half a beat later
    assert played(30.0) == played(None)  # a close further off than a phrase leaves the grid's arch


def test_a_new_voice_starts_where_it_starts_though_the_last_one_had_planned_further():
    shaper = Shaper()
    shaper.begin(0.0, 8.0)
    assert shaper.note_on(7.5, 60, 79, 0.7, 0.0)[0] == 7.5  # planned ahead, then cancelled by a new call
    shaper.begin(4.0, 8.0)
    assert shaper.note_on(4.0, 62, 79, 0.7, 0.0)[0] == 4.0


def test_the_performer_sets_level_and_range():
    quiet, loud = Performer.from_velocities([40] * 8), Performer.from_velocities([100, 120, 80, 127, 90])
    assert quiet.level == 40 and quiet.range == x.SPREAD_LIMITS[0]
    assert loud.range > 1 and Performer.from_velocities([]) is None
    soft, hard = Shaper(), Shaper()
    soft.hear_call([40] * 8)
    hard.hear_call([110] * 8)
    soft.begin(0.0, 8.0)
    hard.begin(0.0, 8.0)
    assert hard.velocity(1.0, 60, 79, 0.7) - soft.velocity(1.0, 60, 79, 0.7) == 70


def test_duet_follows_the_performers_running_level():
    shaper = Shaper()
    for _ in range(30):
        shaper.hear(110)
    assert shaper.performer.level == pytest.approx(110) and shaper.performer.range == x.SPREAD_LIMITS[0]
    for _ in range(30):
        shaper.hear(40)
    assert shaper.performer.level == pytest.approx(40, abs=0.1)


# ---- the guarantees, over any stream ----

PITCHES = (60, 62, 64, 67, 72)
tokens = st.lists(
    st.one_of(
        st.sampled_from([ENC.note_on_id(p) for p in PITCHES]),
        st.sampled_from([ENC.off_base + p for p in PITCHES]),
        st.integers(ENC.shift_base, ENC.shift_base + 11),  # 1-12 grid steps
    ),
    max_size=150,
)
controls = st.tuples(st.floats(0.0, 1.0), st.floats(*SWING_RANGE))


@settings(max_examples=150, deadline=None)
@given(tokens, st.lists(controls, min_size=1, max_size=4), st.booleans(), st.integers(1, 127))
def test_played_velocities_stay_in_range_and_nothing_overtakes_or_hangs(stream, changes, solo, call):
    """Decoded events shaped while the controls move, then sent through the scheduler's note books."""
    clock = FakeClock(tempo_bpm=60.0)  # a beat a second
    port = FakeOutputPort(now=clock)
    scheduler = OutputScheduler(port, now=clock.now)
    voice, shaper = Voice(ENC, 0.0, None), Shaper()
    shaper.hear_call([call, 127])
    shaper.begin(0.0, solo=solo)
    last_on, on_at = float("-inf"), {}
    for i, token in enumerate(stream):
        amount, swing = changes[i * len(changes) // len(stream)]
        for beat, message in voice.advance(token, 2.0) + (voice.close(voice.position) if i == len(stream) - 1 else []):
            if message.type == "note_on":
                t, message.velocity = shaper.note_on(beat, message.note, message.velocity, amount, swing)
                assert 1 <= message.velocity <= 127 and t >= last_on
                last_on = on_at[message.note] = t
            else:
                t = shaper.note_off(beat, message.note, amount, swing)
                assert t >= on_at.pop(message.note)
            scheduler.schedule(t, message)
    clock.advance(1000.0)
    scheduler.pump()
    assert scheduler.sounding() == frozenset() and scheduler.stray_offs == 0


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 64.0), st.floats(0.0, 64.0), controls, st.booleans())
def test_timing_is_one_increasing_map(a, b, control, solo):
    shaper = Shaper(Meter(swing_beats=0.5))
    shaper.begin(0.0, solo=solo)
    amount, swing = control
    if a < b:
        assert shaper.time(a, amount, swing) < shaper.time(b, amount, swing)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(ENC) - 1), max_size=120), st.booleans())
def test_expression_zero_plays_the_decoders_events_bit_for_bit(tokens, solo):
    voice = Voice(ENC, 4.0, None)
    shaper = Shaper()
    shaper.hear_call([30, 120])
    shaper.begin(4.0, solo=solo)
    for token in tokens:
        for beat, message in voice.advance(token, 4.0):
            if message.type == "note_on":
                assert shaper.note_on(beat, message.note, message.velocity, 0.0, 0.0) == (beat, message.velocity)
            else:
                assert shaper.note_off(beat, message.note, 0.0, 0.0) == beat


def test_offline_expression_zero_returns_the_notes_and_the_default_plays():
    notes = [Note(Fraction(i, 2), 60 + (i * 5) % 12, Fraction(1, 2), 79) for i in range(64)]
    assert express_notes(notes, 0.0, 0.0) == notes
    played = express_notes(notes, Controls().expression, 0.0)
    dynamics = x.dynamics(notes, played)
    assert dynamics.deviation >= 8 and dynamics.downbeats > dynamics.beats > dynamics.off_beats
    assert (
        x.dynamics([], []).line()
        == "velocity mean 0.0, deviation 0.0; downbeats none, other beats none, off-beats none"
    )
    assert [n.pitch for n in played] == [n.pitch for n in notes]
    assert all(p.start >= n.start and p.end <= 32 for n, p in zip(notes, played, strict=True))
    late = [p.start - n.start for n, p in zip(notes, played, strict=True)]
    assert max(late[-8:]) > 0 and not any(late[:56])  # only the piece's last bar slows


def test_offline_sections_end_where_the_engines_form_closed_them():
    notes = [Note(Fraction(i, 2), 60 + (i * 5) % 12, Fraction(1, 2), 79) for i in range(80)]  # ten bars
    played = express_notes(notes, 1.0, 0.0, section_ends=[10.0, 26.0])
    late = {float(n.start) for n, p in zip(notes, played, strict=True) if p.start > n.start}
    assert {b for b in late if b < 36} == {6.5 + i / 2 for i in range(7)} | {22.5 + i / 2 for i in range(7)}
    assert max(late) > 36  # the piece's last bar slows as ever; the grid's bar 8 (28-32) does not
    soft = {float(n.start): p.velocity for n, p in zip(notes, played, strict=True)}
    plain = {float(n.start): p.velocity for n, p in zip(notes, express_notes(notes, 1.0, 0.0), strict=True)}
    assert soft[9.5] < plain[9.5] - 20  # the arch's soft end on the close at beat 10, not on the grid's phrase


def test_offline_swing_puts_off_beats_on_the_triplet_and_keeps_every_note():
    notes = [Note(Fraction(i, 2), 62, Fraction(1, 2)) for i in range(8)]
    played = express_notes(notes, 0.0, 0.5)
    assert [p.start for p in played][:4] == [0, Fraction(2, 3), 1, Fraction(5, 3)]
    assert [p.duration for p in played][:2] == [Fraction(2, 3), Fraction(1, 3)]
    assert [p.velocity for p in played] == [80] * 8


def test_offline_arch_peaks_at_the_phrases_high_note():
    notes = [Note(Fraction(i), 60 + (12 if i == 4 else 0), Fraction(1)) for i in range(16)]
    assert x.high_points(notes, Meter()) == {0: 0.25}
    played = express_notes(notes, 1.0, 0.0)
    loudest = max(played, key=lambda n: n.velocity)
    assert loudest.pitch == 72
    assert statistics.mean(n.velocity for n in played[:4]) > statistics.mean(n.velocity for n in played[12:])


def test_offline_expression_zero_writes_the_same_midi_bytes_as_the_decoded_notes():
    import io

    from rtgen.engine.offline import TICKS_PER_BEAT, midi_file

    notes = [Note(Fraction(i, 3), 60 + i % 7, Fraction(1, 3) + Fraction(i % 2, 4), 79) for i in range(48)]

    def saved(midi) -> bytes:
        buffer = io.BytesIO()
        midi.save(file=buffer)
        return buffer.getvalue()

    played = midi_file(express_notes(notes, 0.0, 0.0), 120.0, steps_per_beat=TICKS_PER_BEAT)
    assert saved(played) == saved(midi_file(notes, 120.0))
