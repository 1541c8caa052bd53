"""Sections composed: cadences close them, restatements vary, the form profile and the real seed openings."""

from __future__ import annotations

import math
import statistics
from fractions import Fraction

import numpy as np
import pytest

from rtgen.data.profile import FormProfile
from rtgen.encoding import EventEncoding, Note
from rtgen.engine.restating import restatement, varied_share
from rtgen.engine.sections import HOLD_BOOST, OVER_BARS, SECTION_BARS, SEEK_BOOST, Sections, is_arrival

C_MAJOR = (0, "major")


def sections(restate: float = 1.0, variation: float = 0.5, literal: float = 0.5, draws=None) -> Sections:
    values = iter(draws or [])
    form = Sections(EventEncoding(), lambda: next(values, 0.0))
    form.set_form(FormProfile(restate=restate, literal=literal), variation)
    form.set_key(C_MAJOR)
    return form


def test_an_arrival_is_a_tonic_or_dominant_chord_struck_together():
    assert is_arrival([60], C_MAJOR) and is_arrival([67], C_MAJOR) and is_arrival([71], C_MAJOR)
    assert not is_arrival([65], C_MAJOR) and not is_arrival([69], C_MAJOR)  # F, A: neither triad
    assert is_arrival([48, 64, 67, 72], C_MAJOR)  # I
    assert is_arrival([43, 62, 65, 71], C_MAJOR)  # V7: bass and top of V, three of four notes
    assert not is_arrival([48, 65, 69, 72], C_MAJOR)  # IV
    assert not is_arrival([60, 64, 67, 69], C_MAJOR)  # the top note A is not of the tonic triad
    assert is_arrival([57, 64, 69], (9, "minor")) and is_arrival([56, 64, 71], (9, "minor"))  # i, V (G#) in A minor


