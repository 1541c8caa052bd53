"""Steering beyond temperature: each control a pure function, and each moves its statistic in generated music."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.data.seeds import load_phrase
from rtgen.encoding import Note
from rtgen.engine.controls import ControlError, Controls
from rtgen.engine.offline import generate_notes
from rtgen.engine.steering import Motif, lean_within, register_weights, temper_group
from rtgen.nets.checkpoint import installed_models

masses = st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1.0)), min_size=2, max_size=40)  # probabilities


@given(masses, st.floats(0.1, 4.0))
@settings(max_examples=80, deadline=None)
def test_tempering_a_group_keeps_its_mass_and_its_zeros(values, temperature):
    before = list(values)
    temper_group(values, 0, len(values), 1.0 / temperature)
    assert math.isclose(sum(values), sum(before), rel_tol=1e-6, abs_tol=1e-9)
    assert all((a == 0) == (b == 0) for a, b in zip(before, values, strict=True))


def test_a_hotter_group_is_flatter_and_a_colder_one_sharper():
    values = [0.6, 0.3, 0.1, 5.0]  # the last token is outside the group
    hot, cold = list(values), list(values)
    temper_group(hot, 0, 3, 0.5)
    temper_group(cold, 0, 3, 2.0)
    assert hot[0] < values[0] < cold[0] and hot[2] > values[2] > cold[2] and hot[3] == cold[3] == 5.0


@given(masses, st.integers(0, 39), st.floats(0.0, 1.0))
@settings(max_examples=80, deadline=None)
def test_leaning_within_a_group_keeps_its_mass_and_respects_masks(values, index, strength):
    token = index % len(values)
    before = list(values)
    lean_within(values, 0, len(values), token, strength)
    assert math.isclose(sum(values), sum(before), rel_tol=1e-6, abs_tol=1e-9)
    if before[token] == 0:
        assert values == before
    elif sum(before) > 0:
        assert values[token] >= strength * sum(before) - 1e-9


def test_register_is_a_pull_not_a_clip():
    weights = register_weights(60, 12)
    assert weights[60] == 1.0 and weights[72] == pytest.approx(math.exp(-0.5))
    assert 0 < weights[108] < weights[84] < weights[66]


def test_the_motif_follows_the_phrase_from_rtgens_own_last_note():
    motif = Motif()
    motif.set_phrase([(0, 60), (0, 48), (6, 64), (12, 62)])  # chord then two notes: line 60 -> 64 -> 62
    assert motif.intervals == [4, -2] and motif.gaps == [6, 6]
    motif.own_onset(24, 70)
    assert motif.pitch() == 74 and motif.rest(27) == 3
    motif.own_onset(30, 74)
    assert motif.pitch() == 72 and motif.rest(36) is None


def test_steering_controls_are_checked():
    for bad in ({"density": -1}, {"register": 200}, {"register_width": 0.5}, {"pitch_temperature": 0}, {"motif": 2}):
        with pytest.raises(ControlError, match=next(iter(bad))):
            Controls(**bad)


# ---- each control moves what a listener hears: 200 notes at two settings, the shipped folk model ----

NOTES = 200


@pytest.fixture(scope="module")
def engine():
    from rtgen.engine.warm import Engine

    if "folk" not in dict(installed_models()):
        pytest.skip("the shipped folk model is not installed")
    return Engine.from_names(["folk"], device="cpu", conditional=None, seed=0)


def notes_with(engine, **controls) -> list[Note]:
    engine.set_controls(**dataclasses.asdict(Controls(weights={"folk": 1.0}, **controls)))
    notes: list[Note] = []
    bars = 16
    while len(notes) < NOTES:
        notes = generate_notes(engine, load_phrase("folk"), bars, seed=3)
        bars *= 2
    return notes[:NOTES]


def entropy(counts: Counter) -> float:
    total = sum(counts.values())
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def per_beat(notes: list[Note]) -> float:
    return len(notes) / float(max(n.start for n in notes) - min(n.start for n in notes))


def onset_gaps(notes: list[Note]) -> Counter:
    starts = sorted({n.start for n in notes})
    return Counter(b - a for a, b in zip(starts, starts[1:], strict=False))


def test_density_moves_notes_a_beat(engine):
    sparse, dense = per_beat(notes_with(engine, density=0.5)), per_beat(notes_with(engine, density=4.0))
    print(f"density 0.5 -> {sparse:.2f} notes a beat, 4.0 -> {dense:.2f}")
    assert sparse < 0.85 and dense > 2.0  # the models alone: 0.93


def test_register_moves_the_mean_pitch(engine):
    low, free, high = (sum(n.pitch for n in notes_with(engine, register=r)) / NOTES for r in (55, 0, 79))
    print(f"register 55 -> mean pitch {low:.1f}, off -> {free:.1f}, 79 -> {high:.1f} (width 12)")
    assert low < free - 2 and high > free + 2 and high - low > 5


def test_pitch_and_rhythm_temperature_move_their_own_entropy(engine):
    cold = notes_with(engine, pitch_temperature=0.4, rhythm_temperature=0.4)
    hot_pitch = notes_with(engine, pitch_temperature=2.0, rhythm_temperature=0.4)
    hot_rhythm = notes_with(engine, pitch_temperature=0.4, rhythm_temperature=2.0)

    def pitch_entropy(notes):
        return entropy(Counter(n.pitch for n in notes))

    print(
        f"pitch entropy {pitch_entropy(cold):.2f} -> {pitch_entropy(hot_pitch):.2f} bits; "
        f"rhythm entropy {entropy(onset_gaps(cold)):.2f} -> {entropy(onset_gaps(hot_rhythm)):.2f} bits"
    )
    assert pitch_entropy(hot_pitch) > pitch_entropy(cold) + 0.3
    assert entropy(onset_gaps(hot_rhythm)) > entropy(onset_gaps(cold)) + 0.3


def test_motif_reuses_the_calls_intervals(engine):
    call = load_phrase("folk")
    steps = sorted({n.start for n in call})
    line = [max(n.pitch for n in call if n.start == s) for s in steps]
    wanted = Counter(b - a for a, b in zip(line, line[1:], strict=False))

    def overlap(notes: list[Note]) -> float:
        starts = sorted({n.start for n in notes})
        top = [max(n.pitch for n in notes if n.start == s) for s in starts]
        intervals = Counter(b - a for a, b in zip(top, top[1:], strict=False))
        return sum(min(intervals[i], wanted[i] * 100) for i in wanted) / sum(intervals.values())

    free, varied = overlap(notes_with(engine, motif=0.0)), overlap(notes_with(engine, motif=0.9))
    print(f"share of intervals that are the call's: motif 0 -> {free:.2f}, 0.9 -> {varied:.2f}")
    assert varied > free + 0.15
