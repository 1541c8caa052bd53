"""``rtgen bench soak``: a long duet with a scripted performer, for what only time shows.

One daemon (``rtgen run --headless --no-guard``, duet) on a private JACK
server, a JACK client as its synth, and a performer who plays two-bar
phrases of real validation pieces (never the training split) every four
bars, with one note of each phrase held over the next phrase (a sustained
note), a chord added under every fourth phrase, and once, a third of the way
in, a burst of ``burst`` messages in a second. Every ``sample_s`` the bench
reads the daemon's status (send p99 of its output thread) and its RSS. At
the end the daemon gets SIGTERM and the synth must have no note left on.

Targets (``TARGETS``, each reported as met or not): 0 unpaired notes; RSS
growth after the first minute <= 5 MB; the daemon's send p99 judged against
the machine, not against a fixed millisecond: the median over samples of
send p99 / floor p99 <= 1.2, and at most 5 % of samples more than 1 ms over
their floor. Send p99 itself (median, p99 and max over samples, and the worst
sample's ratio to the first minute's) is reported beside them.

The floor is the machine's own: a process beside the daemon, at the output
thread's real-time priority, wakes 20 times a second the way the output
thread waits for a note (sleep, then spin the last half millisecond) and
records how late it woke. Its p99 over the span each sample of the daemon's
send p99 covers (its last ``SEND_WINDOW`` sends, about two and a half
minutes) is the floor no sender on this machine could beat in that span: on a
virtual machine whose timer now and then wakes 20 ms late, a 1 ms send
target is out of reach for any program (issue 20: for minutes the floor was
3.7-8.6 ms; a target the machine alone can break is the wrong target).
"""

from __future__ import annotations

import bisect
import math
import multiprocessing
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import mido

from rtgen.live.scheduler import OUTPUT_PRIORITY, SEND_WINDOW, SPIN_S, raise_priority
from rtgen.live.timing import percentile, spin_until
from rtgen.midi.jack import JackClient, JackServer, unpaired_notes

TARGETS = {
    "unpaired_notes": 0,  # notes left on at the synth after SIGTERM
    "rss_growth_mb": 5.0,  # after the first minute
    "send_to_floor_median": 1.2,  # median over samples of send p99 / floor p99
    "over_floor_share": 0.05,  # share of samples whose send p99 is more than 1 ms over their floor
}
OVER_FLOOR_MS = 1.0
FLOOR_MIN_MS = 0.05  # a floor below this counts as this: no sender is judged against a 0 ms wake-up


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 30.0
    tempo_bpm: float = 120.0
    preset: str = "fiddle-reel"
    genre: str = "fiddle"  # the validation pieces the performer plays
    burst: int = 10000  # messages in the one-second burst
    sample_s: float = 10.0
    osc_port: int = 9273


def performer_phrases(genre: str, count: int = 64) -> list[list]:
    """Two-bar openings of the genre's validation pieces (notes in beats)."""
    from rtgen.evaluate.fidelity import genre_sources, load_pieces, opening

    _, valid = load_pieces(genre_sources([genre]), max_train=1)
    return [opening(piece, 2) for piece in valid[genre] if piece][:count]


def phrase_events(notes, beat_s: float, index: int) -> list[tuple[float, mido.Message]]:
    """(seconds from the phrase's start, message): the phrase, its first note held 10 beats, a chord every 4th."""
    events = []
    for k, note in enumerate(notes):
        start, length = float(note.start) * beat_s, float(note.duration) * beat_s
        held = 10 * beat_s if k == 0 else length
        pitches = [note.pitch] + ([note.pitch - 4, note.pitch - 7] if index % 4 == 3 and k == 0 else [])
        for pitch in pitches:
            events.append((start, mido.Message("note_on", note=pitch, velocity=note.velocity or 80)))
            events.append((start + held, mido.Message("note_off", note=pitch)))
    return sorted(events, key=lambda event: event[0])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Performer:
    """Plays the phrases on a JACK client, one every ``every_beats``, by the wall clock."""

    def __init__(self, client: JackClient, phrases: list[list], beat_s: float, every_beats: float = 16.0) -> None:
        self.client, self.phrases, self.beat_s = client, phrases, beat_s
        self.every_s = every_beats * beat_s
        self.pending: list[tuple[float, mido.Message]] = []
        self.played = 0
        self.next_phrase = time.perf_counter()

    def tick(self) -> None:
        now = time.perf_counter()
        if now >= self.next_phrase:
            events = phrase_events(self.phrases[self.played % len(self.phrases)], self.beat_s, self.played)
            self.pending = sorted(self.pending + [(now + t, m) for t, m in events], key=lambda e: e[0])
            self.played += 1
            self.next_phrase += self.every_s
        while self.pending and self.pending[0][0] <= now:
            self.client.send(self.pending.pop(0)[1])

    def burst(self, count: int) -> None:
        """``count`` note messages spread over one second."""
        start = time.perf_counter()
        for k in range(count):
            pitch = 40 + k % 48
            self.client._out.send_message([0x90, pitch, 64] if k % 2 == 0 else [0x80, pitch, 0])
            if k % 100 == 99:
                time.sleep(max(0.0, start + (k + 1) / count - time.perf_counter()))


