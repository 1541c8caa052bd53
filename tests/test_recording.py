"""Recording: a two-track take on beats, atomic periodic flushes, every note closed."""

from __future__ import annotations

import datetime

import mido

from rtgen.daemon.recording import Recorder, read_take, take_path
from rtgen.midi.jack import wait_until


def beat_at(t: float) -> float:
    return t * 2.0  # 120 BPM


def note(kind: str, pitch: int, channel: int = 0) -> mido.Message:
    return mido.Message(kind, note=pitch, velocity=90 if kind == "note_on" else 0, channel=channel)


def test_take_has_performer_and_rtgen_tracks_on_beats(tmp_path):
    recorder = Recorder(tmp_path / "take.mid", beat_at, tempo_bpm=120.0)
    recorder.add("performer", 0.5, note("note_on", 60))
    recorder.add("performer", 1.0, note("note_off", 60))
    recorder.add("performer", 1.0, mido.Message("sysex", data=[1]))  # not recorded
    recorder.add("performer", 1.1, mido.Message("clock"))  # not recorded
    recorder.add("rtgen", 2.0, note("note_on", 67, channel=1))
    recorder.add("rtgen", 2.25, note("note_off", 67, channel=1))
    path = recorder.close()
    midi = mido.MidiFile(path)
    assert midi.type == 1 and len(midi.tracks) == 3
    tracks = read_take(path)
    assert [(b, m.type, m.note) for b, m in tracks["performer"]] == [(1.0, "note_on", 60), (2.0, "note_off", 60)]
    assert [(b, m.type, m.channel) for b, m in tracks["rtgen"]] == [(4.0, "note_on", 1), (4.5, "note_off", 1)]
    tempi = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempi == [mido.bpm2tempo(120.0)]


def test_every_flush_is_valid_midi_with_open_notes_closed(tmp_path):
    recorder = Recorder(tmp_path / "take.mid", beat_at, tempo_bpm=100.0)
    recorder.add("rtgen", 0.0, note("note_on", 60))
    recorder.add("rtgen", 0.5, note("note_on", 64))
    recorder.add("rtgen", 0.7, note("note_off", 99))  # orphan note-off: dropped
    recorder.tempo(2.0, 90.0)
    recorder.flush()
    assert not (tmp_path / "take.mid.tmp").exists()
    events = read_take(tmp_path / "take.mid")["rtgen"]
    ons = sum(1 for _, m in events if m.type == "note_on" and m.velocity)
    offs = sum(1 for _, m in events if m.type == "note_off")
    assert ons == offs == 2
    tempi = [m.tempo for m in mido.MidiFile(tmp_path / "take.mid").tracks[0] if m.type == "set_tempo"]
    assert tempi == [mido.bpm2tempo(100.0), mido.bpm2tempo(90.0)]


def test_flushes_encode_each_event_once_and_keep_notes_paired_across_them(tmp_path):
    recorder = Recorder(tmp_path / "take.mid", beat_at, tempo_bpm=120.0)
    recorder.add("rtgen", 1.0, note("note_on", 60))
    recorder.flush()  # 60 is closed at the end of this version of the file...
    assert [(b, m.type) for b, m in read_take(tmp_path / "take.mid")["rtgen"]] == [(2.0, "note_on"), (2.0, "note_off")]
    recorder.add("rtgen", 0.5, note("note_off", 60))  # ...and really ends in the next; stamped early: kept in order
    recorder.add("rtgen", 1.5, note("note_off", 60))  # a second note-off for it: an orphan, dropped
    recorder.add("rtgen", 2.0, note("note_on", 62))
    recorder.flush()
    events = [(b, m.type, m.note) for b, m in read_take(tmp_path / "take.mid")["rtgen"]]
    assert events == [(2.0, "note_on", 60), (2.0, "note_off", 60), (4.0, "note_on", 62), (4.0, "note_off", 62)]
    assert mido.MidiFile(tmp_path / "take.mid").length > 0


def test_background_flush_keeps_the_file_current(tmp_path):
    recorder = Recorder(tmp_path / "take.mid", beat_at, tempo_bpm=120.0, flush_interval_s=0.01)
    recorder.start()
    recorder.add("performer", 0.0, note("note_on", 60))
    wanted = recorder.flushes + 3
    assert wait_until(lambda: recorder.flushes >= wanted, timeout_s=5)
    assert read_take(tmp_path / "take.mid")["performer"][0][1].note == 60
    recorder.close()


def test_take_paths_are_dated_and_unique(tmp_path):
    moment = datetime.datetime(2026, 11, 22, 9, 30, 5)
    first = take_path(tmp_path, moment)
    assert first.name == "rtgen-20261122-093005.mid"
    first.write_bytes(b"")
    assert take_path(tmp_path, moment).name == "rtgen-20261122-093005-1.mid"
