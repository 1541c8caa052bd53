"""The TUI reads cleanly at 80x24 and 100x30: one-row status lines, the whole footer, wrapped log lines.

Pilot runs the app over the FakeDaemon of ``test_tui``; the screen is read
back as text rows (what a terminal would show), and snapshot tests keep the
picture at both sizes.
"""

from __future__ import annotations

import dataclasses

import pytest
from rich.text import Text
from test_tui import FakeDaemon, demo_snapshot, synchronous

from rtgen.tui import make_app
from rtgen.tui.status import fit, log_text, part, position, status_text

SIZES = [(80, 24), (100, 30)]
LONG_LOG = (
    "loaded folk, fiddle, chorale, renaissance on cpu",
    "no MIDI input (no MIDI system: no JACK server is running); playing to /home/performer/take.mid only",
    "playing call-and-response at 120.0 BPM",
)


def screen_rows(app) -> list[str]:
    """The screen as the terminal shows it, one string a row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def widget_rows(app, widget) -> list[str]:
    """The rows of the screen inside ``widget``'s content region."""
    region = widget.content_region
    return [row[region.x : region.right] for row in screen_rows(app)[region.y : region.bottom]]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen_snapshot(snap_compare, size):
    async def read_the_toast(pilot) -> None:
        await pilot.pause()
        pilot.app.clear_notifications()  # "recording the take to ...", tested on its own below
        await pilot.pause(0.1)

    app = make_app(FakeDaemon(demo_snapshot(log=LONG_LOG)))
    assert snap_compare(app, terminal_size=size, run_before=read_the_toast)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@synchronous
async def test_status_lines_fit_one_row_each_and_the_footer_shows_every_key(size):
    app = make_app(FakeDaemon(demo_snapshot(late_events=2, learning=None)))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        transport, metrics = widget_rows(app, app.status_bar)
        assert app.status_bar.content_region.height == 2
        assert transport.startswith("▶ playing │ bar 5 beat 1.2 │ 120.0 bpm") and "call-and-response" in transport
        assert "late 2" in metrics and "send p99 0.31ms" in metrics and "●" in metrics
        for row in (transport, metrics):
            assert not row.rstrip().endswith("…"), row
        footer = screen_rows(app)[-1]
        shown = [b for b in app.active_bindings.values() if b.binding.show]
        assert {b.binding.key for b in shown} >= {"q", "space", "x", "p", "s", "l"}
        for active in shown:
            binding = active.binding
            if binding.group is not None:  # a group shows its keys together, then its description
                assert binding.key_display in footer and f" {binding.group.description}" in footer
            else:
                assert f"{binding.key_display or binding.key} {binding.description}" in footer, binding.description
        assert footer.rstrip().endswith("Learn")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@synchronous
async def test_log_lines_wrap_instead_of_being_cut(size):
    daemon = FakeDaemon(demo_snapshot(log=LONG_LOG[:1]))
    app = make_app(daemon)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        daemon.snap = dataclasses.replace(daemon.snap, log=LONG_LOG[::2], current_beat=17.0)
        await pilot.pause(0.3)
        rows = [row.rstrip() for row in widget_rows(app, app.log_panel) if row.strip()]
        assert " ".join(row.strip() for row in rows) == " ".join(LONG_LOG[::2])
        assert not any(row.endswith("…") for row in rows)


@synchronous
async def test_a_resized_terminal_refits_the_status_without_a_new_snapshot():
    app = make_app(FakeDaemon())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "preset case-study-5-5-5" in widget_rows(app, app.status_bar)[0]
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        transport = widget_rows(app, app.status_bar)[0]
        assert transport.rstrip().endswith("case-study-5-5-5") and "preset" not in transport


@pytest.mark.parametrize(
    ("beat", "shown"),
    [(0.0, "bar 1 beat 1.0"), (3.97, "bar 1 beat 4.9"), (7.97, "bar 2 beat 4.9"), (4.0, "bar 2 beat 1.0")],
)
def test_the_position_never_shows_a_fifth_beat(beat, shown):
    assert position(beat) == shown


def test_no_position_in_a_long_run_has_a_beat_past_4_9():
    beats = {position(n / 97).split()[-1] for n in range(97 * 64)}
    assert max(beats, key=float) == "4.9" and min(beats, key=float) == "1.0"


@pytest.mark.parametrize("width", [40, 50, 78, 98, 140])
def test_status_lines_fit_any_width_and_keep_what_matters(width):
    snap = demo_snapshot(learning="temperature", late_events=7)
    transport, metrics = status_text(snap, width).split("\n")
    assert transport.cell_len <= width and metrics.cell_len <= width
    assert transport.plain.startswith("▶") and "LEARN temperature" in transport.plain
    assert "late 7" in metrics.plain


def test_fit_shortens_before_it_drops_and_drops_the_least_important_first():
    parts = [part(0, "always"), part(2, "second long", "second"), part(3, "third")]
    assert fit(parts, 80).plain == "always │ second long │ third"
    assert fit(parts, 24).plain == "always │ second │ third"
    assert fit(parts, 20).plain == "always │ second"
    assert fit(parts, 8).plain == "always"
    assert fit([part(0, Text("x" * 10))], 5).plain == "xxxx…"


def test_log_text_wraps_keeps_the_newest_and_marks_errors():
    lines = ("first line", "engine error: boom went the engine thread", "newest")
    text = log_text(lines, 20, 4)
    assert text.plain.split("\n") == ["engine error: boom", "  went the engine", "  thread", "newest"]
    assert any(str(span.style) == "red" for span in text.spans)
    tall = log_text(("word " * 40,), 20, 3).plain.split("\n")
    assert len(tall) == 3 and tall[-1].endswith("…") and all(len(row) <= 20 for row in tall)


@synchronous
async def test_the_take_path_is_told_when_recording_starts():
    daemon = FakeDaemon(demo_snapshot(recording=None))
    app = make_app(daemon)
    told: list[str] = []
    notify = app.notify
    app.notify = lambda text, **kw: (told.append(text), notify(text, **kw))[1]
    path = "/home/performer/Music/rtgen/rtgen-20261122-094100.mid"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert told == []
        daemon.snap = dataclasses.replace(daemon.snap, recording=path, current_beat=17.0)
        await pilot.pause(0.3)
        daemon.snap = dataclasses.replace(daemon.snap, current_beat=18.0)  # the same take: told once
        await pilot.pause(0.3)
        assert told == [f"recording the take to {path}"]
        assert "● " in widget_rows(app, app.status_bar)[1]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@synchronous
async def test_the_preset_list_shows_each_description(size):
    daemon = FakeDaemon()
    app = make_app(daemon)
    async with app.run_test(size=size) as pilot:
        await pilot.press("p")
        await pilot.pause()
        rows = screen_rows(app)
        for name, description in daemon.presets():
            assert any(name in row for row in rows) and any(description in row for row in rows), name
        await pilot.press("down", "enter")
        await pilot.pause(0.2)
    assert daemon.commands("load_preset") == ["jig"]
