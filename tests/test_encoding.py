"""The encodings: exact round trips on the grid, and valid MIDI from any token sequence."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.data.chords import ChordEncoding
from rtgen.data.timestep import TimeStepEncoding
from rtgen.data.vocabulary import encoding_from_json, make_encoding
from rtgen.encoding import Encoding, EncodingError, EventEncoding, Note, check_same_vocabulary, quantise

EVENT = EventEncoding()
TIMESTEP = TimeStepEncoding()


def grid_notes(steps_per_beat: int, max_steps: int = 400):
    """Notes whose onsets and lengths lie on the grid, velocities anywhere in 1-127."""
    return st.builds(
        lambda on, length, pitch, velocity: Note(
            Fraction(on, steps_per_beat), pitch, Fraction(length, steps_per_beat), velocity
        ),
        st.integers(0, max_steps),
        st.integers(1, 4 * steps_per_beat * 3),
        st.integers(0, 127),
        st.integers(1, 127),
    )


@given(st.lists(grid_notes(12), max_size=40))
def test_event_round_trip_with_chords_and_overlaps(notes):
    expected = EVENT.canonical(notes)
    assert EVENT.decode(EVENT.encode(notes)) == expected
    assert EVENT.decode(EVENT.encode(expected)) == expected


@given(st.lists(grid_notes(12), max_size=40))
def test_canonical_notes_without_same_pitch_overlap_are_unchanged(notes):
    """On the grid, at a bin's velocity, and no same-pitch overlap: nothing changes at all."""
    kept, last_end = [], {}
    for note in sorted(notes):
        if note.start >= last_end.get(note.pitch, -1):
            kept.append(Note(note.start, note.pitch, note.duration, EVENT.quantise_velocity(note.velocity)))
            last_end[note.pitch] = note.end
    assert EVENT.decode(EVENT.encode(kept)) == sorted(kept)


@given(st.lists(st.tuples(st.integers(0, 8), st.integers(1, 16), st.integers(0, 127)), max_size=40))
def test_timestep_round_trip_for_monophonic_lines(gaps_lengths_pitches):
    notes, now = [], 0
    for gap, length, pitch in gaps_lengths_pitches:
        now += gap
        notes.append(Note(Fraction(now, 4), pitch, Fraction(length, 4)))
        now += length
    assert TIMESTEP.decode(TIMESTEP.encode(notes)) == notes


def assert_valid_midi(decoder, tokens):
    """No orphan note-off, no double note-on, time never goes back, everything closed at the end."""
    sounding: set[int] = set()
    last_beat = Fraction(0)
    events = [e for t in tokens for e in decoder.feed(t)] + decoder.close_all()
    for event in events:
        assert event.beat >= last_beat
        last_beat = event.beat
        if event.on:
            assert event.pitch not in sounding
            assert 1 <= event.velocity <= 127
            sounding.add(event.pitch)
        else:
            assert event.pitch in sounding
            sounding.remove(event.pitch)
    assert not sounding
    assert not decoder.sounding


@settings(max_examples=300)
@given(st.lists(st.integers(0, len(EVENT) - 1), max_size=300))
def test_event_decoder_makes_valid_midi_from_any_tokens(tokens):
    assert_valid_midi(EVENT.decoder(), tokens)


@settings(max_examples=300)
@given(st.lists(st.integers(0, len(TIMESTEP) - 1), max_size=300))
def test_timestep_decoder_makes_valid_midi_from_any_tokens(tokens):
    assert_valid_midi(TIMESTEP.decoder(), tokens)


def test_event_vocabulary_is_fixed_and_covers_sixteenths_and_triplets():
    assert len(EVENT) == 2 + 128 + 128 + 48 + 32
    assert EVENT.steps_per_beat % 4 == 0 and EVENT.steps_per_beat % 3 == 0
    triplet = Note(Fraction(1, 3), 60, Fraction(1, 3))
    sixteenth = Note(Fraction(3, 4), 62, Fraction(1, 4))
    assert EVENT.decode(EVENT.encode([triplet, sixteenth])) == EVENT.canonical([triplet, sixteenth])


def test_long_gaps_become_several_shifts():
    tokens = EVENT.encode([Note(Fraction(9), 60, Fraction(1))])
    shifts = [EVENT.tokens[t] for t in tokens if EVENT.tokens[t].startswith("SHIFT")]
    assert shifts == ["SHIFT_48", "SHIFT_48", "SHIFT_12", "SHIFT_12"]


