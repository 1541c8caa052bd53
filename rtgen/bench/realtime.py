"""``rtgen bench realtime``: how well rtgen keeps time, measured through a real JACK server.

A feeder (this thread) plays the engine's part, scheduling 16ths with about a
beat of lookahead; the output scheduler sends them to a virtual JACK port; a
JACK client in another process (as a synth would be, so it takes no share of
rtgen's GIL) records when each note-on arrives. Two figures come out:

* send-time error: |actual - planned| send time, rtgen's own (target p99 <= 0.5 ms);
* end-to-end jitter: arrival - planned at the receiving client, minus its
  median (RtMidi's JACK output delivers at the next period, so up to one
  period, 1.3 ms at 48 kHz / 64 frames, is JACK's share, not rtgen's).

Each measurement is a function returning a plain dict section; the report is
the dict of sections, so further measures (phrase end to first answer, control
change to first note reflecting it) are added as more functions of that shape.
"""

from __future__ import annotations

import gc
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import mido

from rtgen.errors import RtgenError
from rtgen.live.scheduler import OUTPUT_PRIORITY, SPIN_S, OutputScheduler
from rtgen.live.timing import freeze_gc, percentile, summary_ms
from rtgen.midi.backends import jack_server_name, jack_server_running
from rtgen.midi.jack import JackServer
from rtgen.midi.ports import open_output

Progress = Callable[[int, int], None]  # (notes done, notes in all)


@dataclass(frozen=True)
class RealtimeBenchConfig:
    """What the benchmark plays: ``notes`` 16ths at ``tempo_bpm`` (2,000 at 120 BPM take 250 s)."""

    notes: int = 2000
    tempo_bpm: float = 120.0
    gate: float = 0.5  # note length as a fraction of a 16th
    lookahead_beats: float = 1.0  # how far ahead the feeder schedules, like the engine thread
    spin_s: float = SPIN_S  # the scheduler's spin before each event (s)
    freeze_gc: bool = True  # as the daemon does once its models are loaded
    realtime_priority: int | None = OUTPUT_PRIORITY  # SCHED_FIFO for the output thread where allowed; None: normal


@dataclass
class _Run:
    planned: list[float]
    received: list[tuple[float, mido.Message]]
    scheduler: OutputScheduler
    wall_s: float


def run_realtime_bench(config: RealtimeBenchConfig = RealtimeBenchConfig(), progress: Progress | None = None) -> dict:
    """Run the benchmark on the running JACK server, or on a private dummy one; returns the report."""
    own_server = None if jack_server_running() else JackServer(name=f"rtgen-bench-{os.getpid()}").start()
    try:
        xruns_before = own_server.xruns() if own_server is not None else 0
        run = _play(config, progress)
        server = own_server.name if own_server is not None else jack_server_name()
        setup = {
            "jack_server": server,
            "private_server": own_server is not None,
            "notes": config.notes,
            "tempo_bpm": config.tempo_bpm,
            "spin_ms": config.spin_s * 1e3,
            "wall_s": round(run.wall_s, 1),
            "xruns": own_server.xruns() - xruns_before if own_server is not None else None,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
            "cpus": os.cpu_count(),
        }
        return {"setup": setup, "send_time": send_time_section(run), "end_to_end": end_to_end_section(run)}
    finally:
        if own_server is not None:
            own_server.stop()


