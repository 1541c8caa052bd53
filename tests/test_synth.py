"""The synth ``--synth`` starts: soundfont discovery, GM programs, one-line errors, WAVs that are heard.

The pure parts run everywhere; rendering needs fluidsynth and a soundfont
(``.ci/run`` installs both); the live ones need JACK and, for the daemon,
the shipped models.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import textwrap
import time
import wave
from array import array
from pathlib import Path

import mido
import pytest
from jack_server import wait_until
from rtgen_process import REPO, Rtgen

from rtgen import config as config_module
from rtgen.cli import main, run_cmd
from rtgen.daemon import synth as synth_module
from rtgen.daemon.config import DaemonConfig
from rtgen.daemon.instrument import GM_PROGRAMS, Instrument, blend_program, heaviest_genre, program_of
from rtgen.daemon.synth import SynthConfig, find_soundfont, fluidsynth_path, live_command, render
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.nets.checkpoint import installed_models

AUDIBLE_DBFS = -60.0  # a 100 ms window quieter than this is silence to a listener at any sane volume
WINDOW_S = 0.1


def _soundfont_or_skip() -> Path:
    try:
        fluidsynth_path()
        return find_soundfont()
    except RtgenError as error:
        pytest.skip(str(error))


def window_levels_dbfs(path: Path) -> list[float]:
    """RMS level of each 100 ms window of a 16-bit WAV (all channels), in dB below full scale."""
    with wave.open(str(path)) as wav:
        assert wav.getsampwidth() == 2, "fluidsynth writes 16-bit WAVs"
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = array("h", wav.readframes(wav.getnframes()))
    size = int(rate * WINDOW_S) * channels
    levels = []
    for start in range(0, len(samples) - size + 1, size):
        window = samples[start : start + size]
        rms = (sum(s * s for s in window) / len(window)) ** 0.5
        levels.append(20 * math.log10(rms / 32768) if rms else -200.0)
    return levels


def audible_share(levels: list[float], span: int | None = None) -> tuple[float, int]:
    """Share of the windows from the first audible one on (``span`` of them, or all) above ``AUDIBLE_DBFS``,
    and how many windows that is."""
    first = next((i for i, level in enumerate(levels) if level > AUDIBLE_DBFS), None)
    if first is None:
        return 0.0, 0
    after = levels[first:] if span is None else levels[first : first + span]
    return sum(level > AUDIBLE_DBFS for level in after) / len(after), len(after)


# ---- soundfont discovery and the one-line errors ----


def test_soundfont_from_the_flag_or_a_one_line_error(tmp_path) -> None:
    font = tmp_path / "mine.sf2"
    font.write_bytes(b"RIFF")
    assert find_soundfont(str(font), dirs=[]) == font
    with pytest.raises(RtgenError, match=r"soundfont .*nope\.sf2: no such file"):
        find_soundfont(str(tmp_path / "nope.sf2"), dirs=[])


def test_soundfont_search_prefers_a_general_midi_font_then_any(tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "Zither.sf2").write_bytes(b"RIFF")
    assert find_soundfont(None, dirs=[first, second]) == first / "Zither.sf2"
    (second / "TimGM6mb.sf2").write_bytes(b"RIFF")
    assert find_soundfont(None, dirs=[first, second]) == second / "TimGM6mb.sf2"
    (first / "FluidR3_GM.sf2").write_bytes(b"RIFF")
    assert find_soundfont(None, dirs=[first, second]) == first / "FluidR3_GM.sf2"


def test_no_soundfont_names_the_folders_looked_in(tmp_path) -> None:
    folders = [tmp_path / "sf2", tmp_path / "soundfonts"]
    with pytest.raises(RtgenError) as error:
        find_soundfont(None, dirs=folders)
    message = str(error.value)
    assert "\n" not in message and all(str(folder) in message for folder in folders)
    assert "apt-get install timgm6mb-soundfont" in message


def test_the_usual_places_are_searched() -> None:
    dirs = [str(path) for path in synth_module.soundfont_dirs()]
    assert "/usr/share/sounds/sf2" in dirs and "/opt/homebrew/share/soundfonts" in dirs


def test_no_fluidsynth_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(synth_module.shutil, "which", lambda name: None)
    with pytest.raises(RtgenError) as error:
        fluidsynth_path()
    assert "\n" not in str(error.value) and "apt-get install fluidsynth" in str(error.value)
    assert "brew install fluid-synth" in str(error.value)


def test_demo_play_and_generate_wav_say_what_is_missing_before_any_model_loads(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(synth_module.shutil, "which", lambda name: None)
    assert main(["demo", "--play", "-o", str(tmp_path / "d.mid")]) == 2
    generate = ["generate", "--genres", "folk=1", "-o", str(tmp_path / "g.mid"), "--wav", str(tmp_path / "g.wav")]
    assert main(generate) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("rtgen: error: fluidsynth is not installed") for line in errors)
    assert not (tmp_path / "d.mid").exists() and not (tmp_path / "g.mid").exists()


# ---- programs ----


def test_each_genre_has_its_general_midi_program() -> None:
    assert GM_PROGRAMS == {"fiddle": 40, "folk": 73, "chorale": 19, "renaissance": 52}
    assert program_of("renaissance", {"renaissance": 74}) == 74
    assert program_of("folk", {"renaissance": 74}) == 73  # the table fills in what the config leaves out
    assert program_of("jazz", {}) == 0  # a user's own genre: the piano


def test_a_blend_plays_its_heaviest_genre_and_ties_are_stable() -> None:
    assert heaviest_genre({"folk": 2.0, "fiddle": 7.0, "chorale": 1.0}) == "fiddle"
    assert heaviest_genre({"folk": 5.0, "fiddle": 5.0, "chorale": 5.0}) == "chorale"
    assert blend_program({"folk": 9.0, "renaissance": 1.0}, {}) == 73


def test_instrument_sends_a_program_change_only_when_the_program_changes() -> None:
    sent: list[mido.Message] = []
    instrument = Instrument({"renaissance": 74}, channel=3, send=sent.append)
    folk = Controls(weights={"folk": 5.0, "fiddle": 1.0})
    instrument.follow(folk)
    instrument.follow(folk)
    instrument.follow(folk.replace(weights={"folk": 6.0, "fiddle": 1.0}))  # same heaviest genre: nothing sent
    instrument.follow(folk.replace(weights={"folk": 1.0, "renaissance": 6.0}))
    assert [(m.type, m.channel, m.program) for m in sent] == [("program_change", 3, 73), ("program_change", 3, 74)]
    instrument.resend()
    instrument.follow(folk)
    assert sent[-1].program == 73 and len(sent) == 3


def test_the_run_config_holds_the_synth_table(tmp_path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[synth]\nsoundfont = "/x.sf2"\ngain = 0.8\n[synth.programs]\nrenaissance = 74\n')
    config = config_module.load(DaemonConfig, path)
    assert config.synth == SynthConfig(soundfont="/x.sf2", gain=0.8, programs={"renaissance": 74})
    path.write_text("[synth.programs]\nfolk = 128\n")
    with pytest.raises(RtgenError, match="program 128 of 'folk' outside 0-127"):
        config_module.load(DaemonConfig, path)


def _run_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    run_cmd.register(parser.add_subparsers())
    return parser.parse_args(["run", *argv])


def test_the_synth_flag_takes_a_soundfont_or_a_wav() -> None:
    assert run_cmd.build_config(_run_args()).synth.enabled is False
    plain = run_cmd.build_config(_run_args("--synth")).synth
    assert plain.enabled and plain.wav is None and plain.soundfont is None
    wav = run_cmd.build_config(_run_args("--synth", "out.wav")).synth
    assert wav.wav == "out.wav" and wav.soundfont is None
    font = run_cmd.build_config(_run_args("--synth", "my.sf2")).synth
    assert font.soundfont == "my.sf2" and font.wav is None


def test_fluidsynth_runs_on_jack_midi_into_jack_audio_or_a_wav() -> None:
    font = Path("/fonts/gm.sf2")
    live = live_command(SynthConfig(), font, "rtgen-synth-1")
    assert live[-1] == str(font) and live[4:6] == ["-m", "jack"] and "-j" in live and "file" not in live
    wav = live_command(SynthConfig(wav="/tmp/out.wav", log_midi=True), font, "rtgen-synth-1")
    assert wav[8:12] == ["-a", "file", "-o", "audio.file.name=/tmp/out.wav"] and "-d" in wav


# ---- sound ----


def test_render_writes_an_audible_wav(tmp_path) -> None:
    """``rtgen generate --wav``'s path: a .mid rendered offline is heard from its first note to its last."""
    soundfont = _soundfont_or_skip()
    midi = mido.MidiFile()
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for pitch in (60, 64, 67, 72):
        track.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
    midi.save(tmp_path / "four.mid")
    wav = render(tmp_path / "four.mid", tmp_path / "four.wav", soundfont, program=73)
    share, windows = audible_share(window_levels_dbfs(wav), span=10)  # four eighths at 120 BPM: 1 s of notes
    assert windows == 10 and share >= 0.8, (share, windows)