def test_repeated_pitch_is_restruck_not_merged():
    notes = [Note(Fraction(0), 64, Fraction(1)), Note(Fraction(1), 64, Fraction(1))]
    assert EVENT.decode(EVENT.encode(notes)) == EVENT.canonical(notes)
    assert TIMESTEP.decode(TIMESTEP.encode(notes)) == notes


def test_quantise_rounds_to_nearest_step_and_keeps_one_step_minimum():
    (note,) = quantise([Note(Fraction(1, 25), 60, Fraction(1, 100))], 12)
    assert note.start == 0 and note.duration == Fraction(1, 12)


def test_quantise_cuts_same_pitch_overlap_at_the_later_onset():
    first, second = quantise([Note(Fraction(0), 60, Fraction(2)), Note(Fraction(1), 60, Fraction(2))], 12)
    assert (first.start, first.end, second.start, second.end) == (0, 1, 1, 3)


def test_timestep_refuses_polyphony():
    with pytest.raises(EncodingError, match="monophonic"):
        TIMESTEP.encode([Note(Fraction(0), 60, Fraction(1)), Note(Fraction(0), 64, Fraction(1))])


def test_note_checks_its_ranges():
    with pytest.raises(EncodingError):
        Note(Fraction(0), 128, Fraction(1))
    with pytest.raises(EncodingError):
        Note(Fraction(0), 60, Fraction(0))


def a_chord_encoding() -> ChordEncoding:
    """A chord vocabulary that keeps C major (two lengths) and the single notes of a C major scale."""
    enc = ChordEncoding(min_count=1)
    return enc.with_counts({((60, 64, 67), 6): 1, ((60, 64, 67), 12): 1, **{((p,), 6): 1 for p in (60, 62, 64, 67)}})


@pytest.mark.parametrize("encoding", [EVENT, TIMESTEP, a_chord_encoding()], ids=lambda e: e.name)
def test_every_encoding_offers_the_declared_interface_and_its_answers_agree(encoding):
    assert isinstance(encoding, Encoding) and encoding.fitted
    assert make_encoding(encoding.name).name == encoding.name
    for pitch in (60, 64, 67):
        starting = encoding.pitch_tokens(pitch)
        assert starting and all(encoding.is_note_on(t) and encoding.note_count(t) >= 1 for t in starting)
        assert all(pitch in {e.pitch for e in encoding.decoder().feed(t) if e.on} for t in starting)
    assert [encoding.note_count(t) for t in (encoding.pad_id, encoding.sep_id)] == [0, 0]
    decoder = encoding.decoder()
    started = [e for t in encoding.shift_tokens(5) for e in decoder.feed(t) if e.on]
    assert started == [] and decoder.beat == Fraction(5, encoding.steps_per_beat)
    assert [encoding.transposed_id(t, 0) for t in range(len(encoding))] == list(range(len(encoding)))


@pytest.mark.parametrize("encoding", [EVENT, TIMESTEP], ids=lambda e: e.name)
def test_a_fixed_vocabulary_transposes_token_by_token_and_leaves_a_pitch_pushed_out_of_range(encoding):
    notes = [Note(Fraction(0), 60, Fraction(1, 2)), Note(Fraction(1, 2), 64, Fraction(1, 2))]
    moved = [encoding.transposed_id(t, 3) for t in encoding.encode(notes)]
    assert [n.pitch for n in encoding.decode(moved)] == [63, 67]
    top = encoding.pitch_tokens(127)[0]
    assert encoding.transposed_id(top, 1) == top


def test_vocabulary_json_round_trips_and_mismatches_are_named(tmp_path):
    for encoding in (EVENT, TIMESTEP):
        path = tmp_path / f"{encoding.name}.json"
        path.write_text(json.dumps(encoding.to_json()))
        assert encoding_from_json(json.loads(path.read_text())).to_json() == encoding.to_json()
    with pytest.raises(EncodingError, match="name"):
        check_same_vocabulary(EVENT.to_json(), TIMESTEP.to_json())
    with pytest.raises(EncodingError, match="steps_per_beat"):
        check_same_vocabulary(EVENT.to_json(), EventEncoding(steps_per_beat=24).to_json())


def test_decoder_refuses_tokens_outside_the_vocabulary():
    with pytest.raises(EncodingError, match="outside"):
        EVENT.decoder().feed(len(EVENT))
