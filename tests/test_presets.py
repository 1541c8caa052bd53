"""Presets: every shipped file loads, round trips, and malformed files are refused by file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtgen.daemon.presets import Preset, PresetError, describe_presets, list_presets, load_preset, save_preset
from rtgen.data.seeds import PHRASES, load_phrase
from rtgen.engine.controls import Controls

SHIPPED = Path(__file__).resolve().parent.parent / "presets"


@pytest.fixture(autouse=True)
def _shipped_presets(monkeypatch) -> None:
    monkeypatch.setenv("RTGEN_PRESETS", str(SHIPPED))


def test_every_shipped_preset_loads_and_its_seed_phrase_exists() -> None:
    names = list_presets()
    assert {"case-study-10-5-1", "case-study-5-5-5", "folk-answer", "wild-fusion"} <= set(names)
    for name in names:
        preset = load_preset(name)
        assert preset.name == name and preset.controls.weights
        assert load_phrase(preset.seed_phrase) if preset.seed_phrase else True


def test_case_studies_carry_the_papers_weights() -> None:
    assert load_preset("case-study-10-5-1").controls.weights == {"folk": 10.0, "fiddle": 5.0, "chorale": 1.0}
    assert set(load_preset("case-study-5-5-5").controls.weights.values()) == {5.0}


def test_save_then_load_gives_the_same_preset(tmp_path) -> None:
    preset = Preset(
        name="mine",
        description='quotes " and unicode é',
        controls=Controls(weights={"folk": 2.5, "fiddle": 1.0}, method="product", top_k=7, scale_lock=True),
        tempo_bpm=97.5,
        mode="duet",
        answer_bars=3,
        seed_phrase="fiddle",
    )
    path = save_preset(preset, tmp_path / "mine.toml")
    assert load_preset(path) == preset
    assert load_preset(str(path)).controls.method == "product"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tempo = 100\n", "unknown key 'tempo'"),
        ("tempo_bpm = 'fast'\n", "tempo_bpm: expected float"),
        ("tempo_bpm = 1000\n", "tempo_bpm 1000.0 outside 20-400"),
        ("mode = 'jam'\n", "mode: 'jam' is not one of"),
        ("[controls]\ntemperature = -1\n", "controls: temperature -1.0 outside 0.01-10"),
        ("[controls]\ntop_p = 2\n", "controls: top_p 2.0 outside 0.01-1"),
        ("[controls]\nmax_polyphony = 0\n", "controls: max_polyphony 0 outside 1-32"),
        ("[controls]\nweights = { folk = 500 }\n", "controls: weights.folk 500.0 outside 0-100"),
        ("[controls]\nmethod = 'blend'\n", "controls: method"),
        ("[controls]\nweights = { folk = 'a lot' }\n", "controls: weights.folk: expected float"),
        ("[controls]\ncolour = 'red'\n", "controls: unknown key 'colour'"),
        ("[controls]\nweights = { folk = 0 }\n", "all genre weights are zero"),
        ("tempo_bpm = \n", "not valid TOML"),
        ('description = """two\nlines"""\n', "description: must be one line"),
        ("description = 3\n", "description: expected str"),
    ],
)
def test_malformed_presets_name_file_key_and_expectation(tmp_path, text, message) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError, match=message) as error:
        load_preset(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_preset_lists_the_known_ones() -> None:
    with pytest.raises(PresetError, match="no such preset.*folk-answer"):
        load_preset("no-such-preset")


def test_builtin_phrases_are_two_bars_and_midi_seeds_read(tmp_path) -> None:
    import mido

    for name, notes in PHRASES.items():
        assert notes and max(n.end for n in notes) <= 8, name
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name="seed", time=0))  # no channel, no note: passed over
    track.append(mido.Message("control_change", control=64, value=127, time=0))
    track.extend([mido.Message("note_on", note=60, velocity=90, time=0), mido.Message("note_off", note=60, time=240)])
    midi.tracks.append(track)
    midi.save(tmp_path / "seed.mid")
    (note,) = load_phrase(tmp_path / "seed.mid")
    assert (note.pitch, note.start, note.duration, note.velocity) == (60, 0, 0.5, 90)


def test_every_shipped_preset_says_in_one_line_what_it_is_for() -> None:
    listings = describe_presets()
    assert [p.name for p in listings] == list_presets()
    for listing in listings:
        assert listing.error is None and 10 < len(listing.description) <= 100, listing


def test_presets_command_lists_names_with_descriptions(capsys) -> None:
    from rtgen.cli import main

    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_presets()
    assert "case-study-5-5-5   Fusion paper case study: folk 5, fiddle 5, chorale 5" in lines[1]


def test_a_malformed_preset_is_listed_by_file_and_key_and_the_rest_still_are(tmp_path, monkeypatch, capsys) -> None:
    from rtgen.cli import main

    (tmp_path / "good.toml").write_text('description = "a steady one"\n[controls]\nweights = { folk = 1 }\n')
    (tmp_path / "bad.toml").write_text('description = "broken"\ntempo = 90\n')
    monkeypatch.setenv("RTGEN_PRESETS", str(tmp_path))
    bad, good = describe_presets()
    assert good.description == "a steady one" and good.error is None
    assert bad.description == "" and str(tmp_path / "bad.toml") in bad.error and "unknown key 'tempo'" in bad.error
    assert main(["presets"]) == 1
    out, err = capsys.readouterr()
    assert out == "good  a steady one\n"
    assert "preset bad:" in err and str(tmp_path / "bad.toml") in err and "'tempo'" in err
