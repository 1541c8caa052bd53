"""``rtgen eval music``: the two-sided bands, bar repetition, the per-piece features and the command's report."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from rtgen.encoding import Note
from rtgen.evaluate import bands
from rtgen.evaluate.bars import bar_repetition, bars_of, edit_distance, varies
from rtgen.evaluate.features import FEATURE_NAMES, feature_matrix, interval_histogram, measure, summarise
from rtgen.evaluate.music import compare, settings, spread
from rtgen.evaluate.music_report import format_report

EIGHTH = Fraction(1, 2)


def bar_of(pitches, bar: int) -> list[Note]:
    """Eight eighths starting at bar ``bar`` (0-based) of 4/4."""
    return [Note(4 * bar + i * EIGHTH, p, EIGHTH) for i, p in enumerate(pitches)]


def wandering(seed: int, bars: int) -> list[Note]:
    """A piece whose bars share nothing: random steps in C major."""
    rng = random.Random(seed)
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76]
    return [n for b in range(bars) for n in bar_of([rng.choice(scale) for _ in range(8)], b)]


def test_bands_are_two_sided_with_an_absolute_tolerance_for_small_shares():
    assert bands.in_band(1.0, 1.0, True) and bands.in_band(0.76, 1.0, True) and bands.in_band(1.32, 1.0, False)
    assert not bands.in_band(0.74, 1.0, True), "too little misses"
    assert not bands.in_band(1.34, 1.0, False), "too much misses as surely"
    assert bands.in_band(0.14, 0.10, True), "a small share passes within 0.05 though 1.4 x real"
    assert not bands.in_band(0.16, 0.10, True)
    assert bands.in_band(0.04, 0.0, True) and not bands.in_band(0.06, 0.0, True)
    assert not bands.in_band(0.14, 0.10, False), "the absolute tolerance is for shares only"
    assert bands.in_band(0.19, 0.16, True), "real 0.16 is no small share: the ratio band alone"
    assert not bands.in_band(0.22, 0.16, True)
    assert bands.in_band(float("nan"), 0.5, True) is None


def test_an_in_key_share_without_the_genres_chromaticism_misses_by_its_complement():
    real = {"repeats": 0.5, "repeated_share": 0.2, "bar_copies": 0.2, "varied_bars": 0.1, "notes_per_bar": 8.0}
    real |= {"key_halves": 0.8, "key_section": 0.8, "in_key": 0.93, "copy_rate": 0.2, "ioi_counts": np.ones(8)}
    generated = real | {"in_key": 0.998, "copy_rate": 0.3, "repeats": 1.0}
    ok = bands.verdicts(generated, real)
    assert ok["in_key"] is True and ok["out_of_key"] is False
    assert bands.misses(ok) == ["repeats", "out_of_key", "copy_rate"]
    assert ok["ioi_tv"] is True


def test_bars_are_onsets_and_pitches_from_their_bar_line():
    notes = bar_of([60] * 8, 0) + [Note(Fraction(9, 2), 62, EIGHTH)]
    assert bars_of(notes, 2)[1] == ((6, 62),)
    assert len(bars_of(notes, 1)) == 1, "bars past the length are left out"


def test_literal_copies_and_varied_bars_are_told_apart():
    a = [60, 62, 64, 65, 67, 65, 64, 62]
    varied = [60, 62, 64, 65, 67, 65, 64, 60]  # the last note changed: one edit in eight
    other = [72, 71, 69, 67, 65, 64, 62, 60]
    piece = bar_of(a, 0) + bar_of(a, 1) + bar_of(varied, 2) + bar_of(other, 3)
    copies, varied_share, filled = bar_repetition(piece, 4)
    assert (copies, varied_share, filled) == (0.25, 0.25, 4)
    assert bar_repetition(piece + bar_of(a, 5), 6) == pytest.approx((0.4, 0.2, 5)), "an empty bar counts in neither"


def test_edit_distance_stops_once_past_its_limit():
    assert edit_distance("kitten", "sitting", 5) == 3
    assert edit_distance("abc", "abcdefgh", 2) == 3
    assert varies(((0, 60), (6, 62), (12, 64)), ((0, 60), (6, 62), (12, 65)))
    assert not varies(((0, 60), (6, 62)), ((0, 60), (6, 63))), "two-note bars are too alike by chance"


def test_a_piece_measured_at_a_length_keeps_its_opening():
    piece = wandering(1, 8) + wandering(1, 8)[:0]
    eight, four = measure(piece, 8, np.zeros(0, np.int64)), measure(piece, 4, np.zeros(0, np.int64))
    assert (eight.bars, eight.notes, four.bars, four.notes) == (8, 64, 4, 32)
    assert four.notes_per_bar == 8.0 and four.pitch_range <= 16
    assert eight.features().shape == (len(FEATURE_NAMES),)
    assert interval_histogram(bar_of([60, 62, 60, 67], 0)).tolist() == [0, 0, 0, 1, 0, 1, 0, 1, 0]


def test_a_literal_copy_of_real_music_is_flagged_by_the_literal_repetition_statistics():
    keys = np.zeros(0, np.int64)
    real = [measure(wandering(seed, 16), 16, keys) for seed in range(12)]
    copied = []
    for seed in range(12):  # real material, its first 8 bars stated again note for note
        first = wandering(100 + seed, 8)
        copied.append(measure(first + [Note(n.start + 32, n.pitch, n.duration) for n in first], 16, keys))
    result = compare(copied, real, seed=0)
    assert result["real"]["bar_copies"] == 0.0 and summarise(copied)["bar_copies"] == 0.5
    assert {"bar_copies", "repeats", "repeated_share"} <= set(result["misses"])
    assert result["ok"]["varied_bars"] is True and result["ok"]["notes_per_bar"] is True
    assert result["two_sample"]["accuracy"] >= 0.9
    assert set(result["two_sample"]["top"]) & {"literal bar copies", "repeated 8-note share"}
    assert len(feature_matrix(copied)) == 12


def test_spread_and_the_settings_chosen_by_kind_or_name():
    assert spread(3, 9) == [0, 3, 6] and spread(5, 3) == [0, 1, 2]
    genres = ["folk", "fiddle", "chorale", "renaissance"]
    names = [name for name, _, _ in settings(genres, ("genres",))]
    assert names == genres
    chosen = settings(genres, ("fiddle", "folk+fiddle", "fiddle-reel"))
    assert [(name, used) for name, _, used in chosen] == [
        ("fiddle", ("fiddle",)),
        ("folk+fiddle", ("folk", "fiddle")),
        ("preset fiddle-reel", ("fiddle", "folk")),
    ]


def test_eval_music_end_to_end_on_tiny_models(with_tiny_models, capsys):
    from rtgen.cli import main

    argv = ["eval", "music", "--json", "--pieces", "3", "--bars", "4,8", "--settings", "fiddle", "--real-pieces", "4"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["settings"]) == ["fiddle"] and list(report["real"]) == ["fiddle"]
    real = report["real"]["fiddle"]
    assert real["measured"] == 4 and set(real["bars"]["8"]) == {"expanded", "notated"}
    at = report["settings"]["fiddle"]["bars"]["8"]
    assert at["generated"]["pieces"] == 3 and 0.0 <= at["generated"]["restated"] <= 1.0
    for side in ("expanded", "notated"):
        test = at[side]["two_sample"]
        assert test["pieces_per_class"] == 3 and set(test["auc"]) == set(FEATURE_NAMES)
        assert set(at[side]["ok"]) == {name for name, _ in bands.BANDED} | {"ioi_tv", "copy_rate"}
        assert all(name in at[side]["ok"] for name in at[side]["misses"])
    text = format_report(report)
    assert "8 bars: classifier two-sample accuracy" in text and text.count("\nfiddle ") == 4
    assert not math.isnan(real["bars"]["4"]["notated"]["notes_per_bar"])
