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

The daemon's output is told from another rtgen's by time: an ``rtgen out``
port that appears after the guard started is its daemon's (libjack's
``jack_get_client_pid`` would say for sure, but JACK 2 does not implement it).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
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
        self.destinations: set[str] = set()  # ports the daemon's output was seen connected to
        self._ports: dict[str, object] = {}  # the guard's own output to each of them, opened when first seen
        self.daemon_ports: set[str] = set()  # the daemon's own output ports, as the JACK graph names them
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
        self.close()
        return code

    def _follow(self) -> None:
        from rtgen.midi.graph import JackGraph

        graph = JackGraph.open("rtgen-guard") if self.backend in ("auto", "jack") else None
        if graph is None:
            self._done.wait()
            return
        with graph:
            others = set(graph.midi_outputs(f":{OUT_PORT}$"))  # there before the daemon: another rtgen's
            while not self._done.wait(POLL_S) and self.proc.poll() is None:
                for port in set(graph.midi_outputs(f":{OUT_PORT}$")) - others:
                    self.daemon_ports.add(port)
                    for destination in set(graph.connections(port)) - self.destinations:
                        self._reach(destination)

    def _reach(self, destination: str) -> None:
        """Connect the guard's own output to ``destination`` now, while the JACK graph is healthy.

        A client opened while the graph is stalled by a dead one can come up
        broken (its MIDI never leaves), so the ports the panic needs are opened
        before it is needed, as soon as a connection of the daemon's is seen.
        """
        from rtgen.midi.ports import PortError, open_output

        try:
            self._ports[destination] = open_output(destination, self.backend, client_name="rtgen-guard")
        except PortError:
            return  # gone again before we got there; the next poll tries anew
        self.destinations.add(destination)

    def silence(self, retry_s: float = 5.0, hold_s: float = 10.0) -> list[str]:
        """Send the panic sequence to every known destination; returns the ports reached.

        On JACK's default (asynchronous) server the panic arrives at once
        (33 ms after ``kill -9`` in tests/test_e2e_daemon.py), though the guard
        may then wait up to ``hold_s`` before it exits. A synchronous server (``jackd --sync``) stops
        running the graph behind a client killed mid-cycle until it has removed
        that client (40 s on these machines), and with it the synths' audio.
        RtMidi hands MIDI to JACK in the next cycle that runs, so the guard
        keeps its ports open until the dead client's ports have left the graph,
        at most ``hold_s``; a synchronous server slower than that loses the
        panic. A named ``--out`` port not yet reached is tried until ``retry_s``.
        """
        from rtgen.midi.messages import panic_messages
        from rtgen.midi.ports import PortError, open_output

        deadline = time.monotonic() + retry_s
        while self.out_target and self.out_target not in self._ports:
            try:
                self._ports[self.out_target] = open_output(self.out_target, self.backend, client_name="rtgen-guard")
            except PortError as error:
                if time.monotonic() > deadline:
                    print(f"rtgen: guard: cannot reach {self.out_target}: {error}", file=sys.stderr, flush=True)
                    break
                time.sleep(0.1)
        for target, port in sorted(self._ports.items()):
            for message in panic_messages():
                port.send(message)
            self.silenced.append(target)
        if self.silenced:
            print(
                f"rtgen: the daemon died; guard sent all-notes-off to {', '.join(self.silenced)}",
                file=sys.stderr,
                flush=True,
            )
            self._wait_removed(time.monotonic() + hold_s)
        return self.silenced

    def _wait_removed(self, deadline: float) -> None:
        """Wait until the daemon's ports have left the JACK graph, then for one more delivery."""
        from rtgen.midi.graph import JackGraph

        graph = JackGraph.open("rtgen-guard") if self.daemon_ports else None
        if graph is None:
            time.sleep(0.5)
            return
        with graph:
            while set(graph.midi_outputs(f":{OUT_PORT}$")) & self.daemon_ports and time.monotonic() < deadline:
                time.sleep(0.1)
        time.sleep(0.5)

    def close(self) -> None:
        for port in self._ports.values():
            port.close()
        self._ports.clear()
