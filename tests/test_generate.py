"""Offline generation over tiny real checkpoints: bars, playable MIDI, byte-identical seeds, MusicXML."""

from __future__ import annotations

import argparse
from fractions import Fraction

import mido
import pytest
from engine_models import GENRES, make_models, restore_torch_threads  # noqa: F401

from rtgen.cli import generate_cmd
from rtgen.data.seeds import builtin
from rtgen.engine.controls import Controls, parse_weights
from rtgen.engine.offline import generate_notes, piece_stats, write_midi, write_musicxml
from rtgen.engine.warm import Engine
from rtgen.errors import RtgenError

pytestmark = pytest.mark.usefixtures("with_tiny_models")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    generate_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["generate", *argv])
    return args.handler(args)


def test_generation_fills_the_bars_and_stops_there() -> None:
    engine = Engine.from_names(list(GENRES), "cpu", Controls(weights={"folk": 1}), conditional=None, seed=1)
    notes = generate_notes(engine, builtin("folk"), bars=4, seed=1)
    assert notes and all(0 <= n.start < 16 and n.end <= 16 for n in notes)
    assert max(n.end for n in notes) > 8
    stats = piece_stats(notes, 4)
    assert stats.notes == len(notes) and stats.pitch_min <= stats.mean_pitch <= stats.pitch_max


def test_same_seed_writes_byte_identical_midi_and_another_seed_does_not(tmp_path, capsys) -> None:
    outs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        out = tmp_path / f"{name}.mid"
        assert _cli(["--genres", "folk=5,fiddle=1", "--bars", "4", "--seed", str(seed), "-o", str(out)]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] != outs[2]
    assert "notes/bar" in capsys.readouterr().out


def test_midi_file_is_playable_with_tempo_meter_name_and_no_stuck_notes(tmp_path) -> None:
    notes = [*builtin("chorale"), *builtin("folk")]
    path = write_midi(notes, tmp_path / "x.mid", tempo_bpm=90, name="test piece")
    midi = mido.MidiFile(str(path))
    messages = list(midi.tracks[0])
    kinds = [m.type for m in messages]
    assert kinds[:3] == ["track_name", "set_tempo", "time_signature"]
    assert round(mido.tempo2bpm(messages[1].tempo)) == 90 and messages[2].numerator == 4
    sounding, now = set(), 0
    for message in messages:
        now += message.time
        if message.type == "note_on":
            assert message.note not in sounding
            sounding.add(message.note)
        elif message.type == "note_off":
            sounding.discard(message.note)
    assert not sounding and now == 8 * 480


def test_musicxml_opens_again_with_the_same_notes(tmp_path) -> None:
    from music21 import converter

    notes = [*builtin("renaissance"), *[n for n in builtin("fiddle") if n.start >= 4]]
    notes.append(type(notes[0])(Fraction(7), 60, Fraction(1, 3)))
    path = write_musicxml(notes, tmp_path / "x.musicxml", tempo_bpm=100, title="t")
    score = converter.parse(str(path))
    pitches = sorted(p.midi for n in score.recurse().notes for p in n.pitches if not n.tie or n.tie.type == "start")
    assert pitches == sorted(n.pitch for n in notes)
    assert len(score.parts[0].getElementsByClass("Measure")) == 2


def test_preset_flags_and_errors(tmp_path, monkeypatch) -> None:
    from pathlib import Path

    monkeypatch.setenv("RTGEN_PRESETS", str(Path(__file__).resolve().parent.parent / "presets"))
    out = tmp_path / "p.mid"
    assert _cli(["--preset", "case-study-10-5-1", "--bars", "2", "--temperature", "0.8", "-o", str(out)]) == 0
    assert mido.MidiFile(str(out)).length > 0
    assert _cli(["--genres", "folk=1,fiddle=2", "--method", "conditional", "--bars", "2", "-o", str(out)]) == 0
    assert parse_weights("folk=5, fiddle") == {"folk": 5.0, "fiddle": 1.0}
    with pytest.raises(RtgenError, match="'lots' of 'folk'"):
        parse_weights("folk=lots")
    with pytest.raises(RtgenError, match="no model named 'jazz'"):
        _cli(["--genres", "jazz=1", "-o", str(out)])


