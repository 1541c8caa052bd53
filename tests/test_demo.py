"""``rtgen demo``: its text piano roll fits the terminal and counts bars from the call's first, end to end."""

from __future__ import annotations

import mido
import pytest

from rtgen.cli.textroll import MIN_WIDTH, render_roll
from rtgen.daemon.recording import read_take


def notes(pitches_and_beats: list[tuple[int, float, float]]) -> list[tuple[float, mido.Message]]:
    """(pitch, start beat, end beat) triples as (beat, message) events."""
    events = []
    for pitch, start, end in pitches_and_beats:
        events.append((start, mido.Message("note_on", note=pitch, velocity=80)))
        events.append((end, mido.Message("note_off", note=pitch)))
    return events


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_text_roll_marks_call_and_answer_apart():
    call = notes([(60, 0.0, 1.0)])
    answer = notes([(72, 4.0, 4.5)])
    roll = render_roll(call, answer).splitlines()
    assert roll[0].split()[:2] == ["|bar", "1"]
    rows = {line.split()[0]: line for line in roll[1:-1]}
    assert set(rows) == {"C5", "~", "C4"}
    assert "#===" in rows["C4"] and "O-" in rows["C5"]


def test_a_short_roll_keeps_sixteenths_and_a_long_one_fits_any_width():
    call = notes([(60 + i % 5, i * 0.5, i * 0.5 + 0.25) for i in range(16)])  # two bars
    answer = notes([(67 - i % 7, 8 + i * 0.25, 8 + i * 0.25 + 0.25) for i in range(96)])  # six bars of sixteenths
    short = render_roll(call, [], width=80)
    assert "(columns are sixteenths)" in short and widest(short) <= 80
    for width in (MIN_WIDTH, 60, 80, 100, 141, 200):
        roll = render_roll(call, answer, width=width)
        assert widest(roll) <= width, width
        rulers = [line for line in roll.splitlines() if line.lstrip().startswith("|bar")]
        bars = [int(bar.split()[1]) for ruler in rulers for bar in ruler.split("|")[1:]]
        assert bars == list(range(1, 9)), width  # every bar once, in order, across the stacked systems
    assert "(columns are eighths)" in render_roll(call, answer, width=80)
    assert len([line for line in render_roll(call, answer, width=MIN_WIDTH).splitlines() if "|bar" in line]) > 1


def test_a_call_played_a_hair_early_still_starts_bar_1():
    call = notes([(62, -0.02, 1.0), (64, 1.0, 2.0)])
    roll = render_roll(call, notes([(67, 4.0, 5.0)]))
    assert roll.splitlines()[0].split()[:2] == ["|bar", "1"]
    d4 = next(line for line in roll.splitlines() if line.split()[0] == "D4")
    assert d4.split("|")[1].startswith("#")  # on the first column, not cut off before it


def test_demo_fits_80_columns_and_starts_at_bar_1(tmp_path, capsys, monkeypatch):
    from rtgen.cli import main
    from rtgen.nets.checkpoint import installed_models

    if not [name for name, _ in installed_models() if name != "multi"]:
        pytest.skip("no shipped models installed")
    monkeypatch.setenv("COLUMNS", "80")  # what shutil.get_terminal_size reads first: an 80-column terminal
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "-o", "demo.mid", "--bars", "2"]) == 0
    printed = capsys.readouterr().out
    assert "#" in printed and "O" in printed and "answer:" in printed
    assert widest(printed) <= 80
    assert printed.splitlines()[0].split()[:2] == ["|bar", "1"]
    tracks = read_take(tmp_path / "demo.mid")
    first_call = min(beat for beat, m in tracks["performer"] if m.type == "note_on")
    assert first_call < 0.1  # the .mid starts at bar 1 too
    assert any(m.type == "note_on" for _, m in tracks["rtgen"])
