"""Live controls are immutable values with checked ranges."""

from __future__ import annotations

import pytest

from rtgen.engine.controls import ControlError, Controls


def test_weights_normalise_over_loaded_genres_in_order():
    controls = Controls(weights={"folk": 10, "fiddle": 5, "chorale": 5})
    assert controls.normalised_weights(("fiddle", "folk", "renaissance")) == (1 / 3, 2 / 3, 0.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weights": {"folk": 0, "fiddle": 0}}, "all genre weights are zero"),
        ({"weights": {"folk": -1}}, "weights.folk -1 outside 0-100"),
        ({"temperature": 0}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"method": "average"}, "method 'average'"),
        ({"pitch_min": 90, "pitch_max": 40}, "pitch range"),
        ({"tempo": 3}, "unknown control 'tempo'"),
    ],
)
def test_out_of_range_values_are_refused_by_name(changes, message):
    with pytest.raises(ControlError, match=message):
        Controls(weights={"folk": 1}).replace(**changes)


def test_replace_returns_a_new_value_and_leaves_the_old_one():
    before = Controls(weights={"folk": 1})
    after = before.replace(temperature=0.7)
    assert (before.temperature, after.temperature) == (1.0, 0.7)


def test_weights_for_genres_not_loaded_are_refused():
    with pytest.raises(ControlError, match="no weight above 0"):
        Controls(weights={"jazz": 1}).normalised_weights(("folk",))