def wake_floor(
    seconds: float,
    results,
    priority: int | None,
    period_s: float = 0.05,
    now: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Puts ``[(perf_counter s, ms late), ...]`` on ``results``: the machine's wake-up error, with nothing else to do.

    Waits for each deadline strictly inside ``seconds`` (every ``period_s``) as
    ``rtgen.live.scheduler`` waits for a note (sleep, then spin the last
    ``SPIN_S``), at ``priority`` (SCHED_FIFO, the daemon's output priority)
    where permitted; run in its own process, so no interpreter lock is shared.
    Deadlines are ``start + k * period_s``: a running sum of periods drifts in
    floating point, and made the count depend on the start time.
    """
    raise_priority(priority)  # refused: normal priority, like the daemon's output thread then
    late, start = [], now()
    for k in range(1, math.ceil(seconds / period_s - 1e-9)):
        due = start + k * period_s
        sleep(max(0.0, due - now() - SPIN_S))
        spin_until(due, now)
        late.append((due, (now() - due) * 1000.0))
    results.put(late)


def add_floor(samples: list[dict], late: list[tuple[float, float]], window_s: float) -> None:
    """Sets each sample's ``floor_p99_ms``: the floor's p99 lateness over the ``window_s`` before the sample's ``t``."""
    times = [t for t, _ in late]
    for sample in samples:
        span = late[bisect.bisect_right(times, sample["t"] - window_s) : bisect.bisect_right(times, sample["t"])]
        sample["floor_p99_ms"] = percentile(sorted(ms for _, ms in span), 0.99)


def run_soak(config: SoakConfig, record_dir: Path, progress=lambda line: None) -> dict:
    """The whole run (``config.minutes`` of wall time); the daemon records its take into ``record_dir``."""
    from rtgen.daemon.client import DaemonClient

    phrases = performer_phrases(config.genre)
    beat_s = 60.0 / config.tempo_bpm
    with JackServer() as server, JackClient("soak-synth") as synth, JackClient("soak-performer") as performer_port:
        command = [sys.executable, "-m", "rtgen", "run", "--headless", "--no-guard", "--mode", "duet"]
        command += ["--record-dir", str(record_dir)]
        command += ["--preset", config.preset, "--tempo", str(config.tempo_bpm), "--osc-port", str(config.osc_port)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []
        try:
            daemon = DaemonClient(config.osc_port).connect(timeout_s=60)
            synth.listen_to("rtgen out")
            performer_port.send_to("rtgen in")
            performer = Performer(performer_port, phrases, beat_s)
            context = multiprocessing.get_context("spawn")
            floor_results = context.Queue()
            floor_args = (60 * config.minutes, floor_results, OUTPUT_PRIORITY)
            floor = context.Process(target=wake_floor, args=floor_args, daemon=True)
            floor.start()
            start = time.perf_counter()
            end, burst_at, next_sample = start + 60 * config.minutes, start + 20 * config.minutes, start
            while (now := time.perf_counter()) < end:
                performer.tick()
                if burst_at is not None and now >= burst_at:
                    performer.burst(config.burst)
                    burst_at = None
                if now >= next_sample:
                    snap = daemon.snapshot()
                    rss = rss_kib(process.pid)
                    samples.append(
                        {"t_s": now - start, "t": now, "rss_kib": rss, "send_p99_ms": snap.send_error_p99_ms}
                    )
                    progress(f"soak: {samples[-1]}")
                    next_sample += config.sample_s
                time.sleep(0.001)
            daemon.close()
            floor_late = floor_results.get(timeout=60)
            floor.join(timeout=10)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        time.sleep(0.5)  # the last note-offs and the panic reach the synth
        takes = sorted(record_dir.glob("*.mid"))
        sends_per_s = sum(1 for _, m in synth.received if m.type in ("note_on", "note_off")) / (60 * config.minutes)
        add_floor(samples, floor_late, SEND_WINDOW / max(sends_per_s, 1.0))
        return report(config, samples, synth.received, performer.played, server.xruns()) | {
            "take": str(takes[-1]) if takes else None
        }


def report(config: SoakConfig, samples: list[dict], received, phrases: int, xruns: int) -> dict:
    """The figures and whether each target is met, from samples of RSS, the daemon's send p99 and the floor's
    (``add_floor``) over the same span."""
    after_minute = [s for s in samples if s["t_s"] >= 60.0] or samples
    sends = sorted(s["send_p99_ms"] for s in samples)
    baseline = max((s["send_p99_ms"] for s in samples if s["t_s"] < 60.0), default=float("nan"))
    notes = sum(1 for _, m in received if m.type == "note_on" and m.velocity)
    floor = sorted(s["floor_p99_ms"] for s in samples)
    ratios = sorted(s["send_p99_ms"] / max(s["floor_p99_ms"], FLOOR_MIN_MS) for s in samples)
    over = [s for s in samples if s["send_p99_ms"] > s["floor_p99_ms"] + OVER_FLOOR_MS]
    figures = {
        "unpaired_notes": sum(unpaired_notes(received).values()),
        "rss_growth_mb": (max(s["rss_kib"] for s in after_minute) - after_minute[0]["rss_kib"]) / 1024,
        "send_to_floor_median": percentile(ratios, 0.5),
        "over_floor_share": len(over) / len(samples) if samples else float("nan"),
    }
    return {
        "config": asdict(config),
        "phrases_played": phrases,
        "notes_from_rtgen": notes,
        **figures,
        "met": {name: figures[name] <= target for name, target in TARGETS.items()},
        "rss_first_minute_kib": after_minute[0]["rss_kib"],
        "send_p99_ms": {"median": percentile(sends, 0.5), "p99": percentile(sends, 0.99), "max": sends[-1]},
        "send_p99_worst_vs_first_minute": sends[-1] / baseline if baseline else float("nan"),
        "floor_p99_ms": {"median": percentile(floor, 0.5), "p99": percentile(floor, 0.99), "max": floor[-1]},
        "samples_over_floor_by_1ms": len(over),
        "xruns": xruns,
        "samples": samples,
    }


def _verdict(report: dict, name: str) -> str:
    return "met" if report["met"][name] else "MISSED"


def format_report(report: dict) -> str:
    config, send, floor = report["config"], report["send_p99_ms"], report["floor_p99_ms"]
    count = len(report["samples"])
    return "\n".join(
        [
            f"soak: duet for {config['minutes']:g} min at {config['tempo_bpm']:g} BPM (preset {config['preset']}), "
            f"{report['phrases_played']} {config['genre']} validation phrases with held notes and chords, "
            f"a burst of {config['burst']} messages; JACK xruns {report['xruns']}",
            f"notes from rtgen {report['notes_from_rtgen']}; unpaired at the synth {report['unpaired_notes']} "
            f"(target {TARGETS['unpaired_notes']}: {_verdict(report, 'unpaired_notes')}); take {report['take']}",
            f"RSS after the first minute {report['rss_first_minute_kib'] / 1024:.1f} MB, growth "
            f"{report['rss_growth_mb']:.2f} MB (target <= {TARGETS['rss_growth_mb']:g}: "
            f"{_verdict(report, 'rss_growth_mb')})",
            f"send p99 / the machine's own wake-up p99 over the same span (floor), median over {count} samples: "
            f"{report['send_to_floor_median']:.2f} (target <= {TARGETS['send_to_floor_median']:g}: "
            f"{_verdict(report, 'send_to_floor_median')})",
            f"samples more than {OVER_FLOOR_MS:g} ms over their floor: {report['samples_over_floor_by_1ms']} of "
            f"{count}, {report['over_floor_share']:.1%} (target <= {TARGETS['over_floor_share']:.0%}: "
            f"{_verdict(report, 'over_floor_share')})",
            f"send p99 per {config['sample_s']:g} s sample: median {send['median']:.3f} ms, p99 {send['p99']:.3f} ms, "
            f"max {send['max']:.3f} ms (worst / first minute {report['send_p99_worst_vs_first_minute']:.2f}); "
            f"floor p99: median {floor['median']:.3f} ms, p99 {floor['p99']:.3f} ms, max {floor['max']:.3f} ms",
        ]
    )
