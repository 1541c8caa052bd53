"""Genre classifier and fidelity run: features, held-out accuracy on synthetic genres, the run over tiny models."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from engine_models import GENRES, make_models, restore_torch_threads  # noqa: F401

from rtgen.encoding import Note
from rtgen.evaluate.fidelity import run_fidelity, spearman
from rtgen.nets.classifier import ClassifierError, GenreClassifier, duration_class, features


def _melody(rng: random.Random, step: Fraction, leap: int, start_pitch: int = 67, bars: int = 8) -> list[Note]:
    notes, now, pitch = [], Fraction(0), start_pitch
    while now < 4 * bars:
        notes.append(Note(now, pitch, step))
        pitch = max(40, min(90, pitch + rng.randint(-leap, leap)))
        now += step
    return notes


def _chorale(rng: random.Random, bars: int = 8) -> list[Note]:
    notes = []
    for beat in range(4 * bars):
        root = 48 + rng.choice([0, 5, 7, 9])
        notes += [Note(Fraction(beat), root + offset, Fraction(1)) for offset in (0, 7, 12, 16)]
    return notes


def _genres(rng: random.Random, count: int) -> dict[str, list[list[Note]]]:
    return {
        "steps": [_melody(rng, Fraction(1), 2, rng.randint(55, 75)) for _ in range(count)],
        "leaps": [_melody(rng, Fraction(1, 4), 9, rng.randint(55, 75)) for _ in range(count)],
        "chords": [_chorale(rng) for _ in range(count)],
    }


def test_features_are_transposition_free_and_see_texture() -> None:
    line = [Note(Fraction(0), 60, Fraction(1)), Note(Fraction(1), 64, Fraction(1, 2)), Note(Fraction(3, 2), 50, 2)]
    f = features(line)
    assert f["interval"] == [12 + 4, 12 - 12]
    assert f["duration"] == [duration_class(Fraction(1)), duration_class(Fraction(1, 2)), duration_class(Fraction(2))]
    assert f["texture"] == [0, 0, 0]
    up = [Note(n.start, n.pitch + 5, n.duration) for n in line]
    assert features(up) == f
    chord = [Note(Fraction(0), p, Fraction(1)) for p in (48, 52, 55, 60)]
    assert features(chord)["texture"] == [3] and features(chord)["interval"] == []


def test_classifier_learns_synthetic_genres_and_round_trips(tmp_path) -> None:
    rng = random.Random(0)
    classifier = GenreClassifier.fit(_genres(rng, 30), {"note": "synthetic"})
    held_out = _genres(random.Random(1), 10)
    accuracy = classifier.accuracy(held_out)
    assert accuracy["overall"] >= 0.95
    path = classifier.save(tmp_path / "c.npz")
    again = GenreClassifier.load(path)
    piece = held_out["leaps"][0]
    assert again.scores(piece) == pytest.approx(classifier.scores(piece))
    assert again.info == {"note": "synthetic"} and again.genres == ("steps", "leaps", "chords")
    with pytest.raises(ClassifierError, match="without notes"):
        classifier.classify([])
    with pytest.raises(ClassifierError, match="rtgen eval classifier"):
        GenreClassifier.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ClassifierError, match="not a readable classifier"):
        GenreClassifier.load(tmp_path / "bad.npz")


def test_spearman() -> None:
    assert spearman([0, 1, 2, 3, 4], [0.0, 0.1, 0.5, 0.9, 1.0]) == pytest.approx(1.0)
    assert spearman([0, 1, 2, 3, 4], [1.0, 0.8, 0.5, 0.2, 0.0]) == pytest.approx(-1.0)
    assert spearman([0, 1, 2, 3, 4], [0.0, 0.0, 0.5, 0.5, 1.0]) == pytest.approx(0.9486832)
    assert spearman([0, 1, 2], [0.3, 0.3, 0.3]) == 0.0


def test_fidelity_run_over_tiny_models_reports_every_method(tmp_path, monkeypatch) -> None:
    from rtgen.engine.controls import Controls
    from rtgen.engine.offline import generate_notes
    from rtgen.engine.warm import Engine

    monkeypatch.setenv("RTGEN_MODELS", str(make_models(tmp_path)))
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(tmp_path / "no-shipped-models"))
    engine = Engine.from_names(list(GENRES), "cpu", Controls(), conditional=None)
    training = {}
    for genre in GENRES:
        engine.set_controls(weights={genre: 1.0})
        training[genre] = [generate_notes(engine, [], 2, seed=100 + i) for i in range(6)]
    classifier = GenreClassifier.fit(training)
    lines = []
    report = run_fidelity(classifier, ["mixture", "product", "conditional"], pieces=3, bars=2, progress=lines.append)
    assert set(report["methods"]) == {"mixture", "product", "conditional"}
    for result in report["methods"].values():
        assert set(result["single"]) == set(GENRES)
        (sweep,) = result["sweeps"]
        assert sweep["genre"] == "folk" and len(sweep["share"]) == 5
        assert all(0.0 <= s <= 1.0 for s in sweep["share"])
    singles = report["methods"]["mixture"]["single"]
    assert singles == report["methods"]["product"]["single"], "one genre: both methods are the same distribution"
    assert lines and isinstance(report["ok"], bool)
