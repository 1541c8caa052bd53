"""The form's close known ahead (rtgen.engine.closes): what expression's ritardando slows into."""

from __future__ import annotations

import math

from rtgen.data.profile import FormProfile
from rtgen.encoding import EventEncoding
from rtgen.engine.closes import beats_to_close, close_step, restated_until
from rtgen.engine.sections import OVER_BARS, SECTION_BARS, Sections

C_MAJOR = (0, "major")


def sections(variation: float = 0.5) -> Sections:
    form = Sections(EventEncoding(), lambda: 0.0)  # every draw 0: a section is always restated
    form.set_form(FormProfile(restate=1.0, literal=0.5), variation)
    form.set_key(C_MAJOR)
    form.mark(0, 0, C_MAJOR)
    return form


def test_a_close_is_known_from_the_arrival_or_within_the_caps_last_bar_and_not_before():
    form = sections()
    bar = form.bar_steps
    cap = (SECTION_BARS + OVER_BARS) * bar
    assert close_step(form, 3 * bar, 0) is None and beats_to_close(form, 3 * bar, 0) == math.inf
    last = (SECTION_BARS - 1) * bar
    form.onset(last, 60)  # the last bar's downbeat: an arrival, judged once time moves on
    assert form.closes(last + 1, False) is None
    assert close_step(form, last + 1, 0) == SECTION_BARS * bar
    assert beats_to_close(form, last + 6, 0) == (bar - 6) / form.encoding.steps_per_beat
    form = sections()
    assert close_step(form, cap - bar - 1, 0) is None and close_step(form, cap - bar, 0) == cap


def test_a_restatement_closes_after_its_queue_and_its_second_ending():
    form = sections()
    enc, bar = form.encoding, form.bar_steps
    tokens = []
    for beat in range(16):  # four bars of quarter notes
        tokens += [enc.note_on_id(48 + beat), *enc.shift_tokens(12), enc.off_base + 48 + beat]
    first = form.end(tokens, 4 * bar, "cadence")
    until = restated_until(form, 4 * bar, first)
    assert until == 4 * bar + 3 * bar + bar  # bars 1-3 again (the 4th is left to the second ending), then it
    assert close_step(form, 4 * bar, until) == until
    form.queue.clear()  # played out: the second ending is still to come
    assert close_step(form, 7 * bar, until) == until
    form.mark(0, 7 * bar, C_MAJOR)
    assert form.ending_until == until and close_step(form, 7 * bar + 5, 0) == until


def _reported_closes(seed: int, bars: int = 64):
    """The shipped fiddle model played ``bars`` bars: (closes reported last before a section began, the sections'
    starts, their sampled closes), in grid steps, and the engine."""
    from rtgen.data.seeds import genre_opening
    from rtgen.engine.controls import Controls
    from rtgen.engine.form import FORM_CONTROLS
    from rtgen.engine.warm import Engine

    engine = Engine.from_names(["fiddle"], "cpu", Controls(weights={"fiddle": 1.0}, **FORM_CONTROLS), seed=seed)
    engine.reset()
    engine.prime(genre_opening("fiddle", 3))
    spb, form = engine.encoding.steps_per_beat, engine._sections
    done, starts, seen, latest = set(), set(), 0, None
    while engine.beat < 4 * bars:
        engine.step()
        now = engine._decoder.state.now_steps
        if form.sections != seen:
            seen = form.sections
            starts.add(form.start_steps)
            if latest is not None and latest <= form.start_steps:
                done.add(latest)
            latest = None
        if (left := engine.beats_to_section_end) != math.inf:
            latest = now + round(left * spb)  # a report taken back later is replaced by the next
    ends = {form.origin + round(beat * spb) for beat, _ in engine.section_ends}  # sampled sections' closes
    return done, starts, ends, engine


def test_the_shipped_fiddle_models_closes_are_reported_where_its_next_sections_begin():
    """Real model: the close known when a section ends is that section's end or the next one's start.

    A close reported ahead may be taken back before it comes (a strong beat after an arrival that is no arrival
    reopens the section), so what must hold is the latest report before the next section begins. Two seeds: which
    sampled sections are stated again is drawn, and both kinds of close must be seen."""
    from rtgen.data.seeds import genre_opening
    from rtgen.engine.offline import generate_notes

    runs = [_reported_closes(seed) for seed in (1, 2)]
    for done, starts, ends, _ in runs:
        assert len(done) >= 3 and done <= starts | ends, (sorted(done), sorted(starts), sorted(ends))
    assert any(done & starts - ends for done, starts, ends, _ in runs)  # restatements' closes
    assert any(done & ends for done, _, ends, _ in runs)  # sampled sections' closes
    engine = runs[0][3]
    closes: list[float] = []
    generate_notes(engine, genre_opening("fiddle", 3), 32, seed=3, closes=closes)  # rtgen generate's closes
    assert {beat for beat, _ in engine.section_ends if beat <= 128} <= set(closes)
    assert len(closes) >= len(engine.section_ends) and closes == sorted(closes) and closes[-1] <= 128
    engine.set_controls(repeat=0.0)
    assert engine.beats_to_section_end is None  # no form: expression counts 8-bar sections
