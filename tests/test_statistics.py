"""The music statistics behind ``rtgen eval music``, on pieces whose answers are known."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtgen.encoding import Note
from rtgen.evaluate import statistics as stats

Q = Fraction(1)


def melody(pitches, step=Q, start=Fraction(0)) -> list[Note]:
    return [Note(start + i * step, p, step) for i, p in enumerate(pitches)]


def test_a_phrase_stated_twice_repeats_and_a_wandering_line_does_not():
    phrase = [60, 62, 64, 65, 67, 65, 64, 62, 60]
    twice = melody(phrase + [p + 5 for p in phrase])  # the same intervals a fourth higher
    assert stats.repetition(twice)[0] and stats.repetition(twice)[1] > 0.3
    wandering = melody([60 + (i * i) % 13 for i in range(18)])
    assert stats.repetition(wandering) == (False, 0.0)


def test_the_line_is_the_highest_note_of_each_onset():
    chord = [Note(Fraction(0), p, Q) for p in (48, 64, 60)] + [Note(Q, 62, Q)]
    assert stats.line(chord) == [(Fraction(0), 64), (Q, 62)]


def test_inter_onset_classes_and_their_distance():
    sixteenths = melody([60] * 9, step=Fraction(1, 4))
    quarters = melody([60] * 9)
    h16, h4 = stats.ioi_histogram(sixteenths), stats.ioi_histogram(quarters)
    assert h16[stats.IOI_LABELS.index("1/16")] == 8 and h4[stats.IOI_LABELS.index("1/4")] == 8
    assert stats.tv_distance(h16, h4) == 1.0 and stats.tv_distance(h16, h16) == 0.0


@given(st.lists(st.integers(0, 50), min_size=len(stats.IOI_LABELS), max_size=len(stats.IOI_LABELS)))
def test_tv_distance_is_a_distance_between_0_and_1(counts):
    p = np.array(counts, dtype=float)
    q = p[::-1].copy()
    d = stats.tv_distance(p, q)
    assert 0.0 <= d <= 1.0 and d == pytest.approx(stats.tv_distance(q, p))


def test_a_scale_holds_its_key_and_a_modulation_does_not():
    c_major = [60, 62, 64, 65, 67, 69, 71, 72] * 2
    f_sharp_major = [66, 68, 70, 71, 73, 75, 77, 78] * 2
    assert stats.key_holds(melody(c_major * 2), 16.0) is True
    assert stats.key_holds(melody(c_major + f_sharp_major), 16.0) is False
    assert stats.key_holds(melody(c_major), 16.0) is None, "nothing in the second half"
    assert stats.key_holds(melody(c_major + f_sharp_major + c_major), 16.0, end=32.0) is False
    assert stats.in_key(melody(c_major)) == 1.0
    assert stats.in_key(melody(c_major * 3 + [61, 63])) == pytest.approx(48 / 50)


def test_a_minor_key_shares_its_relative_majors_signature():
    assert stats.signature((9, "minor")) == stats.signature((0, "major")) == 0
    assert stats.signature((7, "major")) == 1 and stats.signature((4, "minor")) == 1, "one sharp"
    assert stats.signature((5, "major")) == 11, "one flat"
    assert stats.signature((6, "major")) == stats.signature((3, "minor"))


def test_pitch_class_entropy_in_bits():
    assert stats.pitch_class_entropy(melody([60, 72, 48])) == 0.0
    assert stats.pitch_class_entropy(melody([60, 62, 64, 65])) == pytest.approx(2.0)


def test_a_primes_key_is_compared_by_signature_with_its_opening():
    d_major = [62, 64, 66, 67, 69, 71, 73, 74]
    b_minor = [71, 73, 74, 76, 78, 79, 81, 83, 71]  # the same signature as D major
    f_sharp_major = [66, 68, 70, 71, 73, 75, 77, 78]  # 6 sharps; its enharmonic G flat has 6 flats
    assert stats.prime_key_matches(melody(d_major), melody(d_major * 3))
    assert stats.prime_key_matches(melody(b_minor), melody(d_major * 3))
    assert stats.prime_key_matches(melody(f_sharp_major), melody(f_sharp_major * 3))
    assert not stats.prime_key_matches(melody(f_sharp_major), melody(d_major * 3))


def test_copy_rate_counts_eight_note_sequences_found_in_training():
    train = [melody(range(60, 72))]
    keys = stats.pitch_keys(train)
    assert stats.copy_counts(melody(range(60, 68)), keys) == (1, 1)
    assert stats.copy_counts(melody(range(40, 48)), keys) == (0, 1)
    assert stats.copy_counts(melody(range(60, 66)), keys) == (0, 0), "shorter than 8 notes: nothing to copy"
    assert stats.copy_counts(melody([*range(60, 68), 40]), keys) == (1, 2)
