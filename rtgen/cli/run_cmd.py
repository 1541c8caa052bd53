"""``rtgen run``: the live daemon under its guard, with the terminal UI, headless, or in a browser (``--web``).

``rtgen run`` starts two processes: a small guard (this one) and the daemon
(``rtgen run --no-guard --headless``: ports, clock, models, engine). The TUI,
when there is one, runs in the guard as an OSC client of the daemon, so a UI
stall never touches the music; ``q`` stops both. If the daemon dies by a
signal, the guard silences what its output was connected to
(``rtgen.daemon.guard``).

Headless prints ``rtgen: ready`` (one flushed line) once the ports are open,
the models warm and OSC listening, then a status line every
``--status-interval`` seconds (or one JSON object a line with
``--status-json``) and every log line as ``rtgen: ...`` (errors as
``rtgen: error: ...``). SIGINT, SIGTERM, SIGHUP and SIGQUIT stop it cleanly:
pending note-offs, then CC64=0, CC123, CC120 on the channels used, the take
written; exit code 0. SIGUSR1 is a panic.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

from rtgen.cli.attach_cmd import add_osc_arguments, add_web_arguments
from rtgen.cli.outputs import output_file
from rtgen.errors import RtgenError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="play live: listen on 'rtgen in', answer or play along on 'rtgen out'",
        description="Run the real-time daemon. Flags override the --config file, which overrides the preset.",
    )
    parser.add_argument("--headless", action="store_true", help="no UI: print status lines; stop with Ctrl+C")
    parser.add_argument("--web", action="store_true", help="serve the UI to a browser (needs textual-serve)")
    parser.add_argument(
        "--synth",
        nargs="?",
        const="",
        metavar="SF2|WAV",
        help="hear it: start fluidsynth on JACK and connect 'rtgen out' to it (a .sf2: that soundfont; "
        "a .wav: render the live output to that file instead of the sound card)",
    )
    parser.add_argument("--config", help="daemon settings TOML (ports, clock, [listener], [player], ...)")
    parser.add_argument("--backend", choices=("auto", "jack", "alsa", "coremidi", "windows"))
    parser.add_argument("--in", dest="in_port", help="read from the MIDI port whose name contains this")
    parser.add_argument("--out", dest="out_port", help="send to the port whose name contains this, or to a .mid path")
    parser.add_argument("--preset", help="preset name or .toml path (default case-study-5-5-5)")
    parser.add_argument("--genres", help="genres to load and their weights, e.g. folk=5,fiddle=5,chorale=5")
    parser.add_argument("--mode", choices=("call-and-response", "duet", "solo"))
    parser.add_argument("--tempo", type=float, help="tempo in BPM (internal clock)")
    parser.add_argument("--answer-bars", type=int, help="bars in each answer (0: as long as the call)")
    parser.add_argument(
        "--output-offset-ms",
        type=float,
        help="shift every note by this many ms; negative sends early for the MIDI system's latency "
        "(default: one period early on JACK, read from the server; 0 elsewhere)",
    )
    parser.add_argument(
        "--clock",
        choices=("internal", "external", "link"),
        help="external follows MIDI clock on the input; link joins an Ableton Link session on the local network",
    )
    parser.add_argument("--send-clock", action="store_true", default=None, help="send MIDI clock on the output")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--record-dir", help="folder for the takes (default: your music folder/rtgen)")
    parser.add_argument("--no-record", action="store_true", help="do not write a take")
    parser.add_argument("--seed", type=int, help="sampler seed, for a repeatable performance")
    parser.add_argument("--status-interval", type=float, default=5.0, help="seconds between status lines (default 5)")
    parser.add_argument("--status-json", action="store_true", help="status lines as JSON objects (for scripts)")
    add_osc_arguments(parser)
    parser.add_argument(
        "--osc-allow-remote", action="store_true", help="allow a non-loopback --osc-host (OSC has no authentication)"
    )
    parser.add_argument("--no-guard", action="store_true", help="run the daemon in this process, without the guard")
    add_web_arguments(parser)
    parser.set_defaults(handler=run)


def build_config(args: argparse.Namespace):
    """The daemon config: the --config file (or defaults) with the flags given applied on top."""
    from rtgen import config as config_module
    from rtgen.daemon.config import DaemonConfig
    from rtgen.engine.controls import parse_weights

    base = config_module.load(DaemonConfig, args.config) if args.config else DaemonConfig()
    changes = {
        "backend": args.backend,
        "in_port": args.in_port,
        "out_port": args.out_port,
        "preset": args.preset,
        "genres": parse_weights(args.genres) if args.genres else None,
        "mode": args.mode,
        "tempo_bpm": args.tempo,
        "clock": args.clock,
        "send_clock": args.send_clock,
        "device": args.device,
        "record_dir": args.record_dir,
        "record": False if args.no_record else None,
        "seed": args.seed,
    }
    player = {"answer_bars": args.answer_bars, "output_offset_ms": args.output_offset_ms}
    player = {k: v for k, v in player.items() if v is not None}
    if player:
        changes["player"] = dataclasses.replace(base.player, **player)
    if args.synth is not None:
        wav = args.synth if args.synth.lower().endswith(".wav") else None
        soundfont = args.synth if args.synth and wav is None else None
        synth = {"enabled": True, "wav": wav, "soundfont": soundfont}
        changes["synth"] = dataclasses.replace(base.synth, **{k: v for k, v in synth.items() if v is not None})
    osc = {"host": args.osc_host, "port": args.osc_port, "allow_remote": args.osc_allow_remote or None}
    osc = {k: v for k, v in osc.items() if v is not None}
    if osc:
        changes["osc"] = dataclasses.replace(base.osc, **osc)
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    if args.status_interval <= 0:
        raise RtgenError(f"--status-interval {args.status_interval} must be > 0")
    config = build_config(args)
    if config.out_is_file:
        output_file(config.out_port, "--out")
    if args.no_guard:
        return serve(config, args)
    argv = [sys.executable, "-m", "rtgen", "run", "--no-guard", "--headless", *_daemon_argv(sys.argv[2:])]
    synth = start_synth(config) if config.synth.enabled else None
    try:
        return _guarded(config, args, argv)
    finally:
        if synth is not None:
            synth.stop()


def start_synth(config):
    """fluidsynth on the daemon's MIDI system, linked to every 'rtgen out' the daemon opens; stopped by the caller."""
    from rtgen.daemon.synth import Synth, find_soundfont
    from rtgen.midi.backends import START_JACK, resolve_backend
    from rtgen.paths import state_dir

    soundfont = find_soundfont(config.synth.soundfont)
    backend = resolve_backend(config.backend)
    if backend != "jack":
        raise RtgenError(f"--synth plays over JACK; this run's MIDI system is {backend}; {START_JACK}")
    settings = config.synth
    if settings.wav:  # fluidsynth is given the full path: its working folder is not for it to interpret
        settings = dataclasses.replace(settings, wav=str(output_file(settings.wav, "--synth").resolve()))
    synth = Synth(settings, soundfont, state_dir() / "synth.log").start()
    synth.link()
    heard = settings.wav or "the sound card (JACK's playback ports)"
    _say(f"synth: fluidsynth (pid {synth.pid}) with {soundfont.name} on {synth.input_port}, into {heard}")
    return synth


