"""The corpus pipeline: file readers, bad input, split, transposition, cache, CLI, and real music21 pieces."""

from __future__ import annotations

import json
import os
import random
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest

from rtgen.cli import main
from rtgen.data.corpus import CorpusError, load_notes, load_tokens, music21_corpus_root, resolve_source
from rtgen.data.files import melody_line, read_midi, read_piece
from rtgen.data.timestep import TimeStepEncoding
from rtgen.data.tokens import SHIFTS, encode_pieces, split_valid, transposition_table
from rtgen.encoding import EventEncoding, Note


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private cache, so tests neither use nor disturb the shared one."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RTGEN_CACHE_DIR", str(folder))
    return folder


def n(start, pitch, duration, velocity=80) -> Note:
    return Note(Fraction(start), pitch, Fraction(duration), velocity)


def write_midi(path: Path, tracks: list[list[tuple[int, int, int, int, int]]], ticks_per_beat: int = 480) -> Path:
    """Tracks of (on tick, off tick, pitch, velocity, channel) as a type-1 MIDI file."""
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    for notes in tracks:
        events = []
        for on, off, pitch, velocity, channel in notes:
            events.append((on, 1, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)))
            events.append((off, 0, mido.Message("note_off", note=pitch, velocity=0, channel=channel)))
        track, now = mido.MidiTrack(), 0
        for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


def tune(path: Path, shift: int = 0) -> Path:
    """A small two-track MIDI piece: a melody over a bass line, both on the beat grid."""
    melody = [(i * 240, (i + 1) * 240, 60 + shift + (i % 5), 90, 0) for i in range(16)]
    bass = [(i * 960, (i + 1) * 960, 40 + shift, 70, 1) for i in range(4)]
    return write_midi(path, [melody, bass])


