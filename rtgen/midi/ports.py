"""MIDI ports: python-rtmidi directly, a bounded input queue stamped on arrival, and a watcher that reconnects.

Input uses no RtMidi callback (one would run Python, and wait for the GIL, in
JACK's process thread, which then overruns and JACK drops its MIDI): a thread
drains RtMidi's C++ queue every millisecond, rebuilds arrival times from its
delta times, and appends to a bounded deque; the listener polls. mido's own
rtmidi backend is not used because it drops rtmidi's timing and queues without bound.

A port is either rtgen's own virtual port ('rtgen in', 'rtgen out', which
synths and DAWs connect to) or a connection to another program's port, found
by name right before opening. ``check`` notices a vanished JACK server or peer
and reopens by name when it returns (``rtgen.midi.watcher`` calls it);
meanwhile sends are dropped and counted, never raised into the output thread.
Every port here, the fakes too, offers ``rtgen.midi.interface``'s ``MidiInput`` or ``MidiOutput``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

import mido
import rtmidi

from rtgen.midi.backends import (
    API_NAME,
    Backend,
    PortError,
    find_port,
    jack_server_id,
    jack_server_name,
    jack_server_running,
    list_ports,
    new_midi,
    resolve_backend,
    supports_virtual,
    virtual_unsupported,
)
from rtgen.midi.messages import panic_messages
from rtgen.midi.polling import InputPoller

__all__ = [
    "Backend",
    "FakeInputPort",
    "FakeOutputPort",
    "InputPort",
    "MessageQueue",
    "OutputPort",
    "PortError",
    "list_ports",
    "open_input",
    "open_output",
]

log = logging.getLogger("rtgen.midi.ports")

# Clients whose JACK server died. Closing one after the server is back crashes
# libjack (a segfault in close_port), so they are kept, unused, until exit.
ZOMBIES: list[object] = []


class MessageQueue:
    """A bounded queue of ``(t, message)``; what arrives while it is full is dropped and counted.

    Dropping the newest, before it is parsed, makes a flood cheap: a message
    that cannot be kept costs a length check, not a parse, so the input
    thread does not take the interpreter away from the output thread.
    ``put_bytes`` is the only producer (the input poller), ``poll`` the only
    consumer; deque appends and pops are atomic, so no lock is needed.
    """

    def __init__(self, queue_size: int = 1024) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._items: deque[tuple[float, mido.Message]] = deque(maxlen=queue_size)
        self.received = 0  # messages parsed and queued
        self.dropped = 0  # messages that arrived while the queue was full
        self.malformed = 0  # byte strings mido could not parse

    def put_bytes(self, t: float, data: Iterable[int]) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
            return
        try:
            message = mido.Message.from_bytes(list(data))
        except (ValueError, TypeError, IndexError):
            self.malformed += 1
            return
        self.put(t, message)

    def put(self, t: float, message: mido.Message) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
            return
        self._items.append((t, message))
        self.received += 1

    def poll(self, limit: int | None = None) -> list[tuple[float, mido.Message]]:
        """What is queued, oldest first, at most ``limit`` (None: everything); returns at once."""
        items = []
        popleft = self._items.popleft
        for _ in range(len(self._items) if limit is None else limit):
            try:
                items.append(popleft())
            except IndexError:
                break
        return items

    def __len__(self) -> int:
        return len(self._items)


class _QueuedInput:
    """What every input offers the listener: its ``MessageQueue`` polled, and the queue's counts."""

    queue: MessageQueue

    def poll(self, limit: int | None = None) -> list[tuple[float, mido.Message]]:
        return self.queue.poll(limit)

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    @property
    def malformed(self) -> int:
        return self.queue.malformed