def _guarded(config, args: argparse.Namespace, argv: list[str]) -> int:
    """The daemon under its guard, headless (signals forwarded) or with a UI in this process."""
    from rtgen.cli.attach_cmd import attach_tui, serve_web_ui
    from rtgen.daemon.guard import Guard

    out_target = config.out_port if config.out_port and not config.out_is_file else None
    if args.headless:
        guard = Guard(argv, backend=config.backend, out_target=out_target)
        guard.forward_signals()
        return _exit_code(guard.wait())
    log_path = _daemon_log_path()
    with open(log_path, "w", encoding="utf-8") as log_file:
        guard = Guard(argv, backend=config.backend, out_target=out_target, stdout=log_file, stderr=log_file)
    try:
        _wait_ready(guard, log_path)
        if args.web:
            serve_web_ui(config.osc.port, args.host, args.port)
        else:
            attach_tui(config.osc.port, owner=True)
    finally:
        guard.terminate()
        code = guard.wait(timeout_s=10.0)
    if code != 0:
        print(f"rtgen: the daemon ended with code {code}; its log: {log_path}", file=sys.stderr)
        print(_tail(log_path), file=sys.stderr)
    return _exit_code(code)


def serve(config, args: argparse.Namespace) -> int:
    """The daemon itself, in this process: open, play, supervise, and every way out through ``shutdown``."""
    from rtgen.daemon.osc import OscServer
    from rtgen.daemon.process import Daemon
    from rtgen.daemon.supervisor import install_signals, limit_malloc_arenas, one_line, supervise
    from rtgen.live.scheduler import DAEMON_NICE, raise_nice

    if config.realtime and not raise_nice():  # before any thread starts: they all inherit it
        _say(f"the daemon keeps its nice value (no right to set {DAEMON_NICE}); busy programs can delay its notes")
    limit_malloc_arenas()
    daemon = Daemon(config)
    install_signals(daemon)
    quiet_port_warnings()
    osc = None
    code = 1
    try:
        daemon.open()
        osc = OscServer(daemon, config.osc)
        daemon.launch()
        osc.start()
        _say(f"OSC on {config.osc.host}:{osc.port}")
        if config.osc.allow_remote:
            _say("warning: OSC has no authentication; anyone who reaches this port can play and stop rtgen")
        _say("ready")
        on_status = (lambda snapshot: _print_json(daemon, snapshot)) if args.status_json else _print_status
        code = supervise(daemon, status_interval_s=args.status_interval, on_status=on_status, on_event=_print_event)
    finally:
        daemon.shutdown()
        if osc is not None:
            osc.stop("error: " + one_line(daemon.error) if daemon.error is not None else "stopped")
    for _, kind, line in daemon.events_after(-1)[-3:]:
        if "take written" in line:
            _print_event(kind, line)
    if daemon.error is not None:
        print(f"rtgen: error: {one_line(daemon.error)}", file=sys.stderr, flush=True)
        return 1
    return code


