"""Follow the performer: the classifier's reading of phrases, smoothed, and the weights that follow it."""

from __future__ import annotations

import math

import pytest

from rtgen.daemon.commands import SetControls
from rtgen.daemon.follow import Follower, shares, smoothed
from rtgen.data.seeds import builtin
from rtgen.nets.classifier import ClassifierError, installed_classifier


def test_shares_are_a_softmax_over_the_loaded_genres():
    reading = shares({"folk": -1.0, "fiddle": -1.5, "chorale": -9.0, "jazz": 0.0}, ["folk", "fiddle", "chorale"])
    assert math.isclose(sum(reading.values()), 1.0) and set(reading) == {"folk", "fiddle", "chorale"}
    assert reading["folk"] > reading["fiddle"] > reading["chorale"]


def test_the_reading_is_smoothed_over_phrases():
    first = {"folk": 1.0, "chorale": 0.0}
    assert smoothed({}, first) == first
    assert smoothed(first, {"folk": 0.0, "chorale": 1.0}) == {"folk": 0.5, "chorale": 0.5}


@pytest.fixture(scope="module")
def classifier():
    try:
        return installed_classifier()
    except ClassifierError:
        pytest.skip("no genre classifier installed (models/classifier.npz)")


def test_a_chorale_phrase_pulls_the_weights_toward_chorale_only_when_following(classifier):
    submitted: list[SetControls] = []
    follower = Follower(classifier, ["folk", "fiddle", "chorale", "renaissance"], submitted.append)
    follower.hear(builtin("chorale"), following=False)
    assert not submitted and max(follower.reading, key=follower.reading.get) == "chorale"
    follower.hear(builtin("chorale"), following=True)
    weights = dict(submitted[-1].changes)
    assert weights["weights.chorale"] == max(weights.values()) and sum(weights.values()) == pytest.approx(10, 0.01)
    follower.hear(builtin("chorale")[:2], following=True)  # too short to say anything
    assert len(submitted) == 1
