"""The sampling-time form mechanisms: lookback repetition and the soft key prior, as pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtgen.encoding import EventEncoding
from rtgen.engine.form import CONTEXT_TOKENS, MIN_GAP_TOKENS, Lookback, lean_towards, soften_out_of_key
from rtgen.engine.sampling import scale_pitches


def test_lookback_suggests_what_followed_the_context_last_time():
    lookback = Lookback()
    motif = [10, 11, 12, 13, 14, 15, 16, 17]
    lookback.extend(motif + list(range(100, 100 + MIN_GAP_TOKENS)) + motif[:CONTEXT_TOKENS])
    assert lookback.suggest() == motif[CONTEXT_TOKENS]  # the motif goes on as it did
    lookback.reset()
    assert lookback.suggest() is None


def test_a_context_seen_only_just_now_is_not_copied():
    lookback = Lookback()
    lookback.extend([5] * (CONTEXT_TOKENS + 2))  # one token repeated: its context recurs at once
    assert lookback.suggest() is None


@given(st.lists(st.floats(0, 1), min_size=5, max_size=5), st.integers(0, 4), st.floats(0, 0.95))
def test_leaning_moves_exactly_the_asked_share_and_never_revives_a_masked_token(values, token, strength):
    before = list(values)
    lean_towards(values, token, strength)
    total, old_total = sum(values), sum(before)
    if before[token] > 0 and strength > 0:
        expected = (1 - strength) * before[token] / old_total + strength
        assert values[token] / total == pytest.approx(expected)
    else:
        assert values == before


def test_out_of_key_note_ons_are_scaled_and_nothing_else():
    encoding = EventEncoding()
    mask = np.ones(len(encoding), dtype=np.float32)
    soften_out_of_key(mask, encoding, scale_pitches(0, "major"), 0.75)
    assert mask[encoding.note_on_id(61)] == pytest.approx(0.25)  # C#: out of C major
    assert mask[encoding.note_on_id(62)] == 1.0 and mask[encoding.off_base + 61] == 1.0


def test_a_long_copied_run_pauses_the_lean_until_the_models_choose_otherwise():
    from rtgen.engine.form import MAX_RUN_TOKENS

    lookback = Lookback()
    lookback.extend(range(60))  # a phrase
    lookback.extend(range(CONTEXT_TOKENS))  # its opening again: from here on the phrase is suggested
    followed = 0
    while (suggested := lookback.suggest()) is not None:
        lookback.push(suggested)
        followed += 1
    assert followed == MAX_RUN_TOKENS
    lookback.push(999)  # the models chose something else
    lookback.extend(range(CONTEXT_TOKENS))
    assert lookback.suggest() == CONTEXT_TOKENS


def test_a_stream_of_hours_keeps_a_bounded_memory_and_still_comes_back():
    from rtgen.engine.form import MAX_CONTEXTS

    lookback = Lookback()
    rng = np.random.default_rng(0)
    lookback.extend(rng.integers(0, 300, 8 * MAX_CONTEXTS).tolist())  # no context repeats: all forgotten in turn
    assert len(lookback.tokens) <= MAX_CONTEXTS and len(lookback.last_at) <= MAX_CONTEXTS
    assert lookback.length == 8 * MAX_CONTEXTS
    motif = [301, 302, 303, 304, 305]
    lookback.extend(motif + rng.integers(0, 300, 40).tolist() + motif[:CONTEXT_TOKENS])
    assert lookback.suggest() == 305  # what followed the context, found after the stream was trimmed


def test_a_repeating_stream_forgets_its_oldest_tokens_too():
    """A live set that repeats itself has few contexts; its token list must not grow for hours."""
    from rtgen.engine.form import MAX_TOKENS

    lookback = Lookback()
    phrase = list(range(10, 140, 10))  # 13 tokens: it comes back further than MIN_GAP_TOKENS
    lookback.extend(phrase * MAX_TOKENS)
    assert len(lookback.tokens) <= MAX_TOKENS and len(lookback.last_at) == len(phrase)
    assert lookback.suggest() == 10 and lookback.length == len(phrase) * MAX_TOKENS


def test_first_bars_cuts_at_the_bar_and_drops_note_offs_of_notes_begun_before():
    from rtgen.engine.form import first_bars

    enc = EventEncoding()
    on, off = enc.note_on_id, lambda p: enc.off_base + p
    tokens = [off(50), on(60), *enc.shift_tokens(24), off(60), on(62), *enc.shift_tokens(48), off(62), on(64)]
    assert first_bars(enc, tokens, 48) == [on(60), *enc.shift_tokens(24), off(60), on(62), *enc.shift_tokens(24)]
    assert first_bars(enc, tokens[:5], 96) == [on(60), *enc.shift_tokens(24), off(60), on(62), *enc.shift_tokens(72)]


def test_an_ending_queues_the_shift_to_the_bar_line_sep_and_the_section():
    from rtgen.engine.form import Reprise

    enc = EventEncoding()
    lookback, reprise = Lookback(), Reprise(enc)
    lookback.extend([enc.sep_id, enc.note_on_id(67)])  # the prime: not part of the section
    reprise.mark(lookback.length, 0)
    section = [enc.note_on_id(60), *enc.shift_tokens(48), enc.off_base + 60, enc.note_on_id(62)]
    section += enc.shift_tokens(72)  # 2.5 bars in all
    lookback.extend(section)
    first = reprise.end(lookback, now_steps=120)
    played = [first, *reversed(reprise.queue)]
    assert played == [*enc.shift_tokens(24), enc.sep_id, *section, *enc.shift_tokens(24)]  # whole bars, again
    assert reprise.start is None  # the next sampled step opens a new section


def test_a_short_section_is_not_restated():
    from rtgen.engine.form import Reprise

    enc = EventEncoding()
    lookback, reprise = Lookback(), Reprise(enc)
    reprise.mark(0, 0)
    lookback.extend([enc.note_on_id(60), *enc.shift_tokens(12)])
    assert [reprise.end(lookback, now_steps=12), *reversed(reprise.queue)] == [*enc.shift_tokens(36), enc.sep_id]


def test_the_shipped_folk_model_restates_a_section_where_it_ends_it():
    """Real model, real phrase: where the stream plays SEP (the models ended the piece), its first section comes again.

    The first section runs from the first generated token to the ending; after the SEP the same onsets (pitch
    and time from the section's start) follow, from the next bar line on.
    """
    from fractions import Fraction

    from rtgen.encoding import Note
    from rtgen.engine.controls import Controls
    from rtgen.engine.warm import Engine

    engine = Engine.from_names(["folk"], "cpu", Controls(weights={"folk": 1.0}, repeat=0.6))
    enc = engine.encoding
    phrase = [Note(Fraction(i, 2), p, Fraction(1, 2)) for i, p in enumerate((67, 69, 71, 72, 74, 72, 71, 69))]

    def onsets(tokens: list[int]) -> tuple[list[tuple[Fraction, int]], Fraction]:
        decoder = enc.decoder()
        found = [(e.beat, e.pitch) for t in tokens for e in decoder.feed(t) if e.on]
        return found, decoder.beat

    restated = 0
    for seed in range(12):
        engine.seed(seed)
        engine.reset()
        engine.prime(phrase)
        tokens = [engine.step() for _ in range(800)]
        if enc.sep_id not in tokens:
            continue
        at = tokens.index(enc.sep_id)
        section, ended = onsets(tokens[:at])
        again, length = onsets(tokens[at + 1 :])
        span = min(ended, Fraction(32), length)
        if ended < 8:  # under two bars: not restated
            continue
        assert [o for o in again if o[0] < span] == [o for o in section if o[0] < span]
        restated += 1
    assert restated >= 2


def test_no_ending_is_taken_in_a_sections_first_bar():
    """Endings in a row (a model sure the piece is over) would emit SEP after SEP and stop the stream's time."""
    from rtgen.engine.form import Reprise

    reprise = Reprise(EventEncoding())
    assert not reprise.may_end(0)  # no section yet
    reprise.mark(0, 100)
    assert not reprise.may_end(147) and reprise.may_end(148)


def test_a_section_the_models_never_end_ends_after_max_section_bars():
    from rtgen.engine.form import MAX_SECTION_BARS, Reprise

    reprise = Reprise(EventEncoding())
    reprise.mark(0, 0)
    bar = reprise.bar_steps
    assert not reprise.full(MAX_SECTION_BARS * bar - 1) and reprise.full(MAX_SECTION_BARS * bar)


def test_moving_the_blend_drops_a_restatement_under_way():
    """A performer who moves the genre weights hears the new blend at once, not the old section again."""
    from rtgen.engine.controls import Controls
    from rtgen.engine.warm import Engine

    engine = Engine.from_names(["folk", "fiddle"], "cpu", Controls(weights={"folk": 1.0, "fiddle": 0.0}, repeat=0.6))
    engine.reset()
    engine.prime([])
    while not engine._reprise.queue:  # play until a section ends (8 bars at the latest)
        engine.step()
    engine.set_controls(temperature=0.9)
    assert engine._reprise.queue  # other controls leave it playing
    engine.set_controls(weights={"folk": 0.0, "fiddle": 1.0})
    assert not engine._reprise.queue and engine._reprise.start is None


def test_repeat_plays_chord_token_models_without_sections(tmp_path):
    """Sections are cut in event tokens; a chord-token model at the default controls still plays past 8 bars."""
    from fractions import Fraction

    from test_chord_encoding import chord_checkpoint, n

    from rtgen.encoding import Note
    from rtgen.engine.controls import Controls
    from rtgen.engine.form import FORM_CONTROLS
    from rtgen.engine.offline import generate_notes
    from rtgen.engine.warm import Engine
    from rtgen.nets.checkpoint import load_model

    loaded = load_model(chord_checkpoint(tmp_path / "toy", [n(0, 60, 1), n(1, 62, "1/2"), n(2, 64, "1/4")]))
    engine = Engine(["toy"], [loaded], Controls(**FORM_CONTROLS), seed=0)
    notes = generate_notes(engine, [Note(Fraction(0), 60, Fraction(1))], 12, seed=0)
    assert notes and max(n.start for n in notes) >= 32
