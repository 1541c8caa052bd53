"""Sampling: filters, the three choice modes, determinism per seed, masks and key detection."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.encoding import EventEncoding
from rtgen.engine.controls import ControlError
from rtgen.engine.sampling import (
    HYBRID_CONFIDENCE,
    allowed_pitches,
    choose,
    choose_from,
    detect_key,
    key_name,
    parse_key,
    token_mask,
    top_k_,
    top_p_,
)


def _p(values: list[float]) -> torch.Tensor:
    return torch.tensor(values)


def test_top_k_keeps_exactly_the_k_likeliest() -> None:
    kept = top_k_(_p([0.1, 0.4, 0.2, 0.3]), 2)
    assert (kept > 0).tolist() == [False, True, False, True]


def test_top_p_keeps_the_smallest_nucleus_reaching_p() -> None:
    assert (top_p_(_p([0.1, 0.5, 0.15, 0.25]), 0.7) > 0).tolist() == [False, True, False, True]
    assert (top_p_(_p([0.1, 0.5, 0.15, 0.25]), 0.5) > 0).tolist() == [False, True, False, False]
    assert (top_p_(_p([1.0, 5.0, 1.5, 2.5]), 0.7) > 0).tolist() == [False, True, False, True], "unnormalised"
    assert (top_p_(_p([0.1, 0.5, 0.15, 0.25]), 1.0) > 0).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=30), st.floats(0.01, 1.0), st.integers(0, 30))
def test_filters_always_leave_the_top_token(values, p, k) -> None:
    probs = _p(values)
    best = int(torch.argmax(probs))
    out = top_p_(top_k_(probs.clone(), k), p)
    assert out[best] > 0


def test_argmax_and_hybrid_when_confident_are_deterministic() -> None:
    probs = _p([0.05, 0.8, 0.15])
    assert choose(probs, "argmax") == 1
    assert {choose(probs, "hybrid", torch.Generator().manual_seed(s)) for s in range(30)} == {1}


def test_hybrid_samples_when_unsure() -> None:
    probs = [1 / 3 - 0.01, 1 / 3, 1 / 3 + 0.01]
    assert max(probs) < HYBRID_CONFIDENCE
    seen = {choose(_p(probs), "hybrid", torch.Generator().manual_seed(s)) for s in range(50)}
    assert seen == {0, 1, 2}


def test_same_seed_same_choices_and_sampling_follows_the_distribution() -> None:
    probs = _p([7.0, 2.0, 1.0])
    draws = [choose(probs, "sample", torch.Generator().manual_seed(s)) for s in range(2000)]
    again = [choose(probs, "sample", torch.Generator().manual_seed(s)) for s in range(2000)]
    assert draws == again
    assert 0.65 < draws.count(0) / 2000 < 0.75 and 0.07 < draws.count(2) / 2000 < 0.13


def test_choose_never_picks_a_masked_token() -> None:
    probs = _p([0.0, 0.3, 0.0, 0.3, 0.4, 0.0])
    probs[4] = 0.0
    gen = torch.Generator().manual_seed(0)
    picks = {choose(probs.clone(), "sample", gen) for _ in range(200)}
    assert picks == {1, 3}
    with pytest.raises(ControlError, match="every token is masked"):
        choose(torch.zeros(4), "sample", gen)


def test_parse_key_and_errors() -> None:
    assert parse_key("D minor") == (2, "minor")
    assert parse_key("bb major") == (10, "major")
    assert parse_key("F# dorian") == (6, "dorian")
    assert parse_key("G") == (7, "major")
    with pytest.raises(ControlError, match="scale 'bluesy'"):
        parse_key("C bluesy")
    with pytest.raises(ControlError, match="not understood"):
        parse_key("H major")


def test_krumhansl_schmuckler_finds_scale_keys() -> None:
    d_minor = [62, 64, 65, 67, 69, 70, 72, 74, 69, 65, 62]
    weights = [2 if p % 12 in (2, 9) else 1 for p in d_minor]
    assert detect_key(zip(d_minor, weights, strict=True)) == (2, "minor")
    g_major = [67, 71, 74, 72, 71, 69, 67, 66, 67, 62, 67]
    assert key_name(*detect_key((p, 1.0) for p in g_major)) == "G major"
    assert detect_key([]) == (0, "major")


def test_masks_limit_note_ons_to_key_and_range() -> None:
    enc = EventEncoding()
    allowed = allowed_pitches(60, 72, parse_key("C major"))
    mask = token_mask(enc, allowed, forbid=(enc.pad_id, enc.sep_id))
    open_ons = [p for p in range(128) if mask[enc.note_on_id(p)] == 1]
    assert open_ons == [60, 62, 64, 65, 67, 69, 71, 72]
    assert mask[enc.sep_id] == 0 and mask[enc.off_base + 61] == 1
    with pytest.raises(ControlError, match="no pitch of C# dorian"):
        allowed_pitches(60, 60, (1, "dorian"))


def test_choose_from_inverts_the_cumulative_weights_with_the_given_draw() -> None:
    weights = [1.0, 0.0, 3.0, 0.0]
    assert choose_from(weights, "sample", draw=0.0) == 0
    assert choose_from(weights, "sample", draw=0.24) == 0
    assert choose_from(weights, "sample", draw=0.26) == 2
    assert choose_from(weights, "sample", draw=0.9999999999999999) == 2, "rounding at the top never picks a zero"
    assert choose_from(weights, "argmax") == 2 == choose(torch.tensor(weights), "argmax")
