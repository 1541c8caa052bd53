"""``rtgen run --headless`` as a subprocess (guard and daemon), its stdout lines stamped by a reader thread."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Rtgen:
    """The daemon under its guard; ``status()`` reads the JSON status lines, ``osc_port`` its control port."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.osc_port = free_udp_port()
        command = [sys.executable, "-m", "rtgen", "run", "--headless", "--status-json", "--status-interval", "0.2"]
        command += ["--record-dir", str(tmp_path / "takes"), "--seed", "1", "--osc-port", str(self.osc_port), *args]
        env = {**os.environ, "RTGEN_CONFIG_DIR": str(tmp_path / "config"), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.wait_line(lambda line: line == "rtgen: ready", timeout_s=60):
            code = self.process.poll()
            self.process.kill()
            raise AssertionError(f"rtgen never got ready (exit code {code}):\n" + self.text())

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append((time.perf_counter(), line.rstrip("\n")))
                self._changed.notify_all()

    def wait_line(self, predicate, timeout_s: float = 5.0, after: float = 0.0) -> str | None:
        found: list[str] = []

        def check() -> bool:
            found[:] = [line for t, line in self.lines if t >= after and predicate(line)]
            return bool(found) or self.process.poll() is not None

        with self._changed:
            self._changed.wait_for(check, timeout_s)
        return found[0] if found else None

    def status(self, after: float = 0.0, timeout_s: float = 3.0) -> dict:
        """The first JSON status line printed after ``after`` (perf_counter seconds)."""
        line = self.wait_line(lambda text: text.startswith("{"), timeout_s, after)
        assert line is not None, self.text()
        return json.loads(line)

    @property
    def daemon_pid(self) -> int:
        """The daemon's process (the child of the guard that ``process`` is)."""
        return self.status()["pid"]

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines[-40:])

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.daemon_pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def terminate(self, timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> int:
        """Signal the guard (it passes stop signals on to the daemon); the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)