def test_demo_play_renders_the_call_and_answer_to_an_audible_wav(tmp_path, capsys) -> None:
    """``rtgen demo --play out.wav``: the demo, heard without a sound card, in the heaviest genre's instrument."""
    _soundfont_or_skip()
    if not {"fiddle", "folk", "chorale", "renaissance"} <= {name for name, _ in installed_models()}:
        pytest.skip("needs the shipped models")
    wav = tmp_path / "demo.wav"
    assert main(["demo", "--play", str(wav), "-o", str(tmp_path / "demo.mid"), "--width", "80"]) == 0
    assert f"wrote {wav} (chorale's GM program 19" in capsys.readouterr().out  # 5/5/5: the tie goes to chorale
    share, windows = audible_share(window_levels_dbfs(wav))
    assert windows >= 20 and share >= 0.5, (share, windows)  # the call, a bar's rest, the answer


def _synth_log_notes(log: Path) -> int:
    return sum(1 for line in log.read_text(errors="replace").splitlines() if line.startswith("event_pre_noteon"))


@pytest.mark.jack
def test_run_synth_wav_is_heard_and_plays_every_note_rtgen_sent(jack_server, tmp_path, monkeypatch) -> None:
    """``rtgen run --headless --mode solo --synth out.wav`` for a few seconds, stopped by SIGINT."""
    _soundfont_or_skip()
    if not {"fiddle", "folk", "chorale", "renaissance"} <= {name for name, _ in installed_models()}:
        pytest.skip("needs the shipped models")
    config = tmp_path / "run.toml"
    config.write_text("[synth]\nlog_midi = true\n")
    monkeypatch.setenv("RTGEN_STATE_DIR", str(tmp_path / "state"))
    out = tmp_path / "out.wav"
    rtgen = Rtgen(tmp_path, "--mode", "solo", "--no-record", "--config", str(config), "--synth", str(out))
    try:
        line = rtgen.wait_line(lambda text: text.startswith("rtgen: synth: fluidsynth (pid"), 1)
        assert line is not None, rtgen.text()
        synth_pid = int(line.split("(pid ")[1].split(")")[0])
        assert wait_until(lambda: rtgen.status(time.perf_counter())["notes_out"] >= 12, timeout_s=30), rtgen.text()
    finally:
        code = rtgen.terminate(sig=signal.SIGINT)
    sent = [json.loads(text) for _, text in rtgen.lines if text.startswith("{")][-1]["notes_out"]
    assert code == 0, rtgen.text()
    assert not _alive(synth_pid), "fluidsynth outlived rtgen"
    played = _synth_log_notes(tmp_path / "state" / "synth.log")
    share, windows = audible_share(window_levels_dbfs(out))
    print(f"rtgen sent >= {sent} notes, fluidsynth played {played}; {windows} windows, {share:.1%} audible")
    assert played >= sent, f"fluidsynth played {played} notes of the {sent} rtgen said it had sent"
    assert windows >= 20 and share >= 0.8, (share, windows)


@pytest.mark.jack
def test_synth_ends_with_the_process_that_started_it_even_by_sigkill(jack_server, tmp_path) -> None:
    """A crash of rtgen (SIGKILL: no finally runs) closes fluidsynth's standard input, and it exits."""
    soundfont = _soundfont_or_skip()
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from rtgen.daemon.synth import Synth, SynthConfig
        config = SynthConfig(wav={str(tmp_path / "x.wav")!r})
        synth = Synth(config, Path({str(soundfont)!r}), Path({str(tmp_path / "s.log")!r}))
        print(synth.start().pid, flush=True)
        time.sleep(60)
        """
    )
    starter = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        synth_pid = int(starter.stdout.readline())
        assert Path(f"/proc/{synth_pid}").exists()
        starter.kill()
        starter.wait(5)
        assert wait_until(lambda: not _alive(synth_pid), timeout_s=3), "fluidsynth outlived the process that started it"
    finally:
        starter.kill()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie that init has not reaped yet counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