def test_a_section_closes_at_the_bar_line_after_an_arrival_on_a_strong_beat_of_its_last_bar():
    form = sections()
    form.mark(0, 0, C_MAJOR)
    bar = form.bar_steps
    last = (SECTION_BARS - 1) * bar
    form.onset(bar, 60)  # a tonic early on: the section is not over yet
    assert form.closes(bar + 6, False) is None
    form.onset(last + 6, 60)  # off the beat: no arrival
    form.onset(last + bar // 4, 60)  # beat 2: weak
    assert form.closes(last + bar // 2 - 1, False) is None
    form.onset(last + bar // 2, 67)  # beat 3 of the last bar, the dominant's root
    assert form.closes(last + bar // 2 + 1, False) is None  # it sounds on to the bar line
    assert form.room(last + bar // 2 + 1) == bar // 2 - 1  # and no shift may cross it
    assert form.closes(SECTION_BARS * bar, False) == "cadence"


def test_a_strong_beat_struck_after_an_arrival_takes_the_close_back():
    form = sections()
    form.mark(0, 0, C_MAJOR)
    bar = form.bar_steps
    last = (SECTION_BARS - 1) * bar
    form.onset(last, 60)  # the downbeat of the last bar: an arrival
    form.onset(last + 6, 62)
    assert form.closes(last + 7, False) is None and form.close_at == SECTION_BARS * bar
    form.onset(last + bar // 2, 65)  # beat 3: F, struck before the close
    assert form.closes(last + bar // 2 + 1, False) is None and form.close_at is None  # the search goes on


def test_a_section_without_an_arrival_is_boosted_toward_one_then_cut_at_the_cap():
    form = sections()
    form.mark(0, 0, C_MAJOR)
    bar = form.bar_steps
    on = form.encoding.note_on_id
    values = [1.0] * len(form.encoding)
    form.steer(values, SECTION_BARS * bar - bar // 2)  # within its length, the key held: no boost
    assert set(values) == {1.0}
    form.steer(values, SECTION_BARS * bar)  # past it, on a downbeat: the tonic and dominant chords
    assert values[on(60)] == values[on(71)] == SEEK_BOOST and values[on(65)] == 1.0
    for step in range(bar, (SECTION_BARS + OVER_BARS) * bar, bar // 4):
        form.onset(step, 65)  # F on every beat: never an arrival
        assert form.closes(step + 1, False) is None
    assert form.closes((SECTION_BARS + OVER_BARS) * bar, False) == "cap"


def test_strong_beats_lean_to_the_tonic_triad_only_while_it_sounds_there_less_than_in_the_genre():
    form = sections()
    form.onset(0, 65)  # before any section: not counted
    form.mark(0, 0, C_MAJOR)
    bar, on = form.bar_steps, form.encoding.note_on_id
    held = form.tonic
    for step in (1, bar // 4, 3 * bar // 4):
        form.onset(step, 65)  # off the beat, beats 2 and 4: not counted
    assert form.tonic == held == form.profile.tonic_beats
    for k in range(1, 5):
        form.onset(k * bar, 65)  # F on four downbeats: the key drifts toward the subdominant
    assert form.tonic < form.profile.tonic_beats
    values = [1.0] * len(form.encoding)
    form.steer(values, 5 * bar - 1)  # off the beat: nothing
    assert set(values) == {1.0}
    form.steer(values, 5 * bar)
    assert values[on(60)] == values[on(64)] == values[on(67)] == HOLD_BOOST and values[on(65)] == 1.0
    for k in range(5, 7):
        form.onset(k * bar, 60)
        form.onset(k * bar + bar // 2, 67)
    values = [1.0] * len(form.encoding)
    form.steer(values, 7 * bar)  # four tonic strong beats later the share is back: the models choose again
    assert form.tonic >= form.profile.tonic_beats and set(values) == {1.0}
    form.onset(7 * bar, 65)
    form.begin([60, 64])  # primed afresh: the key is taken as held
    assert form.tonic == form.profile.tonic_beats


def test_the_models_ending_starts_the_search_for_an_arrival_at_once():
    form = sections()
    form.mark(0, 0, C_MAJOR)
    bar = form.bar_steps
    assert form.closes(bar // 2, True) is None  # never in a section's first bar
    assert form.closes(3 * bar + 6, True) is None  # SEP sampled in bar 4: look from here on
    form.onset(4 * bar, 64)
    assert form.closes(4 * bar + 1, False) is None and form.closes(5 * bar, False) == "cadence"
    form.end([], 5 * bar, "cadence")
    assert form.ends == [(20.0, "cadence")]  # beats from the first section's start


def section_tokens(enc, bars: int) -> list[int]:
    """A line of quarter notes, a different pitch on every beat."""
    tokens = []
    for beat in range(4 * bars):
        tokens += [enc.note_on_id(48 + beat), *enc.shift_tokens(12), enc.off_base + 48 + beat]
    return tokens


def played(form: Sections, first: int | None, values: list[float] | None = None) -> list[int]:
    """The queue as the engine plays it: re-sampled notes chosen from ``values`` (flat: any near pitch)."""
    out = [] if first is None else [first]
    while form.queue:
        token, replaced = form.queued()
        out.append(token if replaced is None else form.vary(values, replaced, 0.99))
    return out


def test_variation_0_restates_the_section_note_for_note():
    form = sections(variation=0.0)
    enc, bars = form.encoding, 4
    form.mark(0, 0, C_MAJOR)
    section = section_tokens(enc, bars)
    stream = played(form, form.end(section, bars * form.bar_steps, "cadence"))
    assert stream == [enc.sep_id, *section] and not form.ending_pending


def test_variation_1_resamples_every_bar_near_its_notes_and_leaves_the_last_to_a_second_ending():
    form = sections(variation=1.0)
    enc, bars = form.encoding, 4
    form.mark(0, 0, C_MAJOR)
    section = section_tokens(enc, bars)
    values = [1.0] * len(enc)
    stream = played(form, form.end(section, bars * form.bar_steps, "cadence"), values)
    decoder = enc.decoder(collect_notes=True)
    for token in stream:
        decoder.feed(token)
    notes = decoder.notes
    original = enc.decode(section)
    assert len(notes) == 4 * (bars - 1)  # the last bar is the second ending's, sampled later
    assert [n.start for n in notes] == [n.start for n in original[: len(notes)]]  # the rhythm is kept
    assert all(abs(a.pitch - b.pitch) <= 4 for a, b in zip(notes, original, strict=False))  # near the original
    assert [n.pitch for n in notes] != [n.pitch for n in original[: len(notes)]]
    assert form.ending_pending
    assert form.mark(len(stream), (bars - 1) * form.bar_steps, C_MAJOR) is False  # the second ending: not a new section
    assert form.room((bars - 1) * form.bar_steps) == form.bar_steps


def test_the_varied_share_is_the_genres_own_at_half_variation():
    assert varied_share(0.0, 0.6) == 0.0 and varied_share(1.0, 0.6) == 1.0
    assert varied_share(0.5, 0.6) == pytest.approx(0.4)
    assert varied_share(0.25, 0.6) < varied_share(0.5, 0.6) < varied_share(0.75, 0.6)


def test_a_through_composed_genre_goes_on_without_sep_and_a_restated_a_comes_back_after_b():
    enc = EventEncoding()
    form = sections(restate=0.0)
    form.mark(0, 0, C_MAJOR)
    assert form.end(section_tokens(enc, 4), 4 * form.bar_steps, "cadence") is None  # no SEP, nothing queued
    assert form.mark(10, 4 * form.bar_steps, C_MAJOR) and form.departure == 0.0

    form = sections(restate=1.0, variation=0.0)
    form.mark(0, 0, C_MAJOR)
    a = section_tokens(enc, 4)
    played(form, form.end(a, 4 * form.bar_steps, "cadence"))  # A A
    assert form.mark(100, 8 * form.bar_steps, C_MAJOR) and form.departure > 60  # B departs from A's register
    assert played(form, form.end(section_tokens(enc, 2), 10 * form.bar_steps, "cadence")) == [enc.sep_id, *a]
    assert form.mark(200, 14 * form.bar_steps, C_MAJOR) and form.departure == 0.0  # after A's return: afresh


def test_a_new_section_keeps_the_register_the_stream_is_in_as_wide_as_its_genres_spread():
    enc = EventEncoding()
    form = sections(restate=0.0)
    form.set_form(FormProfile(restate=0.0, spread=3.0), 0.5)
    form.mark(0, 0, C_MAJOR)
    assert not form.leaning and (form.pull == 1.0).all()  # nothing heard yet: no register to keep
    form.end(section_tokens(enc, 4), 4 * form.bar_steps, "cadence")
    form.begin([60, 64, 68])  # a call around E4
    form.mark(10, 4 * form.bar_steps, C_MAJOR)
    on = form.pull  # a weight a note-on pitch
    assert form.leaning and on[64] == pytest.approx(1.0) and on[64 + 6] == pytest.approx(math.exp(-0.5))
    assert on[64 + 12] < 0.2  # 2 spreads wide: 6 semitones is one deviation
    for step in range(64):
        form.onset(4 * form.bar_steps + step, 76)  # the stream moved up: the next section keeps the new register
    form.end(section_tokens(enc, 4), 8 * form.bar_steps, "cadence")
    form.mark(20, 8 * form.bar_steps, C_MAJOR)
    assert form.pull[76] > 0.9 > form.pull[64]
    ons = np.full(128, 0.5 / 128)  # half the mass on note-ons, spread evenly
    form.lean(ons)
    assert ons.sum() == pytest.approx(0.5) and ons[76] > 10 * ons[50]  # moved between pitches, none to rests


def test_a_bar_states_an_earlier_bar_of_its_section_again_with_its_genres_odds():
    """``FormProfile.echoes``: bar 2 (from 0) states bar 0 again in every span, no other bar any. Time stops at its
    bar line; there bar 0 is queued as it was (variation 0) with no SEP, and the section goes on after it."""
    from rtgen.engine.closes import close_step
    from rtgen.engine.form import Lookback

    echoes = [0.0] * (SECTION_BARS * (SECTION_BARS - 1) // 2)
    echoes[2 * 1 // 2 + 0] = 1.0
    form = Sections(EventEncoding(), lambda: 0.5)
    form.set_form(FormProfile(echoes=tuple(echoes)), 0.0)
    enc, bar = form.encoding, form.bar_steps
    form.mark(0, 0, C_MAJOR)
    assert form.echoes == [(2, 0)] and form.room(bar + 5) == bar - 5
    lookback = Lookback()
    section = section_tokens(enc, 2)
    lookback.extend(section)
    values = [1.0] * len(enc)
    assert form.close(values, 2 * bar - 1, False, lookback) is None  # not yet at its bar line
    stream = played(form, form.close(values, 2 * bar, False, lookback))
    assert stream == section[: len(section) // 2] and form.start == 0 and not form.echoes
    assert close_step(form, 3 * bar, 0) is None  # an echo closes nothing: the section is still open


def test_an_echo_under_way_goes_on_to_the_next_bar_with_the_genres_odds():
    """A phrase comes back, not one bar of it: bar 4 begins an echo of bar 0 (share 1), and with lag 4's
    ``echo_runs`` 1 bars 5-7 state bars 1-3 again; with it 0 bar 4 alone does, whatever the other lags' odds."""
    echoes = [0.0] * (SECTION_BARS * (SECTION_BARS - 1) // 2)
    echoes[4 * 3 // 2 + 0] = 1.0
    for run, plan in ((1.0, [(7, 3), (6, 2), (5, 1), (4, 0)]), (0.0, [(4, 0)])):
        form = Sections(EventEncoding(), lambda: 0.5)
        runs = tuple(run if lag == 4 else 1 - run for lag in range(1, SECTION_BARS - 1))
        form.set_form(FormProfile(echoes=tuple(echoes), echo_runs=runs), 0.5)
        form.mark(0, 0, C_MAJOR)
        assert form.echoes == plan


def test_the_form_profile_counts_the_bars_that_state_an_earlier_bar_of_their_span_again():
    from rtgen.evaluate.form import echo_shares, echo_sources

    def bars(pitches: list[int]) -> list[Note]:
        return [Note(Fraction(8 * i + k, 2), p + k, Fraction(1, 2)) for i, p in enumerate(pitches) for k in range(4)]

    strain = bars([60, 65, 60, 67, 70, 72, 70, 74])  # bar 3 states bar 1 again, bar 7 bar 5
    assert echo_sources(strain) == [[None, None, 0, None, None, None, 4, None]]
    shares, runs = echo_shares([strain, bars(list(range(60, 68)))])
    assert shares[2 * 1 // 2 + 0] == 0.5 and shares[6 * 5 // 2 + 4] == 0.5 and sum(shares) == 1.0
    assert runs == [0.0] * 6
    period = bars([60, 65, 67, 69, 60, 65, 67, 72])  # bars 5-7 state bars 1-3 again, bar 8 cadences elsewhere
    assert echo_shares([period]) == ([1.0 if k == 4 * 3 // 2 else 0.0 for k in range(28)], [0.6667] * 6)
    # lag 2 echoes never go on (0 of 2), lag 4 ones do (2 of 3): each lag's odds, pulled toward 2 of 5 overall
    runs = echo_shares([strain, period])[1]
    assert runs[2 - 1] == round(4 / 12, 4) and runs[4 - 1] == round(6 / 13, 4) and runs[0] == 0.4


def test_a_bar_that_goes_on_with_a_phrase_is_counted_so_though_it_states_a_later_bar_too():
    from rtgen.evaluate.form import echo_sources

    def bars(pitches: list[int]) -> list[Note]:
        return [Note(Fraction(8 * i + k, 2), p + k, Fraction(1, 2)) for i, p in enumerate(pitches) for k in range(4)]

    # bar 5 states bar 1 again; bar 6 states bar 4 and bar 2: it goes on with bar 5's phrase (bar 2), where the
    # latest (bar 4) would have cut the run
    assert echo_sources(bars([60, 65, 60, 69, 60, 65, 60, 74])) == [[None, None, 0, None, 2, 1, 2, None]]


def test_restatement_marks_note_ons_of_varied_bars_and_pads_to_whole_bars():
    enc = EventEncoding()
    tokens = [enc.off_base + 50, enc.note_on_id(60), *enc.shift_tokens(48), enc.off_base + 60, enc.note_on_id(62)]
    out = restatement(enc, tokens, 96, 48, {1})
    assert out[0] == (enc.note_on_id(60), False) and (enc.note_on_id(62), True) in out
    assert sum(t - enc.shift_base + 1 for t, _ in out if enc.shift_base <= t < enc.velocity_base) == 96


def test_a_varied_bar_changes_one_to_a_quarter_of_its_notes_and_every_note_at_variation_1():
    """A varied bar stays a variation of the bar it states again (at most a quarter of its notes changed, the
    measure that finds a genre's varied bars), and changes at least one; at variation 1 every note changes."""
    import random

    enc = EventEncoding()
    bar = [t for p in range(60, 68) for t in (enc.note_on_id(p), *enc.shift_tokens(6), enc.off_base + p)]
    form = Sections(enc, random.Random(0).random)
    for variation, expected in ((0.5, {1, 2}), (1.0, {8})):
        form.set_form(FormProfile(), variation)
        marked = {sum(v for _, v in restatement(enc, bar, 48, 48, {0}, form._pick_notes)) for _ in range(100)}
        assert marked == expected


def test_the_shipped_fiddle_model_composes_16_bars_that_do_not_copy_bars_1_to_8():
    """Real model, real openings: sections close on arrivals, and no piece's second half is its first again."""
    from rtgen.data.seeds import genre_opening
    from rtgen.engine.controls import Controls
    from rtgen.engine.form import FORM_CONTROLS
    from rtgen.engine.offline import generate_notes
    from rtgen.engine.warm import Engine
    from rtgen.evaluate.form import second_half_copies_first

    engine = Engine.from_names(["fiddle"], "cpu", Controls(weights={"fiddle": 1.0}, **FORM_CONTROLS))
    whys = []
    for seed in range(4):
        notes = generate_notes(engine, genre_opening("fiddle", seed), 16, seed=seed)
        assert not second_half_copies_first(notes)
        whys += [why for _, why in engine.section_ends]
    assert whys and whys.count("cadence") >= len(whys) / 2


def test_moving_the_blend_drops_a_restatement_under_way():
    """A performer who moves the genre weights hears the new blend at once, not the old section again."""
    from rtgen.engine.controls import Controls
    from rtgen.engine.warm import Engine

    engine = Engine.from_names(["folk", "fiddle"], "cpu", Controls(weights={"folk": 1.0, "fiddle": 0.0}, repeat=0.6))
    engine.reset()
    engine.prime([])
    engine._sections.set_form(FormProfile(restate=1.0), 0.5)
    while not engine._sections.queue:  # play until a section ends and is restated
        engine.step()
    engine.set_controls(temperature=0.9)
    assert engine._sections.queue  # other controls leave it playing
    engine.set_controls(weights={"folk": 0.0, "fiddle": 1.0})
    assert not engine._sections.queue and engine._sections.start is None


def test_the_form_profile_measures_how_often_and_how_literally_a_corpus_restates():
    from rtgen.evaluate.form import bar_copy_share, measure, second_half_copies_first

    def bars(pitches: list[int]) -> list[Note]:
        return [Note(Fraction(4 * i), p, Fraction(4)) for i, p in enumerate(pitches)]

    strain = bars([60, 62, 64, 65, 67, 69, 71, 72])
    tune = strain + [Note(n.start + 32, n.pitch, n.duration) for n in strain]  # A A, note for note
    through = bars(list(range(60, 76)))
    assert second_half_copies_first(tune) and not second_half_copies_first(through)
    assert bar_copy_share(tune) == pytest.approx(8 / 16) and bar_copy_share(through) == 0.0
    dance, chorale = measure([tune]), measure([through])
    assert dance["restate"] == 1.0 and dance["literal"] == 1.0 and chorale["restate"] == 0.0
    assert dance["spread"] == pytest.approx(statistics.pstdev([60, 62, 64, 65, 67, 69, 71, 72]), abs=1e-4)
    assert chorale["spread"] == pytest.approx(statistics.pstdev(range(60, 68)), abs=1e-4)  # each 8 bars apart
    # a whole note on every downbeat, in C: C, E, G and the high C sound the tonic triad; D, F, A, B do not
    assert dance["tonic_beats"] == pytest.approx(8 / 16)


def test_the_tonic_share_counts_notes_on_beats_1_and_3_in_the_key_given():
    from rtgen.evaluate.form import tonic_beat_share

    notes = [Note(Fraction(b), p, Fraction(1)) for b, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72])]
    assert tonic_beat_share(notes, C_MAJOR) == pytest.approx(3 / 4)  # C, E, G on strong beats, B not
    assert tonic_beat_share(notes, (7, "major")) == pytest.approx(2 / 4)  # in G: G and B
    assert math.isnan(tonic_beat_share([Note(Fraction(1), 60, Fraction(1))], C_MAJOR))


def test_a_blends_profile_lies_between_its_genres():
    from rtgen.data.profile import blend, profile

    fiddle, chorale = profile("fiddle"), profile("chorale")
    mixed = blend({"fiddle": 3.0, "chorale": 1.0})
    assert mixed.in_key == pytest.approx(0.75 * fiddle.in_key + 0.25 * chorale.in_key)
    assert profile("no-such-genre") == FormProfile()
    # the odds that an echo runs on weigh each genre by how often it echoes; a genre never measured adds none
    rates = 0.75 * sum(fiddle.echoes), 0.25 * sum(chorale.echoes)
    lag4 = (rates[0] * fiddle.echo_runs[3] + rates[1] * chorale.echo_runs[3]) / sum(rates)
    assert mixed.echo_runs[3] == pytest.approx(lag4)
    assert blend({"fiddle": 1.0, "no-such-genre": 1.0}).echo_runs == pytest.approx(fiddle.echo_runs)


def test_each_seed_starts_from_another_real_opening_of_the_genre():
    from rtgen.data.seeds import genre_opening

    first, second = genre_opening("fiddle", 0), genre_opening("fiddle", 1)
    assert first and second and first != second and genre_opening("fiddle", 0) == first
    assert max(n.start for n in first) < 8  # two bars
    assert genre_opening("no-such-genre", 0) is None


def test_generate_without_a_seed_phrase_primes_with_the_heaviest_genres_opening():
    import argparse

    from rtgen.cli.generate_cmd import seed_notes
    from rtgen.daemon.presets import Preset
    from rtgen.data.seeds import genre_opening
    from rtgen.engine.controls import Controls

    args = argparse.Namespace(from_rests=None, seed_midi=None, seed=3)
    preset = Preset(name="generate", controls=Controls(weights={"folk": 1.0, "fiddle": 2.0}))
    assert seed_notes(args, preset) == (genre_opening("fiddle", 3), 8)  # two bars: the piece starts on bar 3