def quiet_port_warnings() -> None:
    """Keep the port watcher's lines to one copy each in the daemon's output.

    ``rtgen.midi.watcher`` logs each port change as a warning and hands the same
    line to the daemon, which logs it to every UI and prints it as ``rtgen: ...``.
    With no logging configured, Python's last-resort handler printed the warning
    too, so a vanished and reconnected port showed up twice in a headless
    terminal and in ``daemon.log``.
    """
    logging.getLogger("rtgen.midi.watcher").addHandler(logging.NullHandler())


def _daemon_argv(argv: list[str]) -> list[str]:
    """The flags of this ``rtgen run`` that the daemon takes (the UI's own are dropped)."""
    dropped, with_value = {"--headless", "--web", "--no-guard"}, {"--host", "--port"}
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in with_value:
            skip = True
        elif arg not in dropped and not arg.startswith(("--host=", "--port=")):
            kept.append(arg)
    return kept


def _daemon_log_path():
    from rtgen.paths import state_dir

    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "daemon.log"  # rewritten by each run: the last run's log is the one a user needs


def _wait_ready(guard, log_path, timeout_s: float = 120.0) -> None:
    """Wait for the daemon's ``rtgen: ready`` line (models load first); its error if it ends instead."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if "rtgen: ready" in text:
            return
        if guard.proc.poll() is not None:
            raise RtgenError(f"the daemon did not start: {_tail(log_path)}")
        time.sleep(0.05)
    raise RtgenError(f"the daemon was not ready after {timeout_s:g} s; its log: {log_path}")


def _tail(path, lines: int = 5) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-lines:])


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


def _say(line: str) -> None:
    print(f"rtgen: {line}", flush=True)


def _print_event(kind: str, line: str) -> None:
    _say(f"error: {line}" if kind == "error" else line)


def _print_status(snapshot) -> None:
    _say(
        f"{snapshot.mode} {snapshot.tempo_bpm:.1f} BPM {snapshot.clock_source} clock"
        f" | in {snapshot.notes_in} out {snapshot.notes_out} | late {snapshot.late_events}"
        f" | send p99 {snapshot.send_error_p99_ms:.2f} ms | step p99 {snapshot.step_p99_ms:.2f} ms"
    )


def _print_json(daemon, snapshot) -> None:
    t = daemon.clock.now()  # seconds on the daemon's clock: time.perf_counter, shared by processes on one machine
    status = {
        "pid": os.getpid(),  # the daemon's own process (under `rtgen run`, the guard is its parent)
        "t": t,
        "beat": daemon.clock.beat_at(t),
        "tempo_bpm": snapshot.tempo_bpm,
        "clock": snapshot.clock_source,
        "mode": snapshot.mode,
        "playing": snapshot.playing,
        "notes_in": snapshot.notes_in,
        "notes_out": snapshot.notes_out,
        "late": snapshot.late_events,
        "send_p90_ms": snapshot.send_error_p90_ms,
        "send_p99_ms": snapshot.send_error_p99_ms,
        "send_max_ms": snapshot.send_error_max_ms,
        "step_p99_ms": snapshot.step_p99_ms,
        **daemon.input_counts(),
    }
    print(json.dumps(status), flush=True)
