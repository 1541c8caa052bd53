"""A private JACK server and a small JACK MIDI client, for end-to-end tests and ``rtgen bench realtime``.

``JackServer`` starts ``jackd --sync -d dummy`` (real-time where permitted)
under a unique name and points ``JACK_DEFAULT_SERVER`` at it, so rtgen and
every subprocess talk to it and never to a user's own server. ``JackClient``
plays the other program: a synth that records what rtgen sends (stamped with
``time.perf_counter()``), or a keyboard that plays into rtgen.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence

import mido
import rtmidi

from rtgen.errors import RtgenError
from rtgen.midi.backends import find_port, jack_server_running
from rtgen.midi.messages import ALL_NOTES_OFF_CC
from rtgen.midi.polling import InputPoller

_serial = itertools.count()
JACK_PRIORITY = 70  # SCHED_FIFO of the server's threads (clients' process threads get one less): above rtgen's own


def realtime_permitted() -> bool:
    """True when this process may use SCHED_FIFO (asked for, then given up, on a throwaway thread)."""
    granted: list[bool] = []

    def probe() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        except (OSError, AttributeError):
            granted.append(False)
        else:
            granted.append(True)

    thread = threading.Thread(target=probe, name="rtgen-rt-probe")
    thread.start()
    thread.join()
    return granted[0]


class JackServer:
    """``jackd [--realtime -P 70 | --no-realtime] --sync -n NAME -d dummy -r RATE -p PERIOD``, run by this process.

    Two choices keep MIDI between clients whole and on time on a shared
    machine (``rtgen bench jack`` measures both):

    * ``--sync``: in JACK's default asynchronous mode a client that misses its
      cycle loses the MIDI it wrote there; in synchronous mode the cycle waits
      for it. The dummy driver has no hardware deadline to miss.
    * real-time scheduling where this machine permits it (``realtime=None``
      asks): without it the server's and clients' process threads queue
      behind every busy process, and with two spinning processes on 2 cores
      MIDI arrived up to 2 s late; with it, on time.
    """

    def __init__(
        self,
        name: str | None = None,
        rate_hz: int = 48000,
        period_frames: int = 64,
        sync: bool = True,
        realtime: bool | None = None,
    ) -> None:
        self.name = name or f"rtgen-test-{os.getpid()}-{next(_serial)}"
        self.rate_hz = rate_hz
        self.period_frames = period_frames
        self.sync = sync
        self.realtime = realtime_permitted() if realtime is None else realtime
        self._process: subprocess.Popen | None = None
        self._log = None
        self._previous_env: str | None = None

    @property
    def period_s(self) -> float:
        return self.period_frames / self.rate_hz

    def start(self, timeout_s: float = 10.0) -> JackServer:
        """Start the server, set ``JACK_DEFAULT_SERVER``, and return once it accepts clients."""
        jackd = shutil.which("jackd")
        if jackd is None:
            raise RtgenError("jackd is not installed (apt-get install jackd2)")
        scheduling = ["--realtime", "--realtime-priority", str(JACK_PRIORITY)] if self.realtime else ["--no-realtime"]
        mode = ["--sync", "--timeout", "2000"] if self.sync else []
        command = [jackd, *scheduling, *mode, "-n", self.name, "-d", "dummy"]
        setpriv = shutil.which("setpriv")  # util-linux: the server dies with us even when we are killed
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "TERM", *command]
        command += ["-r", str(self.rate_hz), "-p", str(self.period_frames)]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - jackd writes here while it runs; closed in stop()
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not jack_server_running(self.name):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RtgenError(f"jackd {self.name!r} did not start: {tail}")
            time.sleep(0.02)
        self._previous_env = os.environ.get("JACK_DEFAULT_SERVER")
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        return self

    def log_tail(self, lines: int = 5) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").splitlines()
        return " | ".join(line for line in text if "XRun" not in line)[-lines * 120 :]

    def xruns(self) -> int:
        """Cycles the server reported late (XRun lines in its log) so far; a starved CPU drops MIDI there."""
        if self._log is None or self._log.closed:
            return 0
        self._log.seek(0)
        return self._log.read().count(b"XRun")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if os.environ.get("JACK_DEFAULT_SERVER") == self.name:
            if self._previous_env is None:
                os.environ.pop("JACK_DEFAULT_SERVER", None)
            else:
                os.environ["JACK_DEFAULT_SERVER"] = self._previous_env
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._log.close()

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0, poll_s: float = 0.01) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; True when it held."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)


def unpaired_notes(received) -> dict[tuple[int, int], int]:
    """Note-ons minus note-offs per (channel, pitch) in ``(t, message)`` pairs a synth received, where not 0.

    CC123 (all notes off) on a channel ends every note of that channel.
    """
    balance: dict[tuple[int, int], int] = {}
    for _, message in received:
        if message.type == "note_on" and message.velocity > 0:
            balance[(message.channel, message.note)] = balance.get((message.channel, message.note), 0) + 1
        elif message.type in ("note_on", "note_off"):
            key = (message.channel, message.note)
            balance[key] = max(0, balance.get(key, 0) - 1)
        elif message.type == "control_change" and message.control == ALL_NOTES_OFF_CC:
            for key in balance:
                if key[0] == message.channel:
                    balance[key] = 0
    return {key: count for key, count in balance.items() if count}


def jack_connections(port: str) -> list[str]:
    """Full names of the ports connected to ``port`` (via ``jack_lsp -c``)."""
    result = subprocess.run(["jack_lsp", "-c", port], capture_output=True, text=True, timeout=10)
    lines = result.stdout.splitlines()
    return [line.strip() for line in lines[1:] if line.startswith((" ", "\t"))]


class JackClient:
    """Another program on the JACK graph: records what reaches its input, sends from its output.

    Received messages are kept as ``(perf_counter seconds, mido.Message)``;
    ``wait_for`` blocks on a condition variable until a predicate over them
    holds, so tests wait for events rather than sleeping. Input is polled by an
    ``InputPoller`` rather than called back from JACK's process thread, where
    waiting for the GIL made JACK drop whole cycles of MIDI (issue 5).
    """

    def __init__(self, name: str = "rtgen-tester") -> None:
        self.name = name
        self.received: list[tuple[float, mido.Message]] = []
        self.malformed = 0
        self._changed = threading.Condition()
        self._in = self._new_input()
        self._out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
        self._poller = InputPoller(lambda: self._in, self._on_message, name=f"{name}-in")

    def _new_input(self) -> rtmidi.MidiIn:
        midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=self.name, queue_size_limit=16384)
        midi.ignore_types(sysex=False, timing=False, active_sense=False)
        return midi

    def _on_message(self, t: float, data: list[int]) -> None:
        try:
            message = mido.Message.from_bytes(data)
        except (ValueError, TypeError, IndexError):
            self.malformed += 1  # byte strings mido cannot parse: counted, the poller thread goes on
            return
        with self._changed:
            self.received.append((t, message))
            self._changed.notify_all()

    def listen_to(self, port: str, own_port: str = "in") -> str:
        """Connect the output port matching ``port`` to this client's input; returns its full name."""
        names = self._in.get_ports()
        index = find_port(names, port, "input")
        self._in.open_port(index, own_port)
        return names[index]

    def open_input(self, own_port: str = "in") -> None:
        """A port others connect to (as a synth's input would be)."""
        self._in.open_virtual_port(own_port)

    def close_input(self) -> None:
        """Close the input port (it vanishes from the graph); a fresh one can then be opened."""
        with self._poller.lock:
            self._in.close_port()
            self._in.delete()
            self._in = self._new_input()

    def send_to(self, port: str, own_port: str = "out") -> str:
        """Connect this client's output to the input port matching ``port``; returns its full name."""
        names = self._out.get_ports()
        index = find_port(names, port, "output")
        self._out.open_port(index, own_port)
        return names[index]

    def send(self, message: mido.Message) -> float:
        """Send now; returns the perf_counter time of sending."""
        self._out.send_message(message.bytes())
        return time.perf_counter()

    def send_phrase(self, events: Sequence[tuple[float, mido.Message]], start: float | None = None) -> list[float]:
        """Send ``(offset_s, message)`` at ``start + offset_s`` (absolute times); returns when each went."""
        start = time.perf_counter() if start is None else start
        sent = []
        for offset, message in events:
            due = start + offset
            while (left := due - time.perf_counter()) > 0.002:
                time.sleep(left - 0.001)
            while time.perf_counter() < due:
                pass  # spin the last fraction of a millisecond: a sleep would wake too late
            sent.append(self.send(message))
        return sent

    def wait_route(self, send_probe: Callable[[], object], timeout_s: float = 5.0) -> bool:
        """Call ``send_probe`` until something reaches this client, then forget it; True once routed.

        A fresh JACK connection carries events only from a later process cycle,
        so the first messages after connecting can be lost on a busy machine.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            send_probe()
            if self.wait_count(1, timeout_s=0.05):
                self.clear()
                return True
        return False

    def wait_for(self, predicate: Callable[[list[tuple[float, mido.Message]]], bool], timeout_s: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.received), timeout_s)

    def wait_count(self, count: int, timeout_s: float = 5.0, kind: str | None = None) -> bool:
        """Wait until ``count`` messages (of mido type ``kind``, if given) have arrived."""
        return self.wait_for(lambda got: sum(1 for _, m in got if kind is None or m.type == kind) >= count, timeout_s)

    def messages(self) -> list[mido.Message]:
        with self._changed:
            return [message for _, message in self.received]

    def clear(self) -> None:
        with self._changed:
            self.received.clear()

    def close(self) -> None:
        self._poller.stop()
        for midi in (self._in, self._out):
            midi.close_port()
            midi.delete()

    def __enter__(self) -> JackClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def record_main(argv: Sequence[str] | None = None) -> int:
    """``python -m rtgen.midi.jack PORT COUNT QUIET_S``: a receiver in its own process.

    Connects to the output port matching PORT, prints ``routed`` once the first
    message arrives (the sender probes until then), then, after COUNT note-ons
    or QUIET_S seconds without a message, one line per message received after the probes:
    ``perf_counter_seconds byte byte ...``. perf_counter is the system-wide
    monotonic clock on Linux, so the sender can compare its own stamps.
    """
    import sys

    port, count, quiet_s = (argv if argv is not None else sys.argv[1:])[:3]
    with JackClient(f"rtgen-rx-{os.getpid()}") as client:
        client.listen_to(port)
        print("ready", flush=True)
        client.wait_count(1, timeout_s=30.0)
        client.clear()
        print("routed", flush=True)
        seen = -1
        while not client.wait_count(int(count), timeout_s=float(quiet_s), kind="note_on"):
            if len(client.received) == seen:
                break  # nothing arrived for quiet_s: the rest was lost
            seen = len(client.received)
        for t, message in list(client.received):
            print(f"{t!r} " + " ".join(str(b) for b in message.bytes()))
    return 0


if __name__ == "__main__":
    raise SystemExit(record_main())
