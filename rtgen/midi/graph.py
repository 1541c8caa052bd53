"""The JACK graph through libjack (ctypes): the server's period, and who is connected to whom.

python-rtmidi opens ports but cannot read the graph. Three things need it: the
output offset (one JACK period early lands a note on its beat), the guard
(``rtgen.daemon.guard``), which follows what rtgen's output is connected to,
so that it can silence those synths if the daemon dies, and the port watcher
(``rtgen.midi.watcher``), which restores rtgen's connections after a server
restart. A ``JackGraph`` is a
client with no ports: it never starts a server and adds nothing to the graph
a patchbay would show as a connection.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

from rtgen.midi.backends import JACK_NO_START_SERVER, jack_server_running

JACK_PORT_IS_INPUT = 0x1
JACK_PORT_IS_OUTPUT = 0x2
MIDI_TYPE = b"8 bit raw midi"


def _libjack():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
    except OSError:
        return None
    lib.jack_client_open.restype = ctypes.c_void_p
    lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    for function in (lib.jack_get_buffer_size, lib.jack_get_sample_rate, lib.jack_client_close):
        function.argtypes = [ctypes.c_void_p]
    lib.jack_get_ports.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.jack_get_ports.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
    lib.jack_port_by_name.restype = ctypes.c_void_p
    lib.jack_port_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.jack_port_get_all_connections.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.jack_port_get_all_connections.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.jack_free.argtypes = [ctypes.c_void_p]
    lib.jack_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    return lib


class JackGraph:
    """A port-less libjack client; ``open`` returns None when no server (or no libjack) is there."""

    def __init__(self, lib, client: int) -> None:
        self.lib = lib
        self.client = client

    @classmethod
    def open(cls, name: str = "rtgen-graph") -> JackGraph | None:
        if not jack_server_running():
            return None
        lib = _libjack()
        if lib is None:
            return None
        status = ctypes.c_int()
        client = lib.jack_client_open(f"{name}-{os.getpid()}".encode(), JACK_NO_START_SERVER, ctypes.byref(status))
        return cls(lib, client) if client else None

    def close(self) -> None:
        if self.client:
            self.lib.jack_client_close(self.client)
            self.client = 0

    def __enter__(self) -> JackGraph:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def period(self) -> tuple[int, int]:
        """(frames per period, sample rate in Hz)."""
        return int(self.lib.jack_get_buffer_size(self.client)), int(self.lib.jack_get_sample_rate(self.client))

    def _names(self, array) -> list[str]:
        if not array:
            return []
        names = []
        index = 0
        while array[index] is not None:
            names.append(array[index].decode(errors="replace"))
            index += 1
        self.lib.jack_free(ctypes.cast(array, ctypes.c_void_p))
        return names

    def midi_outputs(self, pattern: str = "") -> list[str]:
        """Full names of MIDI output ports matching the regular expression ``pattern``."""
        return self._names(self.lib.jack_get_ports(self.client, pattern.encode(), MIDI_TYPE, JACK_PORT_IS_OUTPUT))

    def midi_inputs(self, pattern: str = "") -> list[str]:
        """Full names of MIDI input ports (a synth's, say) matching the regular expression ``pattern``."""
        return self._names(self.lib.jack_get_ports(self.client, pattern.encode(), MIDI_TYPE, JACK_PORT_IS_INPUT))

    def connections(self, port: str) -> list[str]:
        """Full names of the ports connected to ``port``; [] when the port is gone."""
        handle = self.lib.jack_port_by_name(self.client, port.encode())
        if not handle:
            return []
        return self._names(self.lib.jack_port_get_all_connections(self.client, handle))

    def connect(self, source: str, destination: str) -> bool:
        """Connect two ports by full name; True when they are connected now (already were, too)."""
        result = self.lib.jack_connect(self.client, source.encode(), destination.encode())
        return result in (0, errno.EEXIST)


def jack_period() -> tuple[int, int] | None:
    """(frames per period, sample rate) of the running JACK server; None when none answers."""
    graph = JackGraph.open("rtgen-probe")
    if graph is None:
        return None
    with graph:
        return graph.period()
