"""Watching rtgen's ports while it plays: a JACK server or peer that goes and comes back.

``PortWatcher`` checks every port every ``interval_s`` from its own thread:
a port reopens by name when its peer or its server returns
(``rtgen.midi.ports``). On JACK, ``ConnectionKeeper`` also remembers what
each of rtgen's own ports was connected to, so that after a server restart
the connections a performer or a session manager made come back with the
ports, and the daemon's panic on the news reaches the synths again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from rtgen.midi.backends import jack_server_id, jack_server_running
from rtgen.midi.graph import JackGraph
from rtgen.midi.interface import Port
from rtgen.midi.ports import ZOMBIES

log = logging.getLogger("rtgen.midi.watcher")
RETRY_S = 60.0  # after a restart, a peer that has not come back is looked for this long
REOPENED = "port reopened"  # rtgen.midi.ports says this when a port came back with its server


class ConnectionKeeper:
    """The JACK connections of rtgen's own (virtual) ports, kept by name across server restarts.

    While the server runs, each check records every port's peers. A restart
    is known from the ports (they say they reopened) or from the server's id;
    then the recorded peers are connected again, each as soon as it exists,
    for up to ``RETRY_S`` seconds. Port names are ``client:port`` with the
    client name rtgen asked for; JACK keeps it as long as no other client
    holds it, which is why rtgen's input and output ask for different names.
    """

    def __init__(self, ports: Iterable[Port]) -> None:
        self.ports = [p for p in ports if p.backend == "jack" and p.virtual]
        self.known: dict[str, tuple[str, list[str]]] = {}  # full port name -> (kind "in"/"out", peers)
        self.pending: dict[str, tuple[str, set[str], float]] = {}  # full name -> (kind, peers, give up at)
        self._graph: JackGraph | None = None
        self._graph_server: tuple[int, int] | None = None

    def restarted(self) -> None:
        """The server came back: what was known is to be restored."""
        deadline = time.monotonic() + RETRY_S
        self.pending = {name: (kind, set(peers), deadline) for name, (kind, peers) in self.known.items() if peers}
        self._drop_graph()

    def check(self) -> list[str]:
        """Record the connections, or restore them after a restart; a line per connection restored."""
        if not self.ports or not jack_server_running(self.ports[0].server):
            self._drop_graph()
            return []
        server = jack_server_id(self.ports[0].server)
        if self._graph is not None and server != self._graph_server:
            self.restarted()  # it went and came back between two checks
        graph = self._open_graph(server)
        if graph is None:
            return []
        lines = []
        for port in self.ports:
            name = f"{port.client_name}:{port.port_name}"
            if name in self.pending:
                lines += self._restore(graph, name)
            elif port.connected:
                self.known[name] = (port.kind, graph.connections(name))
        return lines

    def _restore(self, graph: JackGraph, name: str) -> list[str]:
        kind, peers, deadline = self.pending[name]
        lines = []
        for peer in sorted(peers):
            source, destination = (name, peer) if kind == "out" else (peer, name)
            if graph.connect(source, destination):
                peers.discard(peer)
                lines.append(f"{name} reconnected to {peer} after the JACK server restarted")
        if not peers or time.monotonic() > deadline:
            del self.pending[name]
            if peers:
                lines.append(f"{name}: {', '.join(sorted(peers))} did not come back; not reconnected")
        return lines

    def _open_graph(self, server: tuple[int, int] | None) -> JackGraph | None:
        if self._graph is None:
            self._graph = JackGraph.open("rtgen-keeper")
            self._graph_server = server
        return self._graph

    def _drop_graph(self) -> None:
        """Our graph client died with its server: keep it unclosed (closing it then crashes libjack)."""
        if self._graph is not None:
            ZOMBIES.append(self._graph)
            self._graph = None

    def close(self) -> None:
        if self._graph is not None and jack_server_id(self.ports[0].server) == self._graph_server:
            self._graph.close()
        self._graph = None


class PortWatcher:
    """Checks ports every ``interval_s`` from its own thread and reopens what returns.

    Each change (server stopped, peer vanished, reconnected, a connection
    restored) is logged and passed to ``on_event``; the music threads keep
    running meanwhile.
    """

    def __init__(self, ports: Iterable[Port], interval_s: float = 0.5, on_event: Callable[[str], None] | None = None):
        self.ports = list(ports)
        self.interval_s = interval_s
        self.on_event = on_event
        self.events: deque[str] = deque(maxlen=100)
        self.keeper = ConnectionKeeper(self.ports)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> list[str]:
        lines = [line for port in self.ports if (line := port.check()) is not None]
        if any(REOPENED in line for line in lines):
            self.keeper.restarted()
        lines += self.keeper.check()
        for line in lines:
            self.events.append(line)
            log.warning(line)
            if self.on_event is not None:
                self.on_event(line)
        return lines

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="rtgen-port-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.keeper.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_once()