@pytest.fixture
def bad_folder(tmp_path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    tune(folder / "good.mid")
    (folder / "corrupt.mid").write_bytes(random.Random(1).randbytes(500))
    (folder / "empty.mid").write_bytes(b"")
    (folder / "notes.mid").write_text("this is a text file, not music\n")
    return folder


@pytest.fixture
def folder(tmp_path) -> Path:
    """Twelve good MIDI pieces in two subfolders."""
    root = tmp_path / "tunes"
    for i in range(12):
        sub = root / ("a" if i < 6 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        tune(sub / f"t{i:02}.mid", shift=i)
    return root


# --- readers -----------------------------------------------------------------------------------------------


def test_midi_in_beats_with_velocities_and_without_drums(tmp_path):
    path = write_midi(
        tmp_path / "x.mid",
        [[(0, 480, 60, 100, 0), (480, 600, 62, 50, 0), (0, 960, 36, 127, 9)], [(240, 1200, 48, 30, 3)]],
    )
    assert read_midi(path, "all") == [n(0, 60, 1, 100), n("1/2", 48, 2, 30), n(1, 62, "1/4", 50)]
    assert read_midi(path, "melody") == [n(0, 60, 1, 100), n(1, 62, "1/4", 50)]


def test_midi_restrike_ends_the_sounding_note_and_open_notes_end_with_the_track(tmp_path):
    midi = mido.MidiFile(ticks_per_beat=100)
    track = mido.MidiTrack(
        [
            mido.Message("note_on", note=60, velocity=80, time=0),
            mido.Message("note_on", note=60, velocity=70, time=100),
            mido.Message("note_on", note=64, velocity=0, time=0),  # a note-off for a silent pitch
            mido.MetaMessage("end_of_track", time=200),
        ]
    )
    midi.tracks.append(track)
    midi.save(tmp_path / "r.mid")
    assert read_midi(tmp_path / "r.mid", "all") == [n(0, 60, 1, 80), n(1, 60, 2, 70)]


def test_melody_line_keeps_the_highest_pitch_and_cuts_overlaps():
    chordal = [n(0, 60, 2), n(0, 64, 2), n(0, 67, 1), n(1, 72, 2), n(2, 55, 1)]
    assert melody_line(chordal) == [n(0, 67, 1), n(1, 72, 1), n(2, 55, 1)]
    assert melody_line([]) == []


# --- bad input ---------------------------------------------------------------------------------------------


def test_a_folder_with_bad_files_loads_the_good_one_and_names_the_rest(bad_folder, capsys):
    notes = load_notes(bad_folder, progress=False)
    assert notes.names == ("mixed/good.mid",)
    assert notes.pieces[0] == read_midi(bad_folder / "good.mid", "melody")
    reasons = dict(notes.skipped)
    assert reasons == {
        "mixed/corrupt.mid": "not a MIDI file",
        "mixed/empty.mid": "empty",
        "mixed/notes.mid": "not a MIDI file",
    }
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "skipped 3 files: mixed/corrupt.mid (not a MIDI file), mixed/empty.mid (empty), "
        "mixed/notes.mid (not a MIDI file)"
    ]
    stats = load_tokens(bad_folder, progress=False).stats
    assert stats.pieces == 1 and stats.files == 4
    assert {name for name, _ in stats.skipped} == set(reasons)


def test_a_folder_without_usable_pieces_is_one_clear_error(bad_folder):
    (bad_folder / "good.mid").unlink()
    with pytest.raises(CorpusError, match=r"no usable pieces in .*mixed \(3 files skipped: mixed/corrupt.mid") as error:
        load_tokens(bad_folder, progress=False)
    assert "\n" not in str(error.value)
    (bad_folder.parent / "nothing").mkdir()
    (bad_folder.parent / "nothing" / "readme.txt").write_text("no music here")
    with pytest.raises(CorpusError, match=r"no usable pieces in .*nothing \(no \.mid, .* files found\)"):
        load_notes(bad_folder.parent / "nothing", progress=False)


def test_an_unknown_name_lists_the_known_corpora():
    with pytest.raises(CorpusError, match=r"no corpus 'folkk'.*essenFolksong.*ryansMammoth") as error:
        load_tokens("folkk")
    assert "\n" not in str(error.value)


@pytest.mark.skipif(music21_corpus_root() is None, reason="music21's corpus is not installed")
def test_a_corpus_name_wins_over_a_folder_of_that_name_unless_written_as_a_path(tmp_path, monkeypatch):
    (tmp_path / "bach").mkdir()
    tune(tmp_path / "bach" / "mine.mid")
    monkeypatch.chdir(tmp_path)
    chorales = resolve_source("bach")
    assert chorales.root == music21_corpus_root() / "bach" and len(chorales.files) > 300
    assert not any(p.suffix == ".rntxt" for p in chorales.files)
    assert len({p.with_suffix("") for p in chorales.files}) == len(chorales.files)  # one format per chorale
    mine = resolve_source("./bach")
    assert mine.files == (tmp_path / "bach" / "mine.mid",) and mine.piece_name(mine.files[0]) == "bach/mine.mid"


def test_bad_options_are_refused(folder):
    with pytest.raises(CorpusError, match="monophonic"):
        load_tokens(folder, TimeStepEncoding(), parts="all")
    with pytest.raises(CorpusError, match="parts"):
        load_tokens(folder, parts="bass")
    with pytest.raises(CorpusError, match="valid_fraction"):
        load_tokens(folder, valid_fraction=1.0)


# --- split, limit, transposition ---------------------------------------------------------------------------


def test_split_is_by_piece_deterministic_and_never_empty():
    names = [f"p{i}" for i in range(50)]
    valid = split_valid(names, 0.1, seed=3)
    assert valid.sum() == 5
    assert np.array_equal(valid, split_valid(names, 0.1, seed=3))
    assert not np.array_equal(valid, split_valid(names, 0.1, seed=4))
    # A piece's side does not depend on the order pieces were read in.
    shuffled = names[::-1]
    assert {n for n, v in zip(shuffled, split_valid(shuffled, 0.1, 3), strict=True) if v} == {
        n for n, v in zip(names, valid, strict=True) if v
    }
    assert split_valid(["a", "b"], 0.1).tolist().count(True) == 1
    assert not split_valid(["a"], 0.1).any()


def test_no_piece_is_on_both_sides_and_only_training_pieces_are_transposed(folder):
    corpus = load_tokens(folder, progress=False, valid_fraction=0.25)
    assert set(corpus.train_names).isdisjoint(corpus.valid_names)
    assert sorted(corpus.train_names + corpus.valid_names) == sorted(corpus.names)
    assert len(corpus.valid_names) == 3
    valid_rows = corpus.valid_piece[corpus.piece]
    assert (corpus.shift[valid_rows] == 0).all()
    assert len(corpus.valid) == 3 and len(corpus.train) == 9 * len(SHIFTS)
    assert corpus.stats.train_tokens_transposed == sum(len(s) for s in corpus.train)
    assert corpus.stats.train_tokens * len(SHIFTS) == corpus.stats.train_tokens_transposed
    assert corpus.stats.valid_tokens == sum(len(s) for s in corpus.valid)


def test_transposed_sequences_are_the_transposed_pieces_encoded(folder):
    encoding = EventEncoding()
    corpus = load_tokens(folder, encoding, parts="all", progress=False)
    read = load_notes(folder, parts="all", progress=False)
    notes = dict(zip(read.names, read.pieces, strict=True))
    for row in range(0, len(corpus.piece), 7):
        piece, shift = corpus.names[corpus.piece[row]], int(corpus.shift[row])
        expected = encoding.encode([Note(x.start, x.pitch + shift, x.duration, x.velocity) for x in notes[piece]])
        assert corpus.tokens[corpus.offsets[row] : corpus.offsets[row + 1]].tolist() == expected


@pytest.mark.parametrize("encoding", [EventEncoding(), TimeStepEncoding()], ids=["event", "timestep"])
def test_transposition_table_matches_encoding_transposed_notes(encoding):
    rng = random.Random(7)
    for _ in range(20):
        start, notes = Fraction(0), []
        for _ in range(rng.randint(1, 12)):
            duration = Fraction(rng.randint(1, 8), 4)
            notes.append(Note(start, rng.randint(30, 90), duration, rng.randint(1, 127)))
            start += duration + Fraction(rng.randint(0, 2), 4)
        shift = rng.choice([s for s in SHIFTS if s])
        table = transposition_table(encoding, shift)
        moved = [Note(x.start, x.pitch + shift, x.duration, x.velocity) for x in notes]
        assert table[np.array(encoding.encode(notes))].tolist() == encoding.encode(moved)


def test_shifts_that_leave_the_piano_range_are_dropped(tmp_path):
    high = tmp_path / "high"
    high.mkdir()
    write_midi(high / "a.mid", [[(0, 480, 105, 80, 0)]])
    write_midi(high / "b.mid", [[(0, 480, 60, 80, 0)]])
    corpus = load_tokens(high, valid_fraction=0, progress=False)
    shifts = {corpus.names[p]: [] for p in range(2)}
    for piece, shift in zip(corpus.piece, corpus.shift, strict=True):
        shifts[corpus.names[piece]].append(int(shift))
    assert shifts == {"high/a.mid": [-5, -4, -3, -2, -1, 0, 1, 2, 3], "high/b.mid": list(SHIFTS)}


def test_limit_keeps_the_first_pieces_in_path_order(folder):
    corpus = load_notes(folder, limit=4, progress=False)
    assert corpus.names == ("tunes/a/t00.mid", "tunes/a/t01.mid", "tunes/a/t02.mid", "tunes/a/t03.mid")
    assert corpus.files == 12


def test_timestep_melody_of_polyphonic_music_is_made_monophonic(folder):
    corpus = load_tokens(folder, TimeStepEncoding(), parts="melody", progress=False)
    encoding = corpus.encoding
    decoded = encoding.decode(corpus.valid[0])
    assert decoded and all(a.end <= b.start for a, b in zip(decoded, decoded[1:], strict=False))


def test_parallel_and_serial_reading_agree(folder):
    serial = load_notes(folder, workers=1, cache=False, progress=False)
    parallel = load_notes(folder, workers=2, cache=False, progress=False)
    assert serial.names == parallel.names and serial.pieces == parallel.pieces


# --- cache -------------------------------------------------------------------------------------------------


def test_a_cache_hit_returns_identical_arrays(folder, cache_dir):
    first = load_tokens(folder, progress=False)
    second = load_tokens(folder, progress=False)
    assert (first.cache_hit, second.cache_hit) == ("", "tokens")
    for field in ("tokens", "offsets", "piece", "shift", "valid_piece"):
        assert np.array_equal(getattr(first, field), getattr(second, field)), field
        assert getattr(first, field).dtype == getattr(second, field).dtype
    assert first.names == second.names and first.stats == second.stats
    notes = load_notes(folder, progress=False)
    assert notes.cache_hit and notes.pieces == load_notes(folder, cache=False, progress=False).pieces
    assert all(p.suffix == ".npz" for p in (cache_dir / "corpus").iterdir())


def test_the_cache_key_follows_the_encoding_options_and_files(folder, cache_dir):
    load_tokens(folder, progress=False)
    assert load_tokens(folder, EventEncoding(steps_per_beat=4), progress=False).cache_hit == "notes"
    assert load_tokens(folder, TimeStepEncoding(), progress=False).cache_hit == "notes"
    assert load_tokens(folder, seed=1, progress=False).cache_hit == "notes"
    assert load_tokens(folder, limit=3, progress=False).cache_hit == ""
    assert len(list((cache_dir / "corpus").glob("*.npz"))) == 2 + 5  # notes: all and 3; tokens: five settings
    changed = folder / "a" / "t00.mid"
    tune(changed, shift=20)
    os.utime(changed, ns=(1, 1))
    assert load_tokens(folder, progress=False).cache_hit == ""


def test_a_damaged_cache_file_is_a_miss(folder, cache_dir):
    load_tokens(folder, progress=False)
    for path in (cache_dir / "corpus").iterdir():
        path.write_bytes(b"garbage")
    corpus = load_tokens(folder, progress=False)
    assert corpus.cache_hit == "" and corpus.stats.pieces == 12
    assert load_tokens(folder, progress=False).cache_hit == "tokens"


# --- the command -------------------------------------------------------------------------------------------


def test_stats_command_prints_figures_and_cache_use(bad_folder, capsys):
    assert main(["corpus", "stats", str(bad_folder), "--parts", "all"]) == 0
    out = capsys.readouterr()
    assert "pieces    1 (1 train, 0 valid)" in out.out and "parsed now" in out.out
    assert "3 files: mixed/corrupt.mid (not a MIDI file)" in out.out
    assert out.err.count("skipped 3 files") == 1
    assert main(["corpus", "stats", str(bad_folder), "--parts", "all", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["cache"] == "tokens" and figures["pieces"] == 1 and len(figures["skipped"]) == 3
    assert main(["corpus", "stats", "folkk"]) == 2
    assert capsys.readouterr().err.startswith("rtgen: error: no corpus 'folkk'")


# --- real pieces from music21's corpus ---------------------------------------------------------------------

needs_music21 = pytest.mark.skipif(music21_corpus_root() is None, reason="music21's corpus is not installed")


def _work(name: str) -> Path:
    return music21_corpus_root() / name


@pytest.mark.slow
@needs_music21
def test_a_bach_chorale_round_trips_through_the_event_encoding():
    [(name, notes, reason)] = read_piece(_work("bach/bwv66.6.mxl"), "bach/bwv66.6.mxl", "all")
    assert reason is None and 150 <= len(notes) <= 200  # four voices, ties merged
    assert min(x.pitch for x in notes) >= 36 and max(x.pitch for x in notes) <= 84
    assert len({x.start for x in notes}) > 30
    encoding = EventEncoding()
    assert encoding.decode(encoding.encode(notes)) == encoding.canonical(notes)
    [(_, melody, _)] = read_piece(_work("bach/bwv66.6.mxl"), "bach/bwv66.6.mxl", "melody")
    assert 30 <= len(melody) < len(notes) and min(x.pitch for x in melody) >= 60  # the soprano


@pytest.mark.slow
@needs_music21
def test_a_ryans_mammoth_tune_round_trips_through_the_event_encoding():
    [(name, notes, reason)] = read_piece(_work("ryansMammoth/AcaciaReel.abc"), "AcaciaReel", "melody")
    assert reason is None and len(notes) > 100
    assert min(x.pitch for x in notes) >= 50 and max(x.pitch for x in notes) <= 96
    assert all(a.end <= b.start for a, b in zip(notes, notes[1:], strict=False))
    encoding = EventEncoding()
    assert encoding.decode(encoding.encode(notes)) == encoding.canonical(notes)
    # Ornaments shorter than a sixteenth collide on the time-step grid; the pipeline keeps one voice there.
    timestep = TimeStepEncoding()
    [tokens] = encode_pieces([notes], timestep, "melody")
    decoded = timestep.decode(tokens)
    assert len(decoded) > 0.9 * len(notes)
    assert all(a.end <= b.start for a, b in zip(decoded, decoded[1:], strict=False))


@pytest.mark.slow
@needs_music21
def test_every_song_of_an_essen_opus_is_a_piece(tmp_path):
    from music21 import converter

    from rtgen.data.files import score_notes

    path = _work("essenFolksong/erk5.abc")
    opus = converter.parse(path, forceSource=True, storePickle=False)
    folder = tmp_path / "essen"
    folder.mkdir()
    (folder / "erk5.abc").write_bytes(path.read_bytes())
    songs = load_notes(folder, progress=False)
    assert len(songs.names) == len(opus.scores) == 27
    assert songs.names[11] == "essen/erk5.abc#12"
    assert list(songs.pieces) == [score_notes(score, "melody") for score in opus.scores]