class _RtPort:
    """One python-rtmidi client with one port: virtual (``target`` None) or connected to ``target``.

    ``lock`` is held while the client is in use by the thread that moves MIDI
    (the input poller's drain, an output send) and while the port watcher
    reconnects or closes it, so the client never changes under a call.
    """

    kind = "in"

    def __init__(self, backend: str, client_name: str, port_name: str, target: str | None) -> None:
        self.lock = threading.Lock()
        self.backend = backend
        self.client_name = client_name
        self.port_name = port_name  # rtgen's own port
        self.target = target  # the name asked for, None for a virtual port
        self.name = port_name if target is None else target  # what the port is known as
        self.server = jack_server_name() if backend == "jack" else None  # the JACK server it lives on
        self._server_id: tuple[int, int] | None = None
        self.connected = False
        self._server_lost = False
        self._midi = None
        self._open()

    @property
    def virtual(self) -> bool:
        return self.target is None

    @property
    def api_name(self) -> str:
        return API_NAME[self.backend]

    def _prepare(self, midi) -> None:
        """Set up a fresh client before its port opens (input: callback and filters)."""

    def _open(self) -> None:
        midi = new_midi(self.kind, self.backend, self.client_name)
        self._prepare(midi)
        try:
            if self.target is None:
                midi.open_virtual_port(self.port_name)
            else:
                names = midi.get_ports()
                index = find_port(
                    names, self.name, self._direction, listening=self.kind == "in"
                )  # the full name once resolved
                midi.open_port(index, self.port_name)
                self.name = names[index]
        except rtmidi.RtMidiError as error:
            midi.delete()
            raise PortError(f"cannot open MIDI {self._direction} port {self.name!r}: {error}") from None
        except PortError:
            midi.delete()
            raise
        self._midi = midi
        self._server_id = jack_server_id(self.server) if self.server is not None else None
        self.connected = True

    @property
    def _direction(self) -> str:
        return "input" if self.kind == "in" else "output"

    def check(self) -> str | None:
        """See whether the port still works and reopen what came back; a log line when something changed."""
        restarted = False
        if self.server is not None:
            if not jack_server_running(self.server):
                if self._server_lost:
                    return None
                self._lose_server()
                return f"MIDI {self._direction} {self.name!r}: JACK server {self.server!r} stopped; waiting for it"
            if not self._server_lost and jack_server_id(self.server) != self._server_id:
                self._lose_server()  # it stopped and came back between two checks
                restarted = True
        try:
            if self._server_lost:
                return self._reopen_client("restarted" if restarted else "is back")
            if self.target is not None:
                return self._check_peer()
        except (PortError, rtmidi.RtMidiError) as error:
            log.debug("reopening %s failed: %s", self.name, error)
        return None

    def _lose_server(self) -> None:
        """Our client died with its server: bury it (closing it later would crash libjack)."""
        self._server_lost = True
        self.connected = False
        midi, self._midi = self._midi, None
        if midi is not None:
            ZOMBIES.append(midi)

    def _reopen_client(self, what: str) -> str:
        self._open()
        self._server_lost = False
        return f"MIDI {self._direction} {self.name!r}: JACK server {what}; port reopened"

    def _check_peer(self) -> str | None:
        names = self._midi.get_ports()
        present = self.name in names
        if self.connected and not present:
            self.connected = False
            return f"MIDI {self._direction} {self.name!r} vanished; reconnecting when it returns"
        if present and not self.connected:
            with self.lock:
                self._midi.close_port()
                self._midi.open_port(names.index(self.name), self.port_name)
            self.connected = True
            return f"MIDI {self._direction} {self.name!r} is back; reconnected"
        return None

    def close(self) -> None:
        with self.lock:
            midi, self._midi = self._midi, None
            self.connected = False
        if midi is None:
            return
        if self.server is not None and (self._server_lost or not jack_server_running(self.server)):
            ZOMBIES.append(midi)
            return
        midi.close_port()
        midi.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class InputPort(_QueuedInput, _RtPort):
    """Messages from a MIDI port, stamped with ``time.perf_counter()`` on arrival; ``poll()`` drains them.

    RtMidi holds up to ``queue_size`` messages in C++ until ``InputPoller``
    moves them, every millisecond, into the bounded ``MessageQueue``.
    """

    kind = "in"

    def __init__(self, backend: str, client_name: str, port_name: str, target: str | None, queue_size: int) -> None:
        self.queue = MessageQueue(queue_size)
        super().__init__(backend, client_name, port_name, target)  # RtMidi queues what arrives before the poller
        self._poller = InputPoller(lambda: self._midi, self.queue.put_bytes, lock=self.lock)

    def _prepare(self, midi) -> None:
        midi.ignore_types(sysex=False, timing=False, active_sense=True)  # keep MIDI clock for the clock follower

    def close(self) -> None:
        self._poller.stop()
        super().close()


