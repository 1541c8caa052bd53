"""``rtgen bench jack``: MIDI lost and delayed between two clients of a dummy JACK server under full CPU load.

Why it exists: the end-to-end tests and ``rtgen bench realtime`` run on a
private dummy server on a shared 2-core machine. Without real-time rights, in
JACK's default asynchronous mode, a client that misses its process cycle loses
the MIDI it wrote there, so tests saw an event vanish now and then; and the
server's and clients' threads wait behind busy processes, so MIDI came late.
The benchmark plays the same bursts through a fresh server per setting
(asynchronous, synchronous, synchronous with real-time scheduling where
permitted), with every core kept busy by spinning processes, and counts what
never arrived and how late the rest came; the first row is the baseline.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import asdict, dataclass

import mido

from rtgen.live.timing import summary_ms
from rtgen.midi.jack import JackClient, JackServer, realtime_permitted


@dataclass(frozen=True)
class JackLossConfig:
    seconds: float = 30.0  # per mode
    burst_notes: int = 50  # note-ons per burst, one every ``spacing_s``
    spacing_s: float = 0.002
    hogs: int = multiprocessing.cpu_count() + 1  # spinning processes: more than the cores


def _spin(until: float) -> None:
    while time.time() < until:
        pass  # the load itself: one core kept busy until ``until``


def _burst(sender: JackClient, receiver: JackClient, config: JackLossConfig) -> tuple[int, list[float]]:
    """Play one burst; returns how many arrived and each arrival's delay after its send."""
    receiver.clear()
    phrase = [
        (k * config.spacing_s, mido.Message("note_on", note=k % 128, velocity=1 + k % 127))
        for k in range(config.burst_notes)
    ]
    sent = sender.send_phrase(phrase)
    receiver.wait_count(config.burst_notes, timeout_s=1.0)
    arrived = list(receiver.received)
    delays = [t - sent[message.note] for t, message in arrived if message.note < len(sent)]
    return len(arrived), delays


def measure_mode(sync: bool, realtime: bool, config: JackLossConfig) -> dict:
    """One fresh server, loaded for ``config.seconds``: sent, lost, xruns, arrival delay."""
    server = JackServer(sync=sync, realtime=realtime)
    with server, JackClient("loss-rx") as receiver, JackClient("loss-tx") as sender:
        receiver.open_input()
        sender.send_to("loss-rx:in")
        receiver.wait_route(lambda: sender.send(mido.Message("note_on", note=0, velocity=1)))
        xruns_before = server.xruns()
        until = time.time() + config.seconds
        hogs = [multiprocessing.Process(target=_spin, args=(until,), daemon=True) for _ in range(config.hogs)]
        for hog in hogs:
            hog.start()
        sent = received = 0
        delays: list[float] = []
        while time.time() < until:
            arrived, burst_delays = _burst(sender, receiver, config)
            sent, received = sent + config.burst_notes, received + arrived
            delays += burst_delays
        for hog in hogs:
            hog.join()
        return {
            "mode": ("sync" if sync else "async") + (" rt" if realtime else ""),
            "sent": sent,
            "lost": sent - received,
            "xruns": server.xruns() - xruns_before,
            "delay": summary_ms(delays),
        }


def run_jack_loss_bench(config: JackLossConfig = JackLossConfig()) -> dict:
    """Asynchronous without real-time rights (the baseline), synchronous, then synchronous real-time if permitted."""
    settings = [(False, False), (True, False)] + ([(True, True)] if realtime_permitted() else [])
    return {"config": asdict(config), "modes": [measure_mode(sync, rt, config) for sync, rt in settings]}


def format_report(report: dict) -> str:
    lines = [f"{'mode':<8} {'sent':>7} {'lost':>5} {'loss':>8} {'xruns':>6} {'delay p50':>10} {'p99':>8} {'max':>8}"]
    for mode in report["modes"]:
        delay = mode["delay"]
        lines.append(
            f"{mode['mode']:<8} {mode['sent']:>7,} {mode['lost']:>5} {mode['lost'] / max(mode['sent'], 1):>8.3%}"
            f" {mode['xruns']:>6,} {delay['p50_ms']:>8.2f}ms {delay['p99_ms']:>6.2f}ms {delay['max_ms']:>6.2f}ms"
        )
    return "\n".join(lines)
