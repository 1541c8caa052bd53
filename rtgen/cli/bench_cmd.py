"""``rtgen bench``: measurements on this machine, one sub-subcommand per benchmark.

Each benchmark is a function ``register_<name>(benches)`` that adds its parser
to the ``bench`` sub-subparsers and sets ``handler``; add it to ``BENCHES``.
Benchmarks print figures; they never assert on timings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rtgen.cli.progress import note


def _progress(args, line: str) -> None:
    """What a long benchmark is doing, on stderr so that ``--json`` output stays one document."""
    if not args.json:
        note(line)


def _print_report(args, report: dict, as_text) -> int:
    print(json.dumps(report, indent=2) if args.json else as_text())
    return 0


def _shipped_net_config(config_path: str | None):
    """The NetConfig (and TrainConfig) of a run of ``config_path``, by default models/configs/folk.toml.

    The output layer is as wide as the run's vocabulary: a chord encoding's is counted on the config's corpora.
    """
    import dataclasses

    from rtgen.config import load
    from rtgen.paths import shipped_models_dir
    from rtgen.train.config import TrainConfig
    from rtgen.train.data import run_encoding

    path = Path(config_path) if config_path else shipped_models_dir() / "configs" / "folk.toml"
    config = load(TrainConfig, path) if path.exists() else TrainConfig()
    net = dataclasses.replace(config.net, vocab_size=len(run_encoding(config, progress=False)))
    return config, net, path


def train_throughput(model, batch_size: int, seq_len: int, seconds: float) -> list[float]:
    """Tokens/s of each timed training batch (forward, backward, Adam step) on random tokens."""
    import torch
    from torch.nn import functional as F

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    vocab = model.config.vocab_size
    x = torch.randint(0, vocab, (batch_size, seq_len))
    y = torch.randint(0, vocab, (batch_size, seq_len))
    rates: list[float] = []
    start = time.perf_counter()
    for index in range(10_000):
        tick = time.perf_counter()
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if index >= 1:  # the first batch pays for allocation and kernel selection
            rates.append(x.numel() / (time.perf_counter() - tick))
        if time.perf_counter() - start > seconds and len(rates) >= 3:
            break
    return rates


def step_latencies(model, models: int, steps: int) -> dict[str, list[float]]:
    """Seconds per one-token step: nn.LSTM with T=1, the cell-level step, and StackedStepper(models)."""
    import torch

    from rtgen.nets.recurrent import RecurrentLM, StackedStepper

    vocab = model.config.vocab_size
    tokens = torch.randint(0, vocab, (steps,)).tolist()
    results: dict[str, list[float]] = {"nn.LSTM one step": [], "cell-level step": [], f"StackedStepper({models})": []}
    with torch.inference_mode():
        state = None
        for token in tokens[: max(50, steps // 10)]:
            tick = time.perf_counter()
            _, state = model(torch.tensor([[token]]), state)
            results["nn.LSTM one step"].append(time.perf_counter() - tick)
        state = model.initial_state(1)
        index = torch.zeros(1, dtype=torch.long)
        for token in tokens:
            tick = time.perf_counter()
            index[0] = token
            _, state = model.step(index, state)
            results["cell-level step"].append(time.perf_counter() - tick)
    stepper = StackedStepper([model] + [RecurrentLM(model.config).eval() for _ in range(models - 1)])
    for token in tokens:
        tick = time.perf_counter()
        stepper.step(token)
        results[f"StackedStepper({models})"].append(time.perf_counter() - tick)
    return results


def run_train(args) -> int:
    import torch

    from rtgen.live.timing import percentile, summary_ms
    from rtgen.nets.recurrent import RecurrentLM, parameter_count

    if args.threads:
        torch.set_num_threads(args.threads)
    config, net, path = _shipped_net_config(args.config)
    model = RecurrentLM(net)
    print(
        f"config {path}: {net.cell} {net.hidden_sizes}, embedding {net.embedding_dim}, "
        f"{config.encoding} vocabulary of {net.vocab_size} tokens, {parameter_count(model):,} parameters; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    rates = train_throughput(model, config.batch_size, config.seq_len, args.seconds)
    print(
        f"training: batch {config.batch_size} x {config.seq_len} tokens, {len(rates)} batches: "
        f"median {percentile(sorted(rates), 0.5):,.0f} tokens/s (min {min(rates):,.0f}, max {max(rates):,.0f})"
    )
    model.eval()
    for name, values in step_latencies(model, args.models, args.steps).items():
        ms = summary_ms(values)
        print(f"{name:<22} median {ms['p50_ms']:7.3f} ms   p99 {ms['p99_ms']:7.3f} ms   ({len(values)} steps)")
    return 0


def register_train(benches) -> None:
    parser = benches.add_parser(
        "train",
        help="training throughput and one-token step latency of the shipped network config",
        description="Training tokens/s for the shipped config (median over ~20 s of batches), then the latency of "
        "one token step: nn.LSTM with one time step, the cell-level step, and StackedStepper over K models.",
    )
    parser.add_argument("--config", help="TrainConfig TOML (default: models/configs/folk.toml)")
    parser.add_argument("--seconds", type=float, default=20.0, help="training measurement length")
    parser.add_argument("--steps", type=int, default=2000, help="steps per latency measurement")
    parser.add_argument("--models", type=int, default=4, help="models in the StackedStepper")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.set_defaults(handler=run_train)


def run_step(args) -> int:
    """Fused-step latency from warm state vs the windowed approach (see rtgen.bench.step)."""
    import torch

    from rtgen.bench.step import step_rows

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.arch:
        return _print_arch_rows(args)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    counts = [int(c) for c in args.models.split(",")]
    _, net, _ = _shipped_net_config(None)
    rows = step_rows(counts, devices, args.steps, args.windowed_steps, net)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(
            f"{row['models']} model(s) on {row['device']} {tuple(row['hidden_sizes'])}, {row['threads']} threads: "
            f"fused step p50 {row['p50_ms']:.3f} ms p99 {row['p99_ms']:.3f} ms ({row['steps']} steps), "
            f"with the presets' repeat/key_prior p50 {row['form_p50_ms']:.3f} ms p99 {row['form_p99_ms']:.3f} ms; "
            f"windowed p50 {row['windowed_p50_ms']:.2f} ms p99 {row['windowed_p99_ms']:.2f} ms; "
            f"{row['speedup']:.0f}x faster"
        )
    return 0


def _print_arch_rows(args) -> int:
    from rtgen.bench.step import arch_rows
    from rtgen.nets.architectures import ARCHITECTURES

    names = list(ARCHITECTURES) if args.arch == "all" else [n.strip() for n in args.arch.split(",")]
    rows = arch_rows(names, args.steps)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(
            f"{row['arch']:>22} on {row['device']}: one model's step p50 {row['p50_ms']:.3f} ms "
            f"p99 {row['p99_ms']:.3f} ms ({row['steps']} steps), {row['ratio']:g}x the shipped network's p50"
        )
    return 0


def register_step(benches) -> None:
    parser = benches.add_parser(
        "step",
        help="latency of one fused step (fusion + sampling + state advance) vs re-running a 100-token window",
        description="Per-step latency p50/p99 of Engine.step for 1 and 4 genre models of the shipped size on CPU "
        "(and CUDA when present), beside the papers' windowed approach, and the ratio.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    parser.add_argument("--models", default="1,4", help="comma-separated model counts (default 1,4)")
    parser.add_argument("--steps", type=int, default=2000, help="fused steps timed per row")
    parser.add_argument("--windowed-steps", type=int, default=100, help="windowed steps timed per row")
    parser.add_argument("--arch", help="time these architectures instead (comma-separated names, or 'all')")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the engine uses)")
    parser.set_defaults(handler=run_step)


def run_realtime(args) -> int:
    """Send-time error and end-to-end jitter through JACK (see rtgen.bench.realtime)."""
    from rtgen.bench.daemon import format_daemon_report, run_daemon_bench
    from rtgen.bench.realtime import RealtimeBenchConfig, format_report, run_realtime_bench
    from rtgen.live.scheduler import OUTPUT_PRIORITY, SPIN_S

    spin_s = SPIN_S if args.spin_ms is None else args.spin_ms / 1e3
    priority = None if args.normal_priority else OUTPUT_PRIORITY
    config = RealtimeBenchConfig(notes=args.notes, tempo_bpm=args.tempo, spin_s=spin_s, realtime_priority=priority)
    seconds = config.notes * 15.0 / config.tempo_bpm
    _progress(args, f"playing {config.notes} 16ths at {config.tempo_bpm:g} BPM (about {seconds:.0f} s)...")
    report = run_realtime_bench(config)
    if not args.no_daemon:
        _progress(args, "timing the daemon: phrase end -> answer, control change -> note (about 40 s)...")
        report.update(run_daemon_bench())

    def as_text() -> str:
        return format_report(report) + ("" if args.no_daemon else "\n" + format_daemon_report(report))

    return _print_report(args, report, as_text)


def register_realtime(benches) -> None:
    parser = benches.add_parser(
        "realtime",
        help="send-time error and end-to-end MIDI jitter through JACK",
        description="Schedule 16th notes through rtgen's output scheduler to a virtual JACK port and record them "
        "in a second JACK client: rtgen's send-time error p50/p99/max and the jitter a receiving synth sees. "
        "Uses the running JACK server, or starts a private dummy one.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--notes", type=int, default=2000, help="16th notes to play (default 2000: 250 s at 120 BPM)")
    parser.add_argument("--tempo", type=float, default=120.0, help="tempo in BPM (default 120)")
    parser.add_argument("--spin-ms", type=float, help="spin before each event, ms (default: the daemon's)")
    parser.add_argument(
        "--normal-priority", action="store_true", help="do not ask SCHED_FIFO for the output thread (compare)"
    )
    parser.add_argument("--no-daemon", action="store_true", help="skip the daemon's answer and control latencies")
    parser.set_defaults(handler=run_realtime)


def run_jack(args) -> int:
    """Events lost through a loaded dummy JACK server, asynchronous vs synchronous (see rtgen.bench.jack)."""
    from rtgen.bench.jack import JackLossConfig, format_report, run_jack_loss_bench

    config = JackLossConfig(seconds=args.seconds)
    _progress(args, f"private dummy servers (async, sync, sync real-time), {config.seconds:g} s each, cores busy...")
    report = run_jack_loss_bench(config)
    return _print_report(args, report, lambda: format_report(report))


def register_jack(benches) -> None:
    parser = benches.add_parser(
        "jack",
        help="MIDI lost and delayed through a loaded dummy JACK server: async, sync, sync real-time",
        description="Start a private `jackd --no-realtime -d dummy` in JACK's default asynchronous mode, then one "
        "in synchronous mode (--sync), then a synchronous real-time one where SCHED_FIFO is permitted (what "
        "rtgen's tests and benchmarks use); keep every core busy and play bursts of notes between two clients: "
        "sent, lost, xruns and arrival delay per setting.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per mode (default 30)")
    parser.set_defaults(handler=run_jack)


def run_ui(args) -> int:
    """Onset jitter with a busy TUI attached against the daemon alone (see rtgen.bench.ui)."""
    from rtgen.bench.ui import UiBenchConfig, format_report, run_ui_bench

    config = UiBenchConfig(seconds=args.seconds, key_hz=args.key_hz, tempo_bpm=args.tempo)
    _progress(
        args,
        f"private JACK server; headless, then a TUI pressing {config.key_hz:g} keys/s, {config.seconds:g} s each...",
    )
    report = run_ui_bench(config)
    return _print_report(args, report, lambda: format_report(report))


def register_ui(benches) -> None:
    parser = benches.add_parser(
        "ui",
        help="onset jitter at a JACK client with a key-pressing TUI attached, against the daemon alone",
        description="Start a private dummy JACK server and `rtgen run --headless` in solo mode; record its notes "
        "in a JACK client, first with no UI, then with `rtgen attach` in a pseudo-terminal pressing keys; print "
        "the onset jitter around the daemon's beat grid (p50, p99, max) of both phases and their ratio.",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds per phase (default 40)")
    parser.add_argument("--key-hz", type=float, default=20.0, help="keys pressed a second (default 20)")
    parser.add_argument("--tempo", type=float, default=120.0, help="tempo in BPM (default 120)")
    parser.set_defaults(handler=run_ui)


def run_soak(args) -> int:
    """A long duet with a scripted performer: unpaired notes, RSS growth, send p99 (see rtgen.bench.soak)."""
    import tempfile
    from pathlib import Path

    from rtgen.bench.soak import SoakConfig, format_report, run_soak

    config = SoakConfig(minutes=args.minutes, tempo_bpm=args.tempo, burst=args.burst)
    _progress(args, f"private JACK server; duet for {config.minutes:g} min with a scripted performer...")
    with tempfile.TemporaryDirectory(prefix="rtgen-soak-") as folder:
        report = run_soak(config, Path(args.takes or folder), progress=lambda line: _progress(args, line))
    return _print_report(args, report, lambda: format_report(report))


def register_soak(benches) -> None:
    parser = benches.add_parser(
        "soak",
        help="a long duet with a scripted performer: unpaired notes, RSS growth, send p99 against the machine's "
        "own wake-up floor (not for CI)",
        description="Start a private dummy JACK server and `rtgen run --headless --no-guard` in duet; a JACK client "
        "plays two-bar phrases of real validation pieces with held notes and chords, and once a burst of messages; "
        "print unpaired notes at the synth (target 0), the daemon's RSS growth after the first minute (<= 5 MB), "
        "the median ratio of its send p99 to the machine's own wake-up p99 over the same span (<= 1.2), and the "
        "share of samples more than 1 ms over that floor (<= 5 %).",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    parser.add_argument("--tempo", type=float, default=120.0, help="tempo in BPM (default 120)")
    parser.add_argument("--burst", type=int, default=10000, help="messages in the one-second burst (default 10000)")
    parser.add_argument("--takes", help="keep the daemon's take in this folder (default: a temporary one)")
    parser.set_defaults(handler=run_soak)


BENCHES = (register_train, register_step, register_realtime, register_jack, register_ui, register_soak)


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="measure this machine: training throughput, step latency, ...")
    benches = parser.add_subparsers(title="benchmarks", metavar="BENCH")
    for add in BENCHES:
        add(benches)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
