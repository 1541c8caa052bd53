"""The process that starts the daemon, and silences the synths if the daemon dies without its way out.

``rtgen run`` is two processes: this small guard (no torch, no models) and the
daemon it starts (``rtgen run --no-guard --headless``). The guard forwards
stop signals to the daemon and waits for it; with a TUI it also runs the UI
as an OSC client. Meanwhile it follows, four times a second, which ports the
daemon's output is connected to (on JACK, read from the graph; a named
``--out`` port is known from the start). A daemon that exits cleanly has
already sent its note-offs; one killed by a signal (SIGKILL, a crash in C)
has not, so the guard opens its own output to each of those ports and sends
CC64=0, CC123 and CC120 on all 16 channels: no note hangs on the synth.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

from rtgen.daemon.supervisor import STOP_SIGNALS

POLL_S = 0.25
OUT_PORT = "rtgen out"  # the daemon's virtual output's port name


class Guard:
    """Starts ``argv`` as the daemon and follows its output's connections until it ends."""

    def __init__(self, argv: Sequence[str], *, backend: str = "auto", out_target: str | None = None, **popen) -> None:
        self.backend = backend
        self.out_target = out_target  # a named --out port: a known destination
        self.proc = subprocess.Popen(list(argv), **popen)
        self.destinations: set[str] = set()
        self.silenced: list[str] = []  # the ports the guard sent a panic to
        self._done = threading.Event()
        self._watch = threading.Thread(target=self._follow, name="rtgen-guard", daemon=True)
        self._watch.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def forward_signals(self) -> None:
        """Stop signals sent to the guard go to the daemon (main thread only)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda signum, frame: self.terminate(signum))

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout_s: float | None = None) -> int:
        """The daemon's exit code (negative: killed by that signal), after silencing if it died unclean."""
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._done.set()
        self._watch.join(timeout=2.0)
        if code < 0:
            self.silence()
        return code

    def _follow(self) -> None:
        from rtgen.midi.graph import JackGraph

        graph = JackGraph.open("rtgen-guard") if self.backend in ("auto", "jack") else None
        try:
            while not self._done.wait(POLL_S) and self.proc.poll() is None:
                if graph is not None:
                    self.destinations |= set(self._jack_destinations(graph))
        finally:
            if graph is not None:
                graph.close()

    def _jack_destinations(self, graph) -> list[str]:
        """What the daemon's output is connected to now (its client found by process id)."""
        found = []
        for port in graph.midi_outputs(f":{OUT_PORT}$"):
            if graph.client_pid(port) == self.proc.pid:
                found += graph.connections(port)
        return found

    def silence(self) -> list[str]:
        """Send the panic sequence to every known destination; returns the ports reached."""
        from rtgen.midi.ports import PortError, open_output, panic_messages

        targets = set(self.destinations) | ({self.out_target} if self.out_target else set())
        for target in sorted(targets):
            try:
                port = open_output(target, self.backend, client_name="rtgen-guard")
            except PortError as error:
                print(f"rtgen: guard: cannot reach {target}: {error}", file=sys.stderr, flush=True)
                continue
            for message in panic_messages(range(16)):
                port.send(message)
            port.close()
            self.silenced.append(target)
        if targets:
            print(
                f"rtgen: the daemon died; guard sent all-notes-off to {', '.join(self.silenced) or 'none'}",
                file=sys.stderr,
                flush=True,
            )
        return self.silenced
