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
    soften_out_of_key(mask, encoding, scale_pitches(0, "major"), 0.25)
    assert mask[encoding.note_on_id(61)] == pytest.approx(0.25)  # C#: out of C major
    assert mask[encoding.note_on_id(62)] == 1.0 and mask[encoding.off_base + 61] == 1.0


def test_the_key_prior_holds_only_while_rtgen_is_more_out_of_key_than_its_genres():
    from rtgen.engine.form import KEY_MEMORY, KeyBudget

    budget = KeyBudget()
    budget.allowed = 0.05  # Bach: about one note in twenty out of key
    assert not budget.onset(False) and not budget.holds  # in key: the models play as they are
    assert not budget.onset(True) and not budget.holds  # one chromatic note is within the budget
    assert budget.onset(True) and budget.holds  # a second in a row: the prior holds
    held = 0
    while budget.holds:
        budget.onset(False)
        held += 1
    assert 0 < held < 2 / KEY_MEMORY  # until about a memory's worth of in-key notes brings the share down


def test_the_engine_lets_chromatic_notes_through_under_the_key_prior_until_its_budget_is_spent():
    from rtgen.engine.controls import Controls
    from rtgen.engine.warm import Engine

    engine = Engine.from_names(["chorale"], "cpu", Controls(weights={"chorale": 1.0}, key_prior=0.9, key="C major"))
    sharp = engine.encoding.note_on_id(61)
    assert engine._mask[sharp] == 1.0  # nothing played yet: C# as likely as the models make it
    engine.feed([sharp, *engine.encoding.shift_tokens(12), engine.encoding.off_base + 61])
    assert engine._mask[sharp] == 1.0  # one C# is within Bach's budget
    engine.feed([sharp, *engine.encoding.shift_tokens(12), engine.encoding.off_base + 61])
    assert engine._mask[sharp] == pytest.approx(0.1)  # over budget: the prior holds


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
