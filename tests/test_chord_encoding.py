"""The notes-and-chords encoding: round trips, the rare-token rule, saved vocabularies, training and fusion refusal."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest
from engine_models import restore_torch_threads  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen.cli import main
from rtgen.config import load
from rtgen.data.chords import ChordEncoding
from rtgen.data.corpus import CorpusError, load_tokens
from rtgen.data.tokens import transposition_table
from rtgen.data.vocabulary import encoding_from_json, make_encoding
from rtgen.encoding import EncodingError, EventEncoding, Note, quantise
from rtgen.engine.controls import Controls
from rtgen.engine.warm import Engine, EngineError
from rtgen.nets.checkpoint import CheckpointError, load_model, save_checkpoint
from rtgen.nets.config import NetConfig
from rtgen.nets.recurrent import RecurrentLM
from rtgen.train.config import CorpusSpec, TrainConfig, with_architecture
from rtgen.train.data import load_data
from rtgen.train.loop import train

STEPS = 12  # the chord encoding's grid steps per beat


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private corpus cache, so tests neither use nor disturb the shared one."""
    monkeypatch.setenv("RTGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def n(start, pitch, duration) -> Note:
    return Note(Fraction(start), pitch, Fraction(duration))


def counted(*pieces: list[Note]) -> Counter:
    """How often each token meaning occurs in ``pieces``, each encoded on its own."""
    return sum((Counter(ChordEncoding().grid_meanings(quantise(p, STEPS))) for p in pieces), Counter())


def fitted(*pieces: list[Note], min_count: int = 1) -> ChordEncoding:
    """The encoding with the vocabulary of ``pieces``: meanings seen at least ``min_count`` times."""
    return ChordEncoding(min_count=min_count).with_counts(counted(*pieces))


grid_notes = st.builds(
    lambda on, length, pitch, velocity: Note(Fraction(on, STEPS), pitch, Fraction(length, STEPS), velocity),
    st.integers(0, 200),
    st.integers(1, 60),
    st.integers(0, 127),
    st.integers(1, 127),
)


# --- round trips ---------------------------------------------------------------------------------------------


@given(st.lists(grid_notes, max_size=40))
def test_kept_tokens_round_trip_to_the_canonical_notes(notes):
    encoding = fitted(notes)
    expected = encoding.canonical(notes)
    assert encoding.decode(encoding.encode(notes)) == expected
    assert encoding.decode(encoding.encode(expected)) == expected
    onsets = {note.start for note in expected}
    assert sum(encoding.is_note_on(t) for t in encoding.encode(notes)) == len(onsets)  # one token per onset


def test_chords_rests_and_long_notes_become_onset_rest_and_hold_tokens():
    notes = [n(0, 60, "1/2"), n("1/2", 62, "1/2"), n(1, 60, 2), n(1, 64, 1), n(1, 67, "3/2"), n(4, 65, "5/4")]
    encoding = fitted(notes)
    names = [encoding.tokens[t] for t in encoding.encode(notes)]
    assert names == ["60:1/2", "62:1/2", "60.64.67:2", "r:1", "65:1", "_:1/4"]
    assert [note.duration for note in encoding.decode(encoding.encode(notes))] == [
        Fraction(1, 2),
        Fraction(1, 2),
        2,
        2,
        2,
        Fraction(5, 4),
    ]


@settings(max_examples=200)
@given(st.lists(grid_notes, max_size=30), st.lists(st.integers(0, 200), max_size=200))
def test_the_decoder_makes_valid_midi_from_any_tokens(notes, raw):
    encoding = fitted(notes)
    decoder = encoding.decoder()
    sounding: set[int] = set()
    last = Fraction(0)
    events = [e for t in raw for e in decoder.feed(t % len(encoding))] + decoder.close_all()
    for event in events:
        assert event.beat >= last
        last = event.beat
        assert (event.pitch not in sounding) if event.on else (event.pitch in sounding)
        (sounding.add if event.on else sounding.remove)(event.pitch)
    assert not sounding and not decoder.sounding
    with pytest.raises(EncodingError, match="outside the chord vocabulary"):
        decoder.feed(len(encoding))


# --- the rare-token rule -------------------------------------------------------------------------------------


@given(st.lists(grid_notes, max_size=30), st.lists(grid_notes, max_size=30), st.integers(1, 4))
def test_a_dropped_onset_becomes_a_kept_token_of_the_same_length(vocabulary_notes, notes, min_count):
    encoding = fitted(vocabulary_notes, vocabulary_notes, min_count=min_count)
    counts = counted(vocabulary_notes, vocabulary_notes)
    raw = encoding.grid_meanings(quantise(notes, STEPS))
    tokens = encoding.encode(notes)
    assert len(tokens) == len(raw) and all(0 <= t < len(encoding) for t in tokens)
    for meaning, token in zip(raw, tokens, strict=True):
        pitches, length = encoding.meanings[token]
        assert length == meaning[1]  # time is never lost: the decoded piece keeps its bars
        if not meaning[0] or counts[meaning] >= min_count:
            assert encoding.meanings[token] == meaning
        else:
            assert pitches is None or encoding.is_note_on(token)  # a kept onset, or a hold when none fits


def test_rare_onsets_are_dropped_and_map_to_the_nearest_kept_one():
    common = [n(i, 60 + 2 * (i % 3), 1) for i in range(30)] + [n(30 + i, 60, 1) for i in range(0, 12, 1)]
    chords = [n(50 + i, p, 1) for i in range(10) for p in (60, 64, 67)]
    encoding = fitted(common + chords, min_count=10)
    kept = set(encoding.tokens[encoding.onset_base :])
    assert kept == {"60:1", "62:1", "64:1", "60.64.67:1"}
    assert len(encoding) == 2 + 2 * 12 + 4
    name = lambda notes: [encoding.tokens[t] for t in encoding.encode(notes)]  # noqa: E731
    assert name([n(0, 60, 1), n(0, 64, 1), n(0, 67, 1), n(0, 71, 1)]) == ["60.64.67:1"]  # one pitch fewer
    assert name([n(0, 65, 1)]) == ["64:1"]  # the closest single pitch
    assert name([n(0, 61, 1)]) == ["60:1"]  # a tie (60 and 62) goes to the earlier token
    assert name([n(0, 60, "1/2"), n("1/2", 62, "1/2")]) == ["_:1/2", "_:1/2"]  # no onset of that length: held
    assert encoding.to_json()["min_count"] == 10


def test_the_vocabulary_counts_the_training_pieces_in_every_key(tmp_path):
    folder = chord_corpus(tmp_path)
    config = TrainConfig(corpus=CorpusSpec(str(folder), "all"), encoding="chord", valid_fraction=0.25)
    encoding, data = load_data(config, progress=False)
    assert encoding.fitted and "48.52.55:1" in encoding.tokens and "60:1/2" in encoding.tokens
    assert "43.47.50:1" in encoding.tokens  # G major: C major five semitones down, from the transposed copies
    for genre in data:
        assert genre.train.max() < len(encoding) and genre.summary["notes"] > 0
    untransposed, _ = load_data(dataclasses.replace(config, transpose=False), progress=False)
    assert len(untransposed) < len(encoding)


def test_token_transposition_matches_encoding_the_transposed_notes_for_kept_tokens():
    piece = [n(i, 60 + (i % 5), 1) for i in range(12)] + [n(12, p, 2) for p in (60, 64, 67)]
    shifted = [Note(x.start, x.pitch + 3, x.duration) for x in piece]
    encoding = fitted(piece, shifted)
    table = transposition_table(encoding, 3)
    assert table[encoding.encode(piece)].tolist() == encoding.encode(shifted)


def test_load_tokens_refuses_a_chord_encoding_without_its_vocabulary(tmp_path):
    with pytest.raises(CorpusError, match="no vocabulary yet"):
        load_tokens(chord_corpus(tmp_path), make_encoding("chord"), progress=False)
    with pytest.raises(EncodingError, match="no vocabulary yet"):
        make_encoding("chord").encode([n(0, 60, 1)])


# --- saved vocabularies --------------------------------------------------------------------------------------


@given(st.lists(grid_notes, max_size=30), st.integers(1, 3))
def test_the_vocabulary_round_trips_through_json_without_the_corpus(notes, min_count):
    encoding = fitted(notes, notes, min_count=min_count)
    saved = json.loads(json.dumps(encoding.to_json()))
    rebuilt = encoding_from_json(saved)
    assert rebuilt.tokens == encoding.tokens and rebuilt.min_count == min_count
    assert rebuilt.encode(notes) == encoding.encode(notes)


def test_a_damaged_or_unfitted_saved_vocabulary_is_one_line():
    encoding = fitted([n(0, 60, 1), n(1, 64, "1/2")])
    saved = encoding.to_json()
    with pytest.raises(EncodingError, match="needs its vocabulary"):
        encoding_from_json({**saved, "vocabulary": None})
    with pytest.raises(EncodingError, match="'64.60:1': pitches must rise"):
        encoding_from_json({**saved, "vocabulary": ["64.60:1"]})
    with pytest.raises(EncodingError, match="length 5/12 beats"):
        encoding_from_json({**saved, "vocabulary": ["60:5/12"]})
    with pytest.raises(EncodingError, match="vocabulary differs"):
        encoding_from_json({**saved, "tokens": saved["tokens"][:-1]})
    with pytest.raises(EncodingError, match="unknown encoding 'chords'; choose from event, timestep, chord"):
        make_encoding("chords")


# --- training, checkpoints and fusion ------------------------------------------------------------------------


def write_midi(path: Path, notes: list[tuple[int, int, int]]) -> None:
    """(on tick, off tick, pitch) at 480 ticks per beat, in one track."""
    midi = mido.MidiFile(ticks_per_beat=480)
    events = sorted([(on, 1, p) for on, _, p in notes] + [(off, 0, p) for _, off, p in notes])
    track, now = mido.MidiTrack(), 0
    for tick, is_on, pitch in events:
        track.append(mido.Message("note_on", note=pitch, velocity=80 * is_on, time=tick - now))
        now = tick
    midi.tracks.append(track)
    midi.save(path)


def chord_corpus(tmp_path: Path, pieces: int = 8) -> Path:
    """Pieces of a C major chord then eighth-note runs, each piece a step higher (so C major is counted often)."""
    folder = tmp_path / "chords"
    folder.mkdir(exist_ok=True)
    for i in range(pieces):
        notes = []
        for bar in range(4):
            notes += [(bar * 1920, bar * 1920 + 480, p) for p in (48, 52, 55)]
            notes += [(bar * 1920 + 480 + k * 240, bar * 1920 + 720 + k * 240, 60 + (k + i) % 5) for k in range(6)]
        write_midi(folder / f"p{i}.mid", notes)
    return folder


def test_a_tiny_chord_run_trains_from_a_corpus_and_its_checkpoint_rebuilds_the_encoding(tmp_path):
    config = TrainConfig(
        genre="toy",
        corpus=CorpusSpec(str(chord_corpus(tmp_path)), "all"),
        encoding="chord",
        net=NetConfig(embedding_dim=8, hidden_sizes=(24,), dropout=0.0),
        seq_len=16,
        batch_size=8,
        lr=0.02,
        steps_per_epoch=15,
        epochs=3,
        valid_fraction=0.25,
        threads=1,
        device="cpu",
        out_dir=str(tmp_path / "run"),
    )
    loaded = load_model(train(config, progress=False))
    history = loaded.meta["history"]
    assert history[-1]["valid_ce"] < history[0]["valid_ce"] < np.log(len(loaded.encoding))
    assert loaded.encoding.name == "chord" and loaded.meta["encoding"]["vocabulary"]
    assert loaded.encoding.tokens == load_data(config, progress=False)[0].tokens
    engine = Engine(["toy"], [loaded], Controls(pitch_min=50, pitch_max=72), seed=0)
    notes = loaded.encoding.decode([engine.step() for _ in range(60)])
    assert notes and all(50 <= note.pitch <= 72 for note in notes)  # the range masks whole chords


def test_bench_train_times_a_chord_config_with_the_vocabulary_its_run_would_count(tmp_path, capsys):
    corpus = chord_corpus(tmp_path)
    config = tmp_path / "chord.toml"
    config.write_text(
        f'genre = "toy"\nencoding = "chord"\nseq_len = 16\nbatch_size = 4\nvalid_fraction = 0.25\n'
        f'[corpus]\nsource = "{corpus}"\nparts = "all"\n[net]\nembedding_dim = 8\nhidden_sizes = [16]\n'
    )
    argv = ["bench", "train", "--config", str(config), "--seconds", "0.1", "--steps", "20", "--models", "1"]
    assert main(argv) == 0
    counted = load_data(load(TrainConfig, config), progress=False)[0]
    assert counted.name == "chord" and len(counted) > len(make_encoding("chord"))  # onset tokens were counted
    assert f"chord vocabulary of {len(counted)} tokens" in capsys.readouterr().out


def chord_checkpoint(folder: Path, notes) -> Path:
    encoding = fitted(notes)
    save_checkpoint(folder, RecurrentLM(NetConfig(vocab_size=len(encoding))), encoding, {"genre": folder.name})
    return folder


def test_a_chord_model_refuses_to_fuse_with_event_models_or_another_corpus_s_chords(tmp_path):
    event = EventEncoding()
    save_checkpoint(tmp_path / "folk", RecurrentLM(NetConfig(vocab_size=len(event))), event, {"genre": "folk"})
    fiddle = chord_checkpoint(tmp_path / "fiddle", [n(0, 60, 1), n(1, 62, "1/2")])
    reels = chord_checkpoint(tmp_path / "reels", [n(0, 67, 1)])
    folk, fiddle, reels = (load_model(tmp_path / name) for name in ("folk", "fiddle", "reels"))
    with pytest.raises(EngineError) as refused:
        Engine(["folk", "fiddle"], [folk, fiddle])
    message = str(refused.value)
    assert "\n" not in message and message.startswith("model 'fiddle' cannot play with 'folk': encoding differs")
    assert "name is 'chord', expected 'event'" in message and "cannot be fused" in message
    with pytest.raises(EngineError, match=r"built from its training corpus\); token ids of different vocabularies"):
        Engine(["fiddle", "reels"], [fiddle, reels])
    with pytest.raises(CheckpointError, match="name is 'chord', expected 'event'"):
        load_model(tmp_path / "fiddle", expect_encoding=event)


def test_the_two_chord_architectures_train_on_chord_tokens():
    assert with_architecture({}, "lstm3x512")["encoding"] == "chord"
    assert with_architecture({}, "lstm-256-512-256")["encoding"] == "chord"
    assert with_architecture({"encoding": "event"}, "lstm3x512")["encoding"] == "event"  # the TOML still wins
