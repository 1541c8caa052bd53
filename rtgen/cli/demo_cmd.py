"""``rtgen demo``: the whole live pipeline with no MIDI system, in a few seconds.

A built-in seed phrase is played, a little unevenly, into the listener on a
simulated clock; the daemon (shipped models, call-and-response) hears the
phrase end, primes the engine and answers from the next bar; the output
scheduler sends the answer to an in-process port. The call and the answer are
printed as a text piano roll fitted to the terminal (``rtgen.cli.textroll``)
and written to a two-track .mid ("performer" = the call, "rtgen" = the answer).
The call is played from the daemon's second bar, so the listener hears it
from its first note; the roll and the .mid count bars from the call's first,
so both start at bar 1.
"""

from __future__ import annotations

import argparse
import random
import shutil
import textwrap
import time
from pathlib import Path

from rtgen.errors import RtgenError

TICK_S = 0.005  # simulated time per engine-thread tick


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="hear the pipeline without MIDI: a phrase in, rtgen's answer out, as a piano roll and a .mid",
        description="Play a built-in phrase into rtgen on a simulated clock and print and save its answer.",
    )
    parser.add_argument("--preset", help="preset name or .toml path (default: the daemon's, case-study-5-5-5)")
    parser.add_argument("--genres", help="genres and weights, e.g. folk=5,fiddle=5 (default: all shipped)")
    parser.add_argument("--phrase", help="the call: a built-in phrase (folk, fiddle, chorale, renaissance) or a .mid")
    parser.add_argument("--bars", type=int, help="bars in the answer (default: the preset's)")
    parser.add_argument("--tempo", type=float, help="tempo in BPM (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0: the same answer every run)")
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    parser.add_argument("-o", "--output", default="rtgen-demo.mid", help="where to write the .mid")
    parser.add_argument(
        "--play",
        nargs="?",
        const="",
        metavar="SF2|WAV",
        help="hear the call and answer through fluidsynth on the sound card (a .sf2: that soundfont; "
        "a .wav: render to that file instead)",
    )
    parser.add_argument("--width", type=int, help="columns to print in (default: the terminal's, or 80 when piped)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rtgen.cli.outputs import output_file
    from rtgen.cli.textroll import MIN_WIDTH, render_roll
    from rtgen.daemon.config import DEFAULT_PRESET, DaemonConfig
    from rtgen.daemon.presets import load_preset
    from rtgen.daemon.process import Daemon
    from rtgen.engine.controls import parse_weights
    from rtgen.live.clock import FakeClock, check_tempo
    from rtgen.live.player import PlayerConfig
    from rtgen.live.scheduler import OutputScheduler
    from rtgen.live.timing import percentile
    from rtgen.midi.ports import FakeInputPort, FakeOutputPort

    if args.bars is not None and not 1 <= args.bars <= 64:
        raise RtgenError(f"--bars {args.bars} outside 1-64")
    out = output_file(args.output, "-o")
    sound = _sound(args.play) if args.play is not None else None  # a missing synth is said before the models load
    preset_name = args.preset or DEFAULT_PRESET
    preset = load_preset(preset_name)
    tempo = check_tempo(args.tempo) if args.tempo is not None else preset.tempo_bpm
    clock = FakeClock(tempo_bpm=tempo, start_s=0.0)
    config = DaemonConfig(
        preset=preset_name,
        genres=parse_weights(args.genres) if args.genres else {},
        mode="call-and-response",
        tempo_bpm=tempo,
        device=args.device,
        record=False,
        seed=args.seed,
        player=PlayerConfig(answer_bars=args.bars),
    )
    started = time.perf_counter()
    daemon = Daemon(
        config,
        in_port=FakeInputPort(now=clock),
        out_port=FakeOutputPort(now=clock),
        clock=clock,
        scheduler_factory=lambda port, c: OutputScheduler(port, now=c.now),
    )
    daemon.open()
    loaded = time.perf_counter() - started
    width = args.width or shutil.get_terminal_size((80, 24)).columns
    lead_in = float(daemon.player.config.beats_per_bar)  # the call starts a bar into the daemon's clock
    call = _play_call(daemon, args.phrase or preset.seed_phrase, args.seed, lead_in)
    _run_until_answered(daemon)
    daemon.shutdown()
    sent = [(clock.beat_at(t) - lead_in, m) for t, m in daemon.out_port.sent]
    answer = [(beat, m) for beat, m in sent if m.type in ("note_on", "note_off")]
    if not any(m.type == "note_on" and m.velocity for _, m in answer):
        raise RtgenError("the models answered with silence; try another --seed or a higher temperature preset")
    print(render_roll(call, answer, beats_per_bar=daemon.player.config.beats_per_bar, width=width))
    path = _write(out, call, answer, tempo)
    player = daemon.player
    latency = player.phrase_latency_ms[-1] if player.phrase_latency_ms else float("nan")
    step_p99 = percentile(sorted(player.step_ms), 0.99)
    summary = (
        f"call: {sum(1 for _, m in call if m.type == 'note_on')} notes; "
        f"answer: {player.notes_out} notes in {player.config.answer_bars} bars at {tempo:g} BPM "
        f"({', '.join(daemon.genres)})",
        f"models loaded in {loaded:.1f} s; call end -> answer ready {latency:.1f} ms; step p99 {step_p99:.2f} ms",
        f"wrote {path} (track 'performer' = call, 'rtgen' = answer)",
    )
    for line in summary:  # a path longer than the terminal stays whole, to be copied
        print(textwrap.fill(line, max(MIN_WIDTH, width), break_long_words=False, break_on_hyphens=False))
    if sound is not None:
        _hear(path, *sound, daemon.engine.controls.weights)
    return 0


def _sound(value: str) -> tuple[Path | None, Path]:
    """``--play``'s (WAV or None for the sound card, soundfont); one-line errors for no fluidsynth or soundfont."""
    from rtgen.cli.outputs import output_file
    from rtgen.daemon.synth import find_soundfont, fluidsynth_path

    fluidsynth_path()
    wav = output_file(value, "--play") if value.lower().endswith(".wav") else None
    return wav, find_soundfont(value if value and wav is None else None)


def _hear(midi: Path, wav: Path | None, soundfont: Path, weights) -> None:
    from rtgen.daemon.instrument import blend_program, heaviest_genre
    from rtgen.daemon.synth import play, render

    program = blend_program(weights, {})
    sound = f"{heaviest_genre(weights)}'s GM program {program} from {soundfont.name}"
    if wav is not None:
        print(f"wrote {render(midi, wav, soundfont, program)} ({sound})")
        return
    print(f"playing {midi} ({sound}) ...", flush=True)
    play(midi, soundfont, program)


def _play_call(daemon, phrase: str | None, seed: int, start: float) -> list[tuple[float, object]]:
    """Push the phrase into the fake input from beat ``start``, each note up to 15 ms early or late.

    Returns the call as (beat, message) pairs counted from ``start``.
    """
    import mido

    from rtgen.daemon.wiring import seed_notes

    notes = seed_notes(phrase, daemon.genres)
    clock, jitter = daemon.clock, random.Random(seed)
    events = []
    for note in notes:
        t_on = clock.time_at(start + float(note.start)) + jitter.uniform(-0.015, 0.015)
        t_off = clock.time_at(start + float(note.end)) - 0.02
        events.append((t_on, mido.Message("note_on", note=note.pitch, velocity=note.velocity)))
        events.append((t_off, mido.Message("note_off", note=note.pitch)))
    events.sort(key=lambda e: e[0])
    for t, message in events:
        daemon.in_port.push(message, t)
    return [(clock.beat_at(t) - start, m) for t, m in events]


def _run_until_answered(daemon, max_beats: float = 400.0) -> None:
    """Tick the engine thread and the output pump on the simulated clock until the answer has played."""
    clock, player = daemon.clock, daemon.player
    while clock.beat_at(clock.now()) < max_beats:
        clock.advance(TICK_S)
        player.tick(clock.now())
        daemon.scheduler.pump()
        if player.answers and player.voice is None and not daemon.scheduler.stats().pending:
            return
    raise RtgenError("no answer within 100 bars; the listener never heard the phrase end")


def _write(path: Path, call, answer, tempo: float) -> Path:
    """The call and answer as a take; the stamps are beats already, so the recorder's clock is the identity."""
    from rtgen.daemon.recording import Recorder

    recorder = Recorder(path, lambda beat: beat, tempo)
    for beat, message in call:
        recorder.add("performer", beat, message)
    for beat, message in answer:
        recorder.add("rtgen", beat, message)
    return recorder.flush()
