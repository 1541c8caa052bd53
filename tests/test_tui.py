"""The TUI driven by Pilot over a FakeDaemon: every control reaches the daemon, presets, panic, learn, layout.

The FakeDaemon implements ``rtgen.daemon.status.DaemonControl`` faithfully: it
records every command, applies it to its state the way the daemon does
(controls validated by ``Controls.replace``, tempo refused under an external
clock), and hands back a new ``Snapshot`` object only when something changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
import json

import mido
import pytest
from rich.console import Console

from rtgen.daemon.status import DaemonControl, Snapshot, from_json, to_json
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.live.roll import Roll, RollNote
from rtgen.tui import make_app
from rtgen.tui.roll import (
    AHEAD_BEATS,
    COLS_PER_BEAT,
    GUTTER_CELLS,
    occupancy,
    pitch_name,
    pitch_rows,
    playhead_column,
    render_roll,
    window,
)
from rtgen.tui.status import log_text, status_text
from rtgen.tui.widgets import ControlWidget, Slider

GENRES = ("folk", "fiddle", "chorale", "renaissance")
PRESETS = {
    "ambient": ({"folk": 1.0, "fiddle": 0.0, "chorale": 8.0, "renaissance": 8.0}, 72.0),
    "jig": ({"folk": 3.0, "fiddle": 9.0, "chorale": 0.0, "renaissance": 0.0}, 132.0),
}


def synchronous(test):
    """Run an async Pilot test with asyncio.run (no pytest asyncio plugin needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def demo_roll() -> tuple[RollNote, ...]:
    """A call (performer, beats 0-8) and its answer (rtgen, beats 8-16), the last note still sounding, and the
    answer's next notes planned ahead of the playhead (beat 16.25)."""
    call = [RollNote(i * 0.5, i * 0.5 + 0.4, 60 + (i * 5) % 12, "performer") for i in range(16)]
    answer = [RollNote(8 + i * 0.5, 8 + i * 0.5 + 0.45, 62 + (i * 7) % 12, "rtgen") for i in range(15)]
    ahead = [RollNote(16.5 + i * 0.5, 16.95 + i * 0.5, 65 + (i * 3) % 7, "planned") for i in range(3)]
    return (*call, *answer, RollNote(15.5, None, 67, "rtgen"), *ahead)


def demo_snapshot(**changes: object) -> Snapshot:
    snap = Snapshot(
        genres=GENRES,
        controls=Controls(weights={"folk": 5.0, "fiddle": 5.0, "chorale": 2.0, "renaissance": 1.0}),
        mode="call-and-response",
        playing=True,
        tempo_bpm=120.0,
        clock_source="internal",
        current_beat=16.25,
        backend="UNIX_JACK",
        in_port="rtgen in",
        out_port="rtgen out",
        step_p99_ms=0.62,
        send_error_p99_ms=0.31,
        notes_in=16,
        notes_out=16,
        recording="/home/performer/Music/rtgen/take-2026-11-22-0941.mid",
        preset="case-study-5-5-5",
        roll=demo_roll(),
        heard={"folk": 0.62, "fiddle": 0.3, "chorale": 0.05, "renaissance": 0.03},
        log=("loaded folk, fiddle, chorale, renaissance on cpu", "playing call-and-response at 120.0 BPM"),
    )
    return dataclasses.replace(snap, **changes)


class FakeDaemon:
    """Records commands; applies them like the daemon; a new snapshot object only after a change."""

    gone: str | None = None  # the daemon's goodbye, once it said one
    answering = True

    def __init__(self, snap: Snapshot | None = None, *, applies: bool = True) -> None:
        self.snap = snap or demo_snapshot()
        self.applies = applies  # False: a daemon whose engine thread has not caught up yet
        self.calls: list[tuple[str, object]] = []
        self.saved: list[str] = []
        self.errors: list[str] = []  # reported by the daemon, not yet shown

    def _change(self, **changes: object) -> None:
        if self.applies:
            self.snap = dataclasses.replace(self.snap, **changes)

    def snapshot(self) -> Snapshot:
        return self.snap

    def set_controls(self, **changes: object) -> None:
        controls = self.snap.controls.replace(**changes)  # raises ControlError like the engine
        self.calls.append(("set_controls", changes))
        self._change(controls=controls)

    def set_tempo(self, tempo_bpm: float) -> None:
        self.calls.append(("set_tempo", tempo_bpm))
        if self.snap.clock_source == "internal":
            self._change(tempo_bpm=tempo_bpm)

    def set_mode(self, mode) -> None:
        self.calls.append(("set_mode", mode))
        self._change(mode=mode)

    def start(self) -> None:
        self.calls.append(("start", None))
        self._change(playing=True)

    def stop(self) -> None:
        self.calls.append(("stop", None))
        self._change(playing=False)

    def panic(self) -> None:
        self.calls.append(("panic", None))

    def load_preset(self, name_or_path: str) -> None:
        if name_or_path not in PRESETS:
            raise RtgenError(f"no preset named {name_or_path!r}")
        self.calls.append(("load_preset", name_or_path))
        weights, tempo = PRESETS[name_or_path]
        self._change(controls=self.snap.controls.replace(weights=weights), tempo_bpm=tempo, preset=name_or_path)

    def save_preset(self, name: str) -> None:
        self.calls.append(("save_preset", name))
        self.saved.append(name)

    def load_seed(self, path: str) -> None:
        self.calls.append(("load_seed", path))

    def presets(self) -> list[tuple[str, str]]:
        return [
            (name, f"{name}: {PRESETS[name][1]:g} BPM" if name in PRESETS else "")
            for name in sorted([*PRESETS, *self.saved])
        ]

    def learn(self, control: str | None) -> None:
        self.calls.append(("learn", control))
        self._change(learning=control)

    def take_errors(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors

    def commands(self, name: str) -> list[object]:
        return [arg for called, arg in self.calls if called == name]


def test_fake_daemon_satisfies_the_protocol():
    protocol = {name for name in vars(DaemonControl) if not name.startswith("_")}
    assert protocol <= set(dir(FakeDaemon))


@synchronous
async def test_every_weight_slider_moves_its_genre():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        for number, genre in enumerate(GENRES, start=1):
            before = daemon.snap.controls.weights[genre]
            await pilot.press(str(number), "right")
            await pilot.pause()
            assert daemon.commands("set_controls")[-1]["weights"][genre] == before + 0.5
            assert app.controls[f"weights.{genre}"].value == before + 0.5
        await pilot.press("2", "left", "left")
        assert daemon.snap.controls.weights["fiddle"] == 4.5
        assert daemon.snap.controls.weights["folk"] == 5.5  # earlier moves kept


@synchronous
async def test_every_other_control_reaches_the_daemon():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t", "right", "u", "left", "b", "right", "shift+right")
        await pilot.press("m", "f", "a", "k", "y")
        await pilot.pause()
    changes = daemon.commands("set_controls")
    assert changes[0] == {"temperature": 1.05}
    assert changes[1] == {"top_p": 0.95}
    assert daemon.commands("set_tempo") == [121.0, 131.0]
    assert daemon.commands("set_mode") == ["duet"]
    assert changes[2:] == [{"method": "product"}, {"sampling": "argmax"}, {"scale_lock": True}, {"key": "C major"}]


@synchronous
async def test_every_steering_control_is_a_slider_that_reaches_the_daemon():
    daemon = FakeDaemon()
    app = make_app(daemon)
    steering = ("repeat", "key_prior", "density", "register", "register_width", "rhythm_temperature")
    steering += ("pitch_temperature", "motif")
    async with app.run_test(size=(100, 30)) as pilot:
        for control in steering:
            app.controls[control].focus()
            await pilot.press("right")
        await pilot.pause()
        await pilot.press("w")  # follow me
        await pilot.pause()
    moved = {name for change in daemon.commands("set_controls") for name in change}
    assert moved == {*steering, "follow"} and daemon.snap.controls.follow is True
    assert daemon.snap.controls.density == 0.25 and daemon.snap.controls.register == 1
    assert daemon.snap.controls.motif == 0.05


@synchronous
async def test_external_clock_makes_tempo_read_only():
    daemon = FakeDaemon(demo_snapshot(clock_source="external"))
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("b", "right", "right")
        assert app.controls["tempo_bpm"].read_only
    assert daemon.commands("set_tempo") == []


@synchronous
async def test_loading_a_preset_changes_weights_and_tempo():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await pilot.pause()
        await pilot.press("down", "enter")  # the list opens on the first preset; down picks "jig"
        await pilot.pause(0.2)
        assert daemon.commands("load_preset") == ["jig"]
        assert app.controls["weights.fiddle"].value == 9.0
        assert app.controls["weights.chorale"].value == 0.0
        assert app.controls["tempo_bpm"].value == 132.0


@synchronous
async def test_saving_a_preset_asks_for_a_name():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        await pilot.press(*["backspace"] * 20, *"gig night", "enter")
        await pilot.pause()
    assert daemon.commands("save_preset") == ["gig night"]


@synchronous
async def test_a_seed_phrase_is_read_from_a_file_the_performer_names():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        await pilot.press(*"takes/last.mid", "enter")
        await pilot.pause()
    assert daemon.commands("load_seed") == ["takes/last.mid"]


@synchronous
async def test_panic_and_transport():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("x", "space")
        await pilot.pause(0.2)
        await pilot.press("space")
    assert [name for name, _ in daemon.calls] == ["panic", "stop", "start"]


@synchronous
async def test_midi_learn_for_the_focused_control():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t", "l")
        await pilot.pause(0.2)
        assert daemon.commands("learn") == ["temperature"]
        assert app.controls["temperature"].learning
        assert "LEARN temperature" in str(status_text(app.snap, 100))
        await pilot.press("l")
        await pilot.pause(0.2)
        assert daemon.commands("learn") == ["temperature", None]
        assert not app.controls["temperature"].learning


@synchronous
async def test_a_cc_move_in_the_daemon_moves_the_slider():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        daemon.snap = demo_snapshot(controls=daemon.snap.controls.replace(temperature=1.5))
        await pilot.pause(0.2)
        assert app.controls["temperature"].value == 1.5


@synchronous
async def test_the_roll_keeps_moving_under_a_modal_screen():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("p")
        await pilot.pause()
        daemon.snap = dataclasses.replace(daemon.snap, current_beat=24.0, log=(*daemon.snap.log, "answer 2"))
        await pilot.pause(0.4)
        assert app.roll.current_beat == 24.0
        assert "answer 2" in str(app.log_panel.render())
        await pilot.press("escape")
    assert daemon.commands("load_preset") == []


@synchronous
async def test_all_weights_zero_is_refused_and_the_slider_returns():
    weights = {"folk": 0.5, "fiddle": 0.0, "chorale": 0.0, "renaissance": 0.0}
    daemon = FakeDaemon(demo_snapshot(controls=Controls(weights=weights)))
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("1", "left")
        await pilot.pause(0.2)
        assert daemon.commands("set_controls") == []
        daemon.snap = dataclasses.replace(daemon.snap, current_beat=20.0)  # a fresh snapshot arrives
        await pilot.pause(0.2)
        assert app.controls["weights.folk"].value == 0.5


@synchronous
async def test_a_lagging_daemon_does_not_make_the_slider_flicker():
    daemon = FakeDaemon(applies=False)
    app = make_app(daemon)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t", "right")
        daemon.snap = dataclasses.replace(daemon.snap, current_beat=17.0)  # still the old temperature
        await pilot.pause(0.2)
        assert app.controls["temperature"].value == 1.05
        app.controls["temperature"].release()
        daemon.snap = dataclasses.replace(daemon.snap, current_beat=18.0)
        await pilot.pause(0.2)
        assert app.controls["temperature"].value == 1.0


@synchronous
async def test_usable_at_80x24():
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for widget in app.controls.values():  # the panel scrolls: a focused control is brought into view
            widget.focus()
            await pilot.pause()
            region = widget.region
            assert region.width >= 30 and region.height == 1, widget.control
            assert 0 <= region.y < 24
            shown = str(widget.render())
            assert (
                widget.control in {"mode", "method", "sampling", "scale_lock", "follow", "key"}
                or "█" in shown
                or "░" in shown
            )
        await pilot.press("p", "escape", "s", "escape", "tab", "right")
    assert daemon.commands("set_controls")


def test_fps_is_capped():
    assert make_app(FakeDaemon(), fps=120).fps == 30
    assert make_app(FakeDaemon()).fps == 20


def test_slider_steps_stay_in_range():
    slider = Slider("top_p", "top-p", 0.95, low=0.05, high=1.0, step=0.05)
    assert slider.stepped(1) == 1.0
    assert slider.stepped(5) == 1.0
    assert slider.stepped(-1) == 0.9
    assert slider.stepped(-100) == 0.05
    assert isinstance(slider, ControlWidget)


def test_roll_window_and_pitch_layout():
    start, end = window(16.1, 40)
    assert end == 16.25 + AHEAD_BEATS and start == end - 40 / COLS_PER_BEAT
    assert playhead_column(16.1, 40) == 40 - AHEAD_BEATS * COLS_PER_BEAT - 1  # the cell 16.0-16.25
    assert pitch_rows([60, 71], 12) == (71, 1)
    top, per_row = pitch_rows([36, 96], 10)
    assert per_row == 7 and top - 10 * per_row < 36 <= top
    assert pitch_name(60) == "C4" and pitch_name(61) == "C#3"[:2] + "4"


def test_roll_cells_by_source_and_time():
    notes = (
        RollNote(0.0, 1.0, 60, "performer"),
        RollNote(0.5, 1.5, 60, "rtgen"),
        RollNote(1.5, None, 62, "rtgen"),
        RollNote(2.5, 3.0, 64, "planned"),
        RollNote(3.5, None, 62, "planned"),  # its note-off is not generated yet: one cell
    )
    grid, top, per_row = occupancy(notes, 2.0, 16, 5)  # 16 cells = beats 0-4; now is beat 2
    row60, row62, row64 = ((top - p) // per_row for p in (60, 62, 64))
    assert grid[row60][:6] == [1, 1, 3, 3, 2, 2]
    assert grid[row62][6:8] == [2, 2] and grid[row62][8:] == [0, 0, 0, 0, 0, 0, 4, 0]  # sounding up to now
    assert grid[row64][8:] == [0, 0, 4, 4, 0, 0, 0, 0]  # planned, right of the playhead


def test_roll_renders_bar_lines_and_labels():
    text = render_roll(demo_roll(), 16.0, GUTTER_CELLS + 64, 12)
    lines = text.plain.split("\n")
    assert len(lines) == 12 and all(len(line) == GUTTER_CELLS + 64 for line in lines)
    top, per_row = pitch_rows([n.pitch for n in demo_roll()], 12)  # 60-73 in 12 rows: 2 semitones a row
    assert per_row == 2 and lines[0].startswith(pitch_name(top))
    assert lines[-1].startswith(pitch_name(top - 12 * per_row + 1))
    empty_row = next(line for line in lines if "█" not in line)
    assert empty_row[GUTTER_CELLS] == "┊"  # the window starts at beat 2 (now is 16, two beats are ahead)
    assert empty_row[GUTTER_CELLS + 2 * COLS_PER_BEAT] == "│"  # beat 4 is a bar line
    assert empty_row[GUTTER_CELLS + 14 * COLS_PER_BEAT] == "▏"  # the playhead, at beat 16
    styles = {str(span.style) for span in text.spans}
    assert {"bold cyan", "bold magenta"} <= styles


def test_the_roll_plans_ahead_until_a_note_sounds_or_the_music_is_silenced():
    roll = Roll()
    on, off = mido.Message("note_on", note=67, velocity=90), mido.Message("note_off", note=67)
    roll.plan(4.0, on)
    roll.plan(4.5, off)
    roll.plan(5.0, on)
    assert [(n.start_beat, n.end_beat, n.source) for n in roll.notes()] == [
        (4.0, 4.5, "planned"),
        (5.0, None, "planned"),
    ]
    roll.rtgen(3.99, on)  # sent (a period early): it sounds, and is no longer ahead
    assert [(n.start_beat, n.source) for n in roll.notes()] == [(3.99, "rtgen"), (5.0, "planned")]
    roll.unplan_after(4.2)  # silenced: the note at 5 will not come
    assert [n.source for n in roll.notes()] == ["rtgen"]
    snap = demo_snapshot(roll=(RollNote(16.5, 17.0, 67, "planned"),))
    assert from_json(json.loads(json.dumps(to_json(snap)))).roll == snap.roll


def test_status_and_log_text():
    snap = demo_snapshot(late_events=3)
    text = status_text(snap, 200).plain
    for needle in ("▶ playing", "bar 5 beat 1.2", "120.0 bpm internal", "UNIX_JACK", "cpu", "step p99 0.62ms"):
        assert needle in text
    assert "late 3" in text and "take-2026-11-22-0941.mid" in text
    log = log_text(("a", "b", "engine error: boom"), 40, 2)
    assert log.plain == "b\nengine error: boom"
    assert any(str(span.style) == "red" for span in log.spans)


def test_roll_prints_on_a_rich_console():
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(render_roll(demo_roll(), 16.0, 100, 20))
    assert "█" in console.export_text()


@pytest.mark.parametrize(("host", "port"), [("127.0.0.1", 8000), ("0.0.0.0", 9123)])
def test_web_server_is_built_with_host_port_and_command(host, port):
    from rtgen.tui import make_server

    server = make_server("rtgen run --preset jig", host=host, port=port)
    assert (server.command, server.host, server.port) == ("rtgen run --preset jig", host, port)
    assert server.public_url == f"http://{host}:{port}"


def test_web_server_refuses_bad_settings():
    from rtgen.tui import make_server

    with pytest.raises(RtgenError, match="port 0"):
        make_server("rtgen run", port=0)
    with pytest.raises(RtgenError, match="command"):
        make_server("  ")


def test_serve_web_defaults_to_loopback(monkeypatch):
    from textual_serve.server import Server

    from rtgen.tui import serve_web

    served = []
    monkeypatch.setattr(Server, "serve", lambda self, debug=False: served.append((self.host, self.port, self.command)))
    serve_web("rtgen run")
    assert served == [("127.0.0.1", 8000, "rtgen run")]


def test_serve_web_answers_on_loopback():
    """The real server in a subprocess: its page points the browser at its websocket on 127.0.0.1."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = f"from rtgen.tui import serve_web; serve_web('rtgen run', port={port})"
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, page = time.monotonic() + 20, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.1)
        assert page is not None, "the web UI did not answer on loopback"
        assert f"ws://127.0.0.1:{port}/ws" in page and "rtgen" in page
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_attach_web_serves_one_attached_ui_per_tab_and_owns_no_daemon(monkeypatch):
    from textual_serve.server import Server

    from rtgen.cli import main

    served = []
    monkeypatch.setattr(Server, "serve", lambda self, debug=False: served.append((self.host, self.port, self.command)))
    assert main(["attach", "--web", "--osc-port", "9333", "--port", "8123"]) == 0
    [(host, port, command)] = served
    assert (host, port) == ("127.0.0.1", 8123)
    assert command.endswith("-m rtgen attach --tab --osc-host 127.0.0.1 --osc-port 9333")  # each tab a client


@synchronous
async def test_a_silent_daemon_is_reported_once_and_its_return_too():
    daemon = FakeDaemon()
    app = make_app(daemon)
    shown: list[str] = []
    notify = app.notify
    app.notify = lambda text, **kw: (shown.append(text), notify(text, **kw))[1]
    async with app.run_test(size=(100, 30)) as pilot:
        daemon.answering = False
        await pilot.pause(0.3)
        daemon.answering = True
        await pilot.pause(0.3)
    assert [s for s in shown if "answer" in s] == [
        "the daemon is not answering (no status for 2 s)",
        "the daemon answers again",
    ]
