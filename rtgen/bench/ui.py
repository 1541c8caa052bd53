"""``rtgen bench ui``: does an attached TUI, busy with keys, move rtgen's notes off the beat?

One run, two phases against one daemon on a private JACK server: the daemon
alone (the baseline), then with ``rtgen attach`` running in a pseudo-terminal
and a key pressed every ``1 / key_hz`` seconds (slider moves: every press is
an OSC command, a redraw and a status update). A JACK client stamps each
note-on as it arrives; its onset error is its distance to the nearest step of
the daemon's grid (12 steps a beat), which the daemon's own status gives as
(clock time, beat, tempo). Jitter is the error around the run's median (the
constant part is JACK's period and the output offset).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass

from rtgen.live.timing import percentile
from rtgen.midi.jack import JackClient, JackServer, wait_until

STEPS_PER_BEAT = 12


@dataclass(frozen=True)
class UiBenchConfig:
    seconds: float = 40.0  # per phase
    key_hz: float = 20.0  # keys pressed a second while the TUI is attached
    tempo_bpm: float = 120.0
    preset: str = "fiddle-reel"  # the shipped preset with the most notes a bar
    osc_port: int = 9271


class PtyAttach:
    """``rtgen attach`` in a pseudo-terminal (100x30) whose screen a thread drains; ``keys`` types into it."""

    def __init__(self, osc_port: int, columns: int = 100, lines: int = 30) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
        command = [sys.executable, "-m", "rtgen", "attach", "--osc-port", str(osc_port)]
        self.process = subprocess.Popen(command, env=env, stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        self.screen = bytearray()
        self.closed = False
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while chunk := self._read():
            self.screen += chunk

    def _read(self) -> bytes:
        try:
            return os.read(self.master, 65536)
        except OSError:  # the terminal closed with its process
            return b""

    def ready(self, timeout_s: float = 30.0) -> bool:
        return wait_until(lambda: b"piano roll" in self.screen, timeout_s=timeout_s)

    def keys(self, *keys: str, gap_s: float = 0.1) -> None:
        for key in keys:
            os.write(self.master, key.encode())
            time.sleep(gap_s)

    def kill(self) -> None:
        """SIGKILL the UI (if still running) and close its terminal; again is a no-op."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=5)
        if not self.closed:
            self.closed = True
            os.close(self.master)


def onset_errors_ms(onsets: list[float], clock_s: float, beat: float, tempo_bpm: float) -> list[float]:
    """Each onset's signed distance to the nearest grid step, in ms, the grid anchored at (clock_s, beat)."""
    step_s = 60.0 / tempo_bpm / STEPS_PER_BEAT
    origin = clock_s - beat * 60.0 / tempo_bpm
    return [((t - origin) - round((t - origin) / step_s) * step_s) * 1e3 for t in onsets]


def jitter(errors_ms: list[float]) -> dict[str, float]:
    ordered = sorted(errors_ms)
    median = percentile(ordered, 0.5)
    around = sorted(abs(e - median) for e in ordered)
    return {
        "notes": len(ordered),
        "median_error_ms": median,
        "jitter_p50_ms": percentile(around, 0.5),
        "jitter_p90_ms": percentile(around, 0.9),
        "jitter_p99_ms": percentile(around, 0.99),
        "jitter_max_ms": around[-1] if around else 0.0,
        "worst_ms": [round(e - median, 2) for e in sorted(ordered, key=lambda e: -abs(e - median))[:5]],
    }


def _phase(client: JackClient, daemon, seconds: float, keys: PtyAttach | None, key_hz: float) -> dict:
    snap = daemon.snapshot()
    client.clear()
    end = time.perf_counter() + seconds
    pressed = 0
    pattern = ("+", "+", "-", "-")  # the focused slider up and down: each press one OSC command
    while time.perf_counter() < end:
        if keys is not None:
            keys.keys(pattern[pressed % len(pattern)], gap_s=0)
            pressed += 1
        time.sleep(1.0 / key_hz)
    onsets = [t for t, m in list(client.received) if m.type == "note_on" and m.velocity]
    report = jitter(onset_errors_ms(onsets, snap.clock_s, snap.current_beat, snap.tempo_bpm))
    report["keys_pressed"] = pressed
    return report


def run_ui_bench(config: UiBenchConfig) -> dict:
    """Headless, then with a key-pressing TUI attached; one private JACK server, one daemon."""
    from rtgen.daemon.client import DaemonClient

    with JackServer() as server, JackClient("ui-bench") as client:
        command = [sys.executable, "-m", "rtgen", "run", "--headless", "--no-record", "--mode", "solo"]
        command += ["--preset", config.preset, "--tempo", str(config.tempo_bpm), "--osc-port", str(config.osc_port)]
        daemon_process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        attached = None
        try:
            daemon = DaemonClient(config.osc_port).connect(timeout_s=60)
            # Solo's section-end ritardando (rtgen.live.expression) puts notes off the grid on purpose; off, every
            # onset's distance to the grid is the output's timing alone (expression's cost: docs/music.md).
            daemon.set_controls(expression=0.0)
            client.listen_to("rtgen out")
            time.sleep(1.0)
            headless = _phase(client, daemon, config.seconds, None, config.key_hz)
            attached = PtyAttach(config.osc_port)
            if not attached.ready():
                raise RuntimeError("rtgen attach did not draw its screen")
            attached.keys("t", gap_s=0.2)  # the temperature slider has the focus: each press moves it
            with_tui = _phase(client, daemon, config.seconds, attached, config.key_hz)
            daemon.close()
        finally:
            if attached is not None:
                attached.kill()
            daemon_process.send_signal(signal.SIGTERM)
            daemon_process.wait(timeout=30)
        xruns = server.xruns()
    ratio = with_tui["jitter_p99_ms"] / headless["jitter_p99_ms"] if headless["jitter_p99_ms"] else float("nan")
    return {"config": asdict(config), "headless": headless, "tui": with_tui, "p99_ratio": ratio, "xruns": xruns}


def format_report(report: dict) -> str:
    config = report["config"]
    lines = [
        f"onset jitter at a JACK client, solo at {config['tempo_bpm']:g} BPM, {config['seconds']:g} s a phase "
        f"(preset {config['preset']}; JACK xruns {report['xruns']})",
        f"{'phase':<34} {'notes':>6} {'p50':>8} {'p99':>8} {'max':>8}",
    ]
    for name, label in (("headless", "headless (baseline)"), ("tui", f"TUI, {config['key_hz']:g} keys/s")):
        row = report[name]
        lines.append(
            f"{label:<34} {row['notes']:>6} {row['jitter_p50_ms']:>6.2f}ms {row['jitter_p99_ms']:>6.2f}ms "
            f"{row['jitter_max_ms']:>6.2f}ms"
        )
    lines.append(f"p99 ratio TUI / headless: {report['p99_ratio']:.2f}")
    return "\n".join(lines)
