"""``rtgen run``: the live daemon, with the terminal UI, in a browser (``--web``), or headless.

Headless prints ``rtgen: ready`` (one flushed line) once the ports are open
and the models warm, then a status line every ``--status-interval`` seconds
(or one JSON object a line with ``--status-json``) and every log line as
``rtgen: ...``. SIGINT and SIGTERM stop it cleanly: pending note-offs, then
CC64=0, CC123, CC120 on the channels used, the take written; exit code 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import signal
import sys

from rtgen.errors import RtgenError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="play live: listen on 'rtgen in', answer or play along on 'rtgen out'",
        description="Run the real-time daemon. Flags override the --config file, which overrides the preset.",
    )
    parser.add_argument("--headless", action="store_true", help="no UI: print status lines; stop with Ctrl+C")
    parser.add_argument("--web", action="store_true", help="serve the UI to a browser (needs textual-serve)")
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
    parser.add_argument("--clock", choices=("internal", "external"), help="external follows MIDI clock on the input")
    parser.add_argument("--send-clock", action="store_true", default=None, help="send MIDI clock on the output")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--record-dir", help="folder for the takes (default: your music folder/rtgen)")
    parser.add_argument("--no-record", action="store_true", help="do not write a take")
    parser.add_argument("--seed", type=int, help="sampler seed, for a repeatable performance")
    parser.add_argument("--status-interval", type=float, default=5.0, help="seconds between status lines (default 5)")
    parser.add_argument("--status-json", action="store_true", help="status lines as JSON objects (for scripts)")
    parser.add_argument("--host", default="127.0.0.1", help="--web: address to serve on (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="--web: port to serve on (default 8000)")
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
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    if args.status_interval <= 0:
        raise RtgenError(f"--status-interval {args.status_interval} must be > 0")
    if args.web:
        return _serve_web(args)
    from rtgen.daemon.process import Daemon

    daemon = Daemon(build_config(args))
    try:
        daemon.open()
        daemon.launch()
        if args.headless:
            code = _headless(daemon, args)
        else:
            from rtgen.tui import run_app

            run_app(daemon)
            code = 0
    finally:
        daemon.shutdown()
    for line in daemon.drain_log():
        _say(line)
    if daemon.error is not None:
        print(f"rtgen: error: {_one_line(daemon.error)}", file=sys.stderr, flush=True)
        return 1
    return code


def _headless(daemon, args: argparse.Namespace) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: daemon.request_stop())
    _say("ready")
    on_status = (lambda snapshot: _print_json(daemon, snapshot)) if args.status_json else _print_status
    return daemon.run_forever(args.status_interval, on_status=on_status, on_log=_say)


def _say(line: str) -> None:
    print(f"rtgen: {line}", flush=True)


def _print_status(snapshot) -> None:
    _say(
        f"{snapshot.mode} {snapshot.tempo_bpm:.1f} BPM {snapshot.clock_source} clock"
        f" | in {snapshot.notes_in} out {snapshot.notes_out} | late {snapshot.late_events}"
        f" | send p99 {snapshot.send_error_p99_ms:.2f} ms | step p99 {snapshot.step_p99_ms:.2f} ms"
    )


def _print_json(daemon, snapshot) -> None:
    t = daemon.clock.now()  # seconds on the daemon's clock: time.perf_counter, shared by processes on one machine
    status = {
        "t": t,
        "beat": daemon.clock.beat_at(t),
        "tempo_bpm": snapshot.tempo_bpm,
        "clock": snapshot.clock_source,
        "mode": snapshot.mode,
        "playing": snapshot.playing,
        "notes_in": snapshot.notes_in,
        "notes_out": snapshot.notes_out,
        "late": snapshot.late_events,
        "send_p99_ms": snapshot.send_error_p99_ms,
        "step_p99_ms": snapshot.step_p99_ms,
        **daemon.input_counts(),
    }
    print(json.dumps(status), flush=True)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _serve_web(args: argparse.Namespace) -> int:
    from rtgen.tui import serve_web

    argv = [a for a in sys.argv[1:] if a != "--web"]
    command = shlex.join([sys.executable, "-m", "rtgen", *argv])
    serve_web(command, host=args.host, port=args.port)
    return 0
