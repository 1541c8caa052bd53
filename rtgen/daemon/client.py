"""A UI's end of the OSC protocol: ``DaemonControl`` over UDP to a running daemon.

The client subscribes to the daemon's status stream (renewed every
``RENEW_S``), keeps the newest snapshot, log lines and errors, and sends every
command as one OSC message, so the TUI, the web UI and tests drive the daemon
exactly as TouchOSC or SuperCollider would. A receive thread does the
reading; commands are sent from the caller's thread and return at once.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque

from pythonosc.osc_packet import OscPacket, ParseError

from rtgen.daemon.protocol import DEFAULT_PORT, PREFIX, message
from rtgen.daemon.status import Snapshot, from_json
from rtgen.errors import RtgenError

RENEW_S = 2.0  # the daemon drops a subscriber after 10 s without renewal
SILENT_S = 2.0  # no status for this long: the daemon is not answering


class DaemonClient:
    """One daemon at ``host:port``; ``connect`` waits for its first status, ``close`` unsubscribes."""

    def __init__(self, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
        self.target = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1" if host in ("127.0.0.1", "localhost") else "", 0))
        self.sock.settimeout(0.1)
        self._snap: Snapshot | None = None
        self._status_at = 0.0  # monotonic time of the newest status
        self.osc_counts: dict[str, int] = {}
        self.logs: deque[str] = deque(maxlen=200)
        self._errors: deque[str] = deque(maxlen=100)
        self.send_failed = 0
        self.gone: str | None = None  # the daemon's goodbye ("stopped", an error), once it said one
        self._presets: list[tuple[str, str]] | None = None
        self._replied = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtgen-osc-client", daemon=True)

    def connect(self, timeout_s: float = 10.0) -> DaemonClient:
        """Subscribe and wait for the first status; raises ``RtgenError`` when no daemon answers."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        with self._replied:
            while self._snap is None and time.monotonic() < deadline:
                self.send("subscribe")
                self._replied.wait(0.25)
        if self._snap is None:
            self.close()
            raise RtgenError(f"no rtgen daemon answers OSC at {self.target[0]}:{self.target[1]} (is `rtgen run` up?)")
        return self

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self.send("unsubscribe")
            if self._thread.is_alive():
                self._thread.join(timeout=1.0)
            self.sock.close()

    # ---- what the daemon says ----

    def snapshot(self) -> Snapshot:
        """The newest status (the same object until a new one arrives)."""
        if self._snap is None:
            raise RtgenError("not connected to a daemon; call connect() first")
        return self._snap

    @property
    def answering(self) -> bool:
        return self.gone is None and time.monotonic() - self._status_at < SILENT_S

    def take_errors(self) -> list[str]:
        errors = []
        while self._errors:
            errors.append(self._errors.popleft())
        return errors

    def wait_for(self, predicate, timeout_s: float = 5.0) -> bool:
        """Wait until ``predicate(snapshot)`` holds for a status received from now on."""
        deadline = time.monotonic() + timeout_s
        with self._replied:
            while time.monotonic() < deadline:
                if self._snap is not None and predicate(self._snap):
                    return True
                self._replied.wait(0.05)
        return False

    # ---- DaemonControl ----

    def send(self, name: str, *args: object) -> None:
        """Send ``/rtgen/<name> args``; a failed send (the UI on its way out) is counted in ``send_failed``."""
        try:
            self.sock.sendto(message(PREFIX + name, *args), self.target)
        except OSError:
            self.send_failed += 1

    def set_controls(self, **changes: object) -> None:
        """Any controls (``weights`` as a genre -> weight dict), sent as one ``/rtgen/controls`` change."""
        pairs: list[object] = []
        for name, value in changes.items():
            if name == "weights":
                pairs += [item for genre, weight in value.items() for item in (f"weights.{genre}", float(weight))]
            else:
                pairs += [name, value]
        self.send("controls", *pairs)

    def set_tempo(self, tempo_bpm: float) -> None:
        self.send("tempo_bpm", float(tempo_bpm))

    def set_mode(self, mode: str) -> None:
        self.send("mode", mode)

    def start(self) -> None:
        self.send("play")

    def stop(self) -> None:
        self.send("stop")

    def panic(self) -> None:
        self.send("panic")

    def load_preset(self, name_or_path: str) -> None:
        self.send("preset/load", name_or_path)

    def save_preset(self, name: str) -> None:
        self.send("preset/save", name)

    def load_seed(self, path: str) -> None:
        self.send("seed/load", path)

    def learn(self, control: str | None) -> None:
        self.send("learn", control or "")

    def presets(self, timeout_s: float = 1.0) -> list[tuple[str, str]]:
        """The daemon's presets as (name, description) pairs (asked and answered over OSC)."""
        with self._replied:
            self._presets = None
            self.send("preset/list")
            self._replied.wait_for(lambda: self._presets is not None, timeout_s)
            if self._presets is None:
                raise RtgenError("the daemon did not answer with its presets")
            return self._presets

    # ---- the receive thread ----

    def _run(self) -> None:
        renew_at = time.monotonic() + RENEW_S
        while not self._stop.is_set():
            if time.monotonic() >= renew_at:
                renew_at += RENEW_S
                self.send("subscribe")
            try:
                data, _ = self.sock.recvfrom(65536)
                messages = [m.message for m in OscPacket(data).messages]
            except (TimeoutError, ParseError):
                continue
            except OSError:
                return
            for msg in messages:
                self._take(msg.address[len(PREFIX) :], msg.params)

    def _take(self, name: str, params: list) -> None:
        with self._replied:
            if name == "status":
                data = json.loads(params[0])
                self.osc_counts = data.pop("osc", {})
                self._snap = from_json(data)
                self._status_at = time.monotonic()
            elif name == "log":
                self.logs.append(params[0])
            elif name == "error":
                self._errors.append(params[0])
            elif name == "preset/list":
                self._presets = [(str(n), str(d)) for n, d in zip(params[::2], params[1::2], strict=False)]
            elif name == "bye":
                self.gone = str(params[0]) if params else "stopped"
            self._replied.notify_all()
