"""The control registry: every control validated, CC-scaled, in the TUI and in docs/osc.md, from one entry."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import torch

from rtgen.controls import CONTROLS, DOC_BEGIN, DOC_END, WEIGHT_PREFIX, ControlError, check, doc_table, spec
from rtgen.daemon.ccmap import CCMapping
from rtgen.daemon.glide import GLIDED, SWITCHES
from rtgen.daemon.osc import OscConfig, OscError, OscServer
from rtgen.daemon.status import Snapshot
from rtgen.encoding import EventEncoding
from rtgen.engine.controls import Controls, FusionMethod, SamplingMode
from rtgen.engine.derived import derive
from rtgen.live.player import Mode
from rtgen.tui.app import RtgenApp, make_widgets
from rtgen.tui.widgets import Choice, Slider, Toggle

DOC = Path(__file__).parents[1] / "docs" / "osc.md"
GENRES = ("folk", "fiddle")
FIELDS = {f.name: f for f in dataclasses.fields(Controls)}


def names() -> list[str]:
    """Every control as the daemon names it, one genre weight standing for all."""
    return [WEIGHT_PREFIX + "folk" if name == "weights" else name for name in CONTROLS]


def over(value: float) -> float:
    return value + max(1.0, abs(value))


class OscDaemon:
    """What ``OscServer.checked`` reads of a daemon."""

    genres = GENRES


@pytest.fixture(scope="module")
def server():
    osc = OscServer(OscDaemon(), OscConfig(port=0))
    yield osc
    osc.sock.close()


def test_docs_osc_md_holds_the_registrys_table():
    text = DOC.read_text(encoding="utf-8")
    shown = text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0].strip()
    assert shown == doc_table(), "docs/osc.md is stale: run `python -m rtgen.controls docs/osc.md`"
    for entry in CONTROLS.values():
        assert f"/rtgen/{entry.name}`" in shown or entry.name == "weights"


def test_the_controls_fields_are_the_registrys_engine_controls():
    engine = {name for name, entry in CONTROLS.items() if entry.owner == "controls"}
    assert engine == set(FIELDS)
    assert {entry.owner for entry in CONTROLS.values()} == {"controls", "clock", "player"}


@pytest.mark.parametrize("name", names())
def test_every_entry_is_coherent(name):
    entry = spec(name)
    if entry.numeric:
        low, high = entry.hard_range(vocab_size=338)
        assert low <= entry.usual[0] < entry.usual[1] <= high
        assert 0 < entry.step <= entry.usual[1] - entry.usual[0]
    else:
        assert entry.options and len(set(entry.options)) == len(entry.options)
    assert len(entry.label or entry.name) <= 13 and entry.doc and "|" not in entry.doc
    if entry.owner == "controls" and name in FIELDS:
        check(name, FIELDS[name].default)  # every default lies in its range


@pytest.mark.parametrize("name", [n for n in names() if spec(n).owner == "controls"])
def test_every_engine_control_is_validated_by_its_range(name):
    entry = spec(name)
    field = "weights" if name.startswith(WEIGHT_PREFIX) else name
    base = Controls(weights={"folk": 1.0, "fiddle": 1.0})

    def changed(value):
        return {"weights": {"folk": value, "fiddle": 1.0}} if field == "weights" else {field: value}

    if entry.numeric:
        low, high = entry.hard_range(vocab_size=None)
        base.replace(**changed(low if field != "pitch_max" else 127))
        with pytest.raises(ControlError, match=name):
            base.replace(**changed(low - 1))
        if high != float("inf"):
            with pytest.raises(ControlError, match=f"{name} .* outside"):
                base.replace(**changed(over(high)))
    elif entry.kind == "choice" and not entry.free_text:
        with pytest.raises(ControlError, match=f"{name} 'nonsense' is not one of"):
            base.replace(**changed("nonsense"))


@pytest.mark.parametrize("name", names())
def test_every_control_has_an_osc_address_checked_by_its_range(server, name):
    entry = spec(name)
    address = "/rtgen/weight/folk" if name.startswith(WEIGHT_PREFIX) else f"/rtgen/{name}"
    if entry.numeric:
        low, high = entry.hard_range()
        assert server.checked(name, low) == low
        with pytest.raises(OscError, match=f"/rtgen/{name} .* outside"):
            server.checked(name, low - 1)
        if high != float("inf"):
            with pytest.raises(OscError, match="outside"):
                server.checked(name, over(high))
    else:
        assert server.checked(name, entry.options[-1]) in (entry.options[-1], True)
    assert address.startswith("/rtgen/")


@pytest.mark.parametrize("name", names())
def test_every_control_is_cc_scaled_over_its_usual_range(name):
    entry = spec(name)
    mapping = CCMapping(number=1, control=name)
    if entry.numeric:
        assert (mapping.value(0), mapping.value(127)) == entry.usual
        assert entry.usual[0] <= mapping.value(64) <= entry.usual[1]
    else:
        swept = {mapping.value(cc) for cc in range(128)}
        expected = {False, True} if entry.kind == "toggle" else set(entry.options)
        assert swept == expected
    for cc in (0, 64, 127):
        check(name, mapping.value(cc))  # a knob never leaves the hard range


def test_every_control_has_a_tui_widget_built_from_its_entry():
    controls = Controls(weights={"folk": 5.0, "fiddle": 5.0})
    snap = Snapshot(GENRES, controls, "solo", playing=False, tempo_bpm=120.0, clock_source="internal", current_beat=0.0)
    widgets = {w.control: w for w in make_widgets(snap)}
    expected = [WEIGHT_PREFIX + g for g in GENRES] + [n for n in CONTROLS if n != "weights"]
    assert list(widgets) == expected
    for control, widget in widgets.items():
        entry = spec(control)
        kind = {"toggle": Toggle, "choice": Choice}.get(entry.kind, Slider)
        assert type(widget) is kind, control
        if isinstance(widget, Slider):
            assert (widget.low, widget.high, widget.step) == (*entry.usual, entry.step)
        assert widget.key == entry.key or control.startswith(WEIGHT_PREFIX)


def test_tui_keys_are_the_registrys_and_clash_with_no_other_binding():
    keys = [entry.key for entry in CONTROLS.values() if entry.key]
    assert len(keys) == len(set(keys))
    bound = [b.key for b in RtgenApp.BINDINGS]
    assert len(bound) == len(set(bound)) and set(keys) <= set(bound)


def test_the_type_hints_list_the_registrys_choices():
    assert typing.get_args(FusionMethod) == spec("method").choices
    assert typing.get_args(SamplingMode) == spec("sampling").choices
    assert typing.get_args(Mode) == spec("mode").choices


def test_the_glide_is_the_registrys():
    glided = {n for n, e in CONTROLS.items() if e.glide != "none"}
    assert glided == GLIDED and {"density", "register"} == SWITCHES <= GLIDED


def test_top_k_is_bounded_by_the_loaded_vocabulary_not_a_constant():
    encoding = EventEncoding()
    size = len(encoding)
    assert check("top_k", 5000) == 5000  # no model known: only the low end
    derive(Controls(weights={"folk": 1}, top_k=size), None, encoding, ("folk",), None, torch.device("cpu"))
    with pytest.raises(ControlError, match=f"top_k {size + 1} outside 0-{size}"):
        derive(Controls(weights={"folk": 1}, top_k=size + 1), None, encoding, ("folk",), None, torch.device("cpu"))


def test_command_line_text_is_converted_by_the_registry():
    assert spec("top_k").from_text("8") == 8
    assert spec("scale_lock").from_text("on") is True and spec("follow").from_text("0") is False
    assert spec("method").from_text("product") == "product"
    with pytest.raises(ControlError, match="temperature='hot' is not a number"):
        spec("temperature").from_text("hot")


def test_unknown_controls_are_refused_listing_the_known_ones():
    with pytest.raises(ControlError, match="unknown control 'volume'; expected one of weights.<genre>, density, "):
        spec("volume")
    with pytest.raises(ControlError, match="unknown control 'weights'"):
        spec("weights")
