"""CC map: TOML round trip, strict loading, scaling, MIDI learn, routing to the daemon, program change."""

from __future__ import annotations

import re

import mido
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtgen.daemon import ccmap
from rtgen.daemon.ccmap import CCMap, CCMapError, CCMapping
from rtgen.engine.controls import Controls


def cc(number: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=number, value=value, channel=channel)


def write(tmp_path, text: str):
    path = tmp_path / "cc_map.toml"
    path.write_text(text)
    return path


def test_load_maps_cc_into_the_range(tmp_path):
    path = write(
        tmp_path,
        '[[cc]]\nnumber = 21\nchannel = 1\ncontrol = "weights.folk"\nmin = 0\nmax = 10\n'
        '[[cc]]\nnumber = 22\ncontrol = "temperature"\n',
    )
    cmap = CCMap.load(path)
    assert cmap.apply(cc(21, 127)) == ("weights.folk", 10.0)
    assert cmap.apply(cc(21, 0)) == ("weights.folk", 0.0)
    assert cmap.apply(cc(21, 127, channel=1)) is None  # channel 2 is not mapped
    control, value = cmap.apply(cc(22, 0, channel=5))  # any channel
    assert control == "temperature" and value == pytest.approx(0.1)
    assert cmap.apply(cc(23, 64)) is None
    assert cmap.apply(mido.Message("note_on", note=60)) is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[[cc]]\nnumber = 21\ncontrol = "temperature"\nspeed = 3\n', "unknown key 'speed'"),
        ('[[cc]]\nnumber = 200\ncontrol = "temperature"\n', "cc[0]: CC number 200"),
        ('[[cc]]\nnumber = 1\ncontrol = "volume"\n', "unknown control 'volume'"),
        ('[[cc]]\nnumber = 1\nchannel = 17\ncontrol = "top_p"\n', "channel 17"),
        ('[[cc]]\nnumber = 1\ncontrol = "top_p"\nmax = 3\n', "max 3"),
        ('[[cc]]\nnumber = 1\ncontrol = "method"\nmin = 0\n', "min does not apply to 'method'"),
        ('[[cc]]\nnumber = "x"\ncontrol = "top_p"\n', "number: expected int"),
        ("[[knob]]\nnumber = 1\n", "unknown key 'knob'"),
        ("cc = 3\n", "array of tables"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(CCMapError, match=re.escape(needle)) as error:
        CCMap.load(path)
    assert str(path) in str(error.value)


def test_save_load_round_trip(tmp_path):
    mappings = (
        CCMapping(21, "weights.folk", channel=1, min=0, max=10),
        CCMapping(7, "tempo_bpm", min=60, max=180),
        CCMapping(8, "method"),
        CCMapping(9, "scale_lock", channel=16),
        CCMapping(10, 'weights.my "best" \\ genre'),
    )
    path = CCMap(mappings).save(tmp_path / "sub" / "cc_map.toml")
    assert CCMap.load(path).mappings == mappings


def test_choices_bool_and_integers():
    assert CCMapping(1, "method").value(0) == "mixture"
    assert CCMapping(1, "method").value(127) == "two-phase"
    assert CCMapping(1, "scale_lock").value(63) is False
    assert CCMapping(1, "scale_lock").value(64) is True
    assert CCMapping(1, "mode").value(127) == "solo"
    assert CCMapping(1, "top_k", min=0, max=10).value(127) == 10
    assert CCMapping(1, "key").value(0) == "auto"


@given(st.integers(0, 127), st.floats(0, 100), st.floats(0, 100))
def test_scaled_value_stays_between_min_and_max(value, low, high):
    result = CCMapping(1, "weights.x", min=low, max=high).value(value)
    assert min(low, high) - 1e-9 <= result <= max(low, high) + 1e-9


def test_learn_binds_the_next_cc_and_replaces_old_mappings():
    cmap = CCMap((CCMapping(21, "temperature"), CCMapping(30, "weights.folk")))
    cmap.learn("weights.folk")
    assert cmap.learning == "weights.folk"
    assert cmap.apply(mido.Message("note_on", note=60)) is None  # not a CC: still learning
    assert cmap.learning == "weights.folk"
    assert cmap.apply(cc(21, 127, channel=2)) == ("weights.folk", 10.0)
    assert cmap.learning is None
    assert cmap.learned == CCMapping(21, "weights.folk", channel=3)
    assert cmap.mappings == (CCMapping(21, "weights.folk", channel=3),)  # CC 21 and the old knob replaced
    assert cmap.apply(cc(21, 0, channel=0)) is None  # learned on channel 3 only


@pytest.mark.parametrize(
    ("control", "top"),
    [("density", 8.0), ("register", 108.0), ("register_width", 36.0), ("rhythm_temperature", 2.5),
     ("pitch_temperature", 2.5), ("motif", 1.0), ("repeat", 0.95), ("key_prior", 1.0)],
)  # fmt: skip
def test_every_steering_control_can_be_learned_and_gives_a_valid_value(control, top):
    cmap = CCMap()
    cmap.learn(control)
    assert cmap.apply(cc(40, 127)) == (control, top)
    assert cmap.apply(cc(40, 0))[0] == control
    Controls().replace(**{control: cmap.apply(cc(40, 64))[1]})  # inside the control's range


def test_follow_is_a_learnable_switch():
    cmap = CCMap()
    cmap.learn("follow")
    assert cmap.apply(cc(41, 127)) == ("follow", True) and cmap.apply(cc(41, 0)) == ("follow", False)


def test_learn_checks_the_name_and_can_cancel():
    cmap = CCMap()
    with pytest.raises(CCMapError, match="unknown control 'volume'"):
        cmap.learn("volume")
    cmap.learn("temperature")
    cmap.learn(None)
    assert cmap.apply(cc(1, 1)) is None and cmap.mappings == ()


def test_default_path_uses_the_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RTGEN_CONFIG_DIR", str(tmp_path))
    assert ccmap.default_path() == tmp_path / "cc_map.toml"
    CCMap((CCMapping(1, "top_p"),)).save(ccmap.default_path())
    assert CCMap.load(ccmap.default_path()).mappings == (CCMapping(1, "top_p"),)


def test_program_change_selects_sorted_preset():
    names = ["jig", "ambient", "chorale"]
    assert ccmap.preset_for_program(0, names) == "ambient"
    assert ccmap.preset_for_program(2, names) == "jig"
    assert ccmap.preset_for_program(3, names) is None