class OutputPort(_RtPort):
    """Sends to a MIDI port. A send that cannot go out (peer gone, server down) is counted in ``failed``."""

    kind = "out"

    def __init__(self, backend: str, client_name: str, port_name: str, target: str | None) -> None:
        self.sent = 0
        self.failed = 0
        super().__init__(backend, client_name, port_name, target)

    def send(self, message: mido.Message) -> None:
        """Send now; dropped and counted in ``failed`` while the peer is away or being reconnected.

        Called by one writer (the output thread). The lock is only tried, never
        waited for: it is busy only while the watcher reconnects or the port
        closes, and the output thread must not wait on another thread.
        """
        if not self.lock.acquire(blocking=False):
            self.failed += 1
            return
        try:
            self._send(message)
        finally:
            self.lock.release()

    def _send(self, message: mido.Message) -> None:
        midi = self._midi
        if midi is None or not self.connected:
            self.failed += 1
            return
        try:
            midi.send_message(message.bytes())
        except (rtmidi.RtMidiError, ValueError) as error:
            self.failed += 1
            log.debug("send to %s failed: %s", self.name, error)
            return
        self.sent += 1

    def panic(self) -> None:
        for message in panic_messages():
            self.send(message)

    def close(self, flush_s: float = 0.25) -> None:
        """Close after ``flush_s`` (s): RtMidi's JACK output hands events over in the next process
        cycles and offers no way to wait for that; closing earlier loses or garbles the last ones (the
        panic CCs, typically: seen with 50 ms on a loaded machine). Paid once, on the way out."""
        if self.connected and self.sent:
            time.sleep(flush_s)
        super().close()


def open_input(
    name: str | None = None,
    backend: str = "auto",
    client_name: str = "rtgen-in",
    virtual_name: str = "rtgen in",
    queue_size: int = 1024,
) -> InputPort:
    """rtgen's virtual input ``virtual_name`` (``name`` None), or a connection from the port matching ``name``."""
    resolved = resolve_backend(backend)
    if name is None and not supports_virtual(resolved):
        raise virtual_unsupported(resolved)
    return InputPort(resolved, client_name, virtual_name, name, queue_size)


def open_output(
    name: str | None = None,
    backend: str = "auto",
    client_name: str = "rtgen",
    virtual_name: str = "rtgen out",
) -> OutputPort:
    """rtgen's virtual output ``virtual_name`` (``name`` None), or a connection to the port matching ``name``."""
    resolved = resolve_backend(backend)
    if name is None and not supports_virtual(resolved):
        raise virtual_unsupported(resolved)
    return OutputPort(resolved, client_name, virtual_name, name)


class FakeOutputPort:
    """An in-process output for tests: records ``(now(), message)`` for every send."""

    backend = api_name = "fake"
    virtual = False

    def __init__(self, now: Callable[[], float] = time.perf_counter, name: str = "fake out") -> None:
        self.now = now
        self.name = name
        self.connected = True
        self.sent: list[tuple[float, mido.Message]] = []
        self.failed = 0
        self.closed = False

    def send(self, message: mido.Message) -> None:
        if self.closed or not self.connected:
            self.failed += 1
            return
        self.sent.append((self.now(), message))

    def panic(self) -> None:
        for message in panic_messages():
            self.send(message)

    def messages(self) -> list[mido.Message]:
        return [message for _, message in self.sent]

    def check(self) -> str | None:
        return None

    def close(self) -> None:
        self.closed = True


class FakeInputPort(_QueuedInput):
    """An in-process input for tests: ``push`` stands in for the MIDI callback."""

    backend = api_name = "fake"
    virtual = False

    def __init__(self, queue_size: int = 1024, now: Callable[[], float] = time.perf_counter, name: str = "fake in"):
        self.queue = MessageQueue(queue_size)
        self.now = now
        self.name = name
        self.connected = True

    def push(self, message: mido.Message, t: float | None = None) -> None:
        self.queue.put(self.now() if t is None else t, message)

    def check(self) -> str | None:
        return None

    def close(self) -> None:
        self.connected = False