def _play(config: RealtimeBenchConfig, progress: Progress | None) -> _Run:
    port = open_output(backend="jack", client_name="rtgen-bench", virtual_name="bench out")
    sixteenth_s = 60.0 / config.tempo_bpm / 4
    budget_s = config.notes * sixteenth_s + 30.0
    receiver = subprocess.Popen(
        [sys.executable, "-m", "rtgen.midi.jack", "bench out", str(config.notes), "3.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_for_route(port, receiver)
        window = 2 * config.notes + 16
        scheduler = OutputScheduler(
            port, spin_s=config.spin_s, window=window, realtime_priority=config.realtime_priority
        )
        if config.freeze_gc:
            freeze_gc()
        scheduler.start()
        started = time.perf_counter()
        planned = _feed(scheduler, config, progress)
        output, _ = receiver.communicate(timeout=budget_s)
        scheduler.stop()
        return _Run(planned, _parse_received(output), scheduler, time.perf_counter() - started)
    finally:
        if config.freeze_gc:
            gc.unfreeze()
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        port.close()


def _wait_for_route(port, receiver: subprocess.Popen) -> None:
    """Probe until the receiver (another process) hears us: a new JACK connection takes a few periods."""
    if receiver.stdout.readline().strip() != "ready":
        raise RtgenError("the benchmark's JACK receiver did not start")
    probe = mido.Message("control_change", control=110, value=0)
    for _ in range(100):
        port.send(probe)
        ready, _, _ = select.select([receiver.stdout], [], [], 0.1)
        if ready and receiver.stdout.readline().strip() == "routed":
            return
    raise RtgenError("the benchmark's JACK receiver never heard rtgen's port")


def _parse_received(output: str) -> list[tuple[float, mido.Message]]:
    received = []
    for line in output.splitlines():
        stamp, *data = line.split()
        received.append((float(stamp), mido.Message.from_bytes([int(b) for b in data])))
    return received


def _feed(scheduler: OutputScheduler, config: RealtimeBenchConfig, progress: Progress | None) -> list[float]:
    """Schedule the notes from this thread with ``lookahead_beats`` of lookahead; returns planned note-on times."""
    sixteenth_s = 60.0 / config.tempo_bpm / 4
    lookahead_s = config.lookahead_beats * 60.0 / config.tempo_bpm
    start = time.perf_counter() + 0.2
    planned = []
    for k in range(config.notes):
        t = start + k * sixteenth_s
        while t - time.perf_counter() > lookahead_s:
            time.sleep(sixteenth_s / 2)
        pitch, velocity = note_code(k)
        scheduler.schedule_note(t, t + config.gate * sixteenth_s, pitch, velocity=velocity)
        planned.append(t)
        if progress is not None and k % 16 == 0:
            progress(k, config.notes)
    if progress is not None:
        progress(config.notes, config.notes)
    return planned


_CODES = 64 * 127  # distinct (pitch, velocity) pairs note_code hands out


def note_code(k: int) -> tuple[int, int]:
    """(pitch 36-99, velocity 1-127) naming note ``k``, so an arrival finds its planned note even after a loss."""
    k %= _CODES
    return 36 + k % 64, 1 + k // 64


def planned_index(pitch: int, velocity: int, arrival: float, planned: list[float]) -> int | None:
    """Index of the planned note an arrival with this code belongs to: the nearest in time among candidates."""
    code = (velocity - 1) * 64 + pitch - 36
    candidates = range(code, len(planned), _CODES)
    if not 0 <= code < _CODES or not candidates:
        return None
    return min(candidates, key=lambda k: abs(planned[k] - arrival))


def send_time_section(run: _Run) -> dict:
    stats = run.scheduler.stats()
    return {
        "events": stats.count,
        "late": stats.late,
        "failed": stats.failed,
        "p50_ms": stats.p50_ms,
        "p99_ms": stats.p99_ms,
        "max_ms": stats.max_ms,
        "gc_pauses": stats.gc_pauses,
        "gc_max_ms": stats.gc_max_ms,
        "realtime_priority": run.scheduler.realtime_granted,
        "target_p99_ms": 0.5,
    }


def end_to_end_section(run: _Run) -> dict:
    delays = {}
    for t, message in run.received:
        if message.type == "note_on" and message.velocity > 0:
            k = planned_index(message.note, message.velocity, t, run.planned)
            if k is not None:
                delays.setdefault(k, t - run.planned[k])
    ordered = sorted(delays.values())
    median = percentile(ordered, 0.5)
    jitter = [abs(d - median) for d in ordered]
    section = {"received": len(delays), "lost": len(run.planned) - len(delays), "median_delay_ms": median * 1e3}
    section.update({f"jitter_{key}": value for key, value in summary_ms(jitter).items()})
    return section


def format_report(report: dict) -> str:
    """The report as a few human lines."""
    setup, send, e2e = report["setup"], report["send_time"], report["end_to_end"]
    load = ", ".join(f"{x:.2f}" for x in setup["load_average"])
    server = "private dummy" if setup["private_server"] else "running"
    xruns = f"{setup['xruns']} xruns; " if setup["xruns"] is not None else ""
    lines = [
        f"JACK server {setup['jack_server']!r} ({server}); {setup['notes']} 16ths at {setup['tempo_bpm']:g} BPM "
        f"in {setup['wall_s']} s; {xruns}load average {load} on {setup['cpus']} CPUs",
        f"send-time error (rtgen's own): p50 {send['p50_ms']:.3f} ms, p99 {send['p99_ms']:.3f} ms, "
        f"max {send['max_ms']:.3f} ms; late {send['late']} of {send['events']}, failed {send['failed']}; "
        f"GC pauses {send['gc_pauses']} (max {send['gc_max_ms']:.2f} ms); "
        f"output thread {'SCHED_FIFO' if send['realtime_priority'] else 'at normal priority'}; "
        f"target p99 <= {send['target_p99_ms']} ms",
        f"end-to-end through JACK: median delay {e2e['median_delay_ms']:.3f} ms; jitter p50 "
        f"{e2e['jitter_p50_ms']:.3f} ms, p99 {e2e['jitter_p99_ms']:.3f} ms, max {e2e['jitter_max_ms']:.3f} ms; "
        f"received {e2e['received']}, lost {e2e['lost']}",
    ]
    return "\n".join(lines)