def test_long_pieces_report_each_bar_once_in_order() -> None:
    engine = Engine.from_names(list(GENRES), "cpu", Controls(weights={"folk": 1}), conditional=None, seed=1)
    bars: list[int] = []
    generate_notes(engine, builtin("folk"), bars=6, seed=1, on_bar=bars.append)
    assert bars == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("tempo", ["0", "1e9", "nan"])
def test_a_tempo_out_of_range_is_one_line_and_exit_code_2(tempo, tmp_path, capsys) -> None:
    from rtgen.cli import main

    out = tmp_path / "x.mid"
    assert main(["generate", "--tempo", tempo, "--bars", "1", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtgen: error: tempo_bpm ") and err.endswith("outside 20-400\n") and err.count("\n") == 1
    assert not out.exists()


def test_run_and_generate_pick_the_same_default_genres(tmp_path, monkeypatch) -> None:
    """Without --genres both play ``genre_models()``: no VAE, no genre-conditioned model, one vocabulary."""
    from rtgen.daemon.wiring import shipped_genres
    from rtgen.data.timestep import TimeStepEncoding
    from rtgen.encoding import EventEncoding
    from rtgen.nets.checkpoint import CONDITIONAL_MODEL, save_checkpoint
    from rtgen.nets.config import NetConfig
    from rtgen.nets.recurrent import RecurrentLM

    def model(encoding, genre_count: int = 0) -> RecurrentLM:
        return RecurrentLM(NetConfig(len(encoding), embedding_dim=4, hidden_sizes=(8,), genre_count=genre_count))

    shipped, user = tmp_path / "shipped", tmp_path / "user"
    event, steps = EventEncoding(), TimeStepEncoding()
    save_checkpoint(shipped / "folk", model(event), event, {"genre": "folk"})
    save_checkpoint(user / "jigs", model(event), event, {"genre": "jigs"})
    save_checkpoint(user / "steps", model(steps), steps, {"genre": "steps"})  # another vocabulary: cannot fuse
    save_checkpoint(user / CONDITIONAL_MODEL, model(event, genre_count=2), event, {"genres": ["folk", "jigs"]})
    monkeypatch.setenv("RTGEN_SHIPPED_MODELS", str(shipped))
    monkeypatch.setenv("RTGEN_MODELS", str(user))
    parser = argparse.ArgumentParser()
    generate_cmd.register(parser.add_subparsers())
    generated = generate_cmd.build_preset(parser.parse_args(["generate", "-o", str(tmp_path / "x.mid")]))
    assert list(generated.controls.weights) == shipped_genres() == ["folk", "jigs"]


def test_a_phrase_of_given_length_is_cut_there_and_the_piece_begins_on_its_next_bar_line() -> None:
    """A real piece's first two bars prime the stream: a last note that ends early leaves a rest to beat 8, one tied
    over the bar line is cut there, so the piece (and its sections' bar lines) starts on bar 3's downbeat."""
    from rtgen.encoding import Note
    from rtgen.evaluate.music import Counted

    engine = Engine.from_names(list(GENRES), "cpu", Controls(weights={"folk": 1}), conditional=None, seed=1)
    early = [Note(Fraction(0), 60, Fraction(2)), Note(Fraction(2), 62, Fraction(9, 2))]  # ends on beat 6.5
    tied = [*early, Note(Fraction(7), 64, Fraction(3))]  # sounds on to beat 10
    for phrase in (early, tied):
        counted = Counted(engine)
        notes = generate_notes(counted, phrase, bars=1, seed=1, phrase_beats=Fraction(8))
        assert counted.origin == 8.0 and all(n.start < 4 for n in notes)
    counted = Counted(engine)
    generate_notes(counted, early, bars=1, seed=1)
    assert counted.origin == 6.5  # without a length the piece begins where the phrase's last note ends
