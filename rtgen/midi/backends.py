"""Which MIDI system rtgen talks to: JACK, ALSA, CoreMIDI or Windows MM, through python-rtmidi.

``auto`` picks what can work on this machine: on Linux JACK when a JACK server
answers, else ALSA when its sequencer (/dev/snd/seq) exists; CoreMIDI on macOS;
Windows MM on Windows. When nothing can carry MIDI the error says, in one line,
what to start or which option to use instead.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import Literal, NamedTuple

import rtmidi

from rtgen.errors import RtgenError

Backend = Literal["auto", "jack", "alsa", "coremidi", "windows"]
BACKENDS: tuple[str, ...] = ("auto", "jack", "alsa", "coremidi", "windows")

API_OF: dict[str, int] = {
    "jack": rtmidi.API_UNIX_JACK,
    "alsa": rtmidi.API_LINUX_ALSA,
    "coremidi": rtmidi.API_MACOSX_CORE,
    "windows": rtmidi.API_WINDOWS_MM,
}
API_NAME: dict[str, str] = {  # the names mido uses, shown in the UI
    "jack": "UNIX_JACK",
    "alsa": "LINUX_ALSA",
    "coremidi": "MACOSX_CORE",
    "windows": "WINDOWS_MM",
}
START_JACK = "start JACK with `jackd --no-realtime --sync -d dummy -r 48000 -p 64 &`"
ALSA_SEQUENCER = Path("/dev/snd/seq")
JACK_NO_START_SERVER = 0x01  # jack_options_t JackNoStartServer


class PortError(RtgenError):
    """No usable MIDI backend, or no port of the requested name."""


class PortList(NamedTuple):
    """Ports another program offers: ``inputs`` rtgen can read from, ``outputs`` it can send to."""

    backend: str
    inputs: list[str]
    outputs: list[str]


def jack_server_name() -> str:
    """The server a JACK client connects to: ``$JACK_DEFAULT_SERVER``, else 'default'."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def _jack_socket(name: str | None) -> str:
    """The server's request socket, as a plain string: the port watcher asks every second, and a Path would intern
    its parts each time, churning the interpreter's interned-string table until it rehashes to twice its size
    (a 3.7 MB step in RSS 26 minutes into a soak)."""
    name = name or jack_server_name()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(os.environ.get("JACK_TMPDIR", "/dev/shm"), f"jack_{name}_{uid}_0")


def jack_server_id(name: str | None = None) -> tuple[int, int] | None:
    """Identifies one run of the server (its socket's inode and change time); None when absent.

    A server restarted between two checks has a new id, so clients of the old
    run are known to be dead even though a server of that name answers.
    """
    try:
        info = os.stat(_jack_socket(name))
    except OSError:
        return None
    return info.st_ino, info.st_ctime_ns


def jack_server_running(name: str | None = None) -> bool:
    """True when a JACK server of that name accepts connections.

    Tries the server's request socket instead of opening a client, so a probe
    neither prints libjack's complaints nor adds a client to the graph.
    """
    path = _jack_socket(name)
    if not os.path.exists(path):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def compiled_backends() -> list[str]:
    """Backends this build of python-rtmidi supports."""
    compiled = set(rtmidi.get_compiled_api())
    return [name for name, api in API_OF.items() if api in compiled]


def available_backends() -> list[str]:
    """Backends that can open ports right now (compiled in, and their service is up)."""
    return [name for name in compiled_backends() if _usable(name)]


def _usable(backend: str) -> bool:
    if backend == "jack":
        return sys.platform.startswith("linux") and jack_server_running()
    if backend == "alsa":
        return ALSA_SEQUENCER.exists()
    if backend == "coremidi":
        return sys.platform == "darwin"
    return sys.platform == "win32"


def resolve_backend(backend: str = "auto") -> str:
    """The concrete backend for ``backend`` ('auto' or a name), or a one-line PortError on what to do."""
    if backend not in BACKENDS:
        raise PortError(f"unknown MIDI backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    compiled = compiled_backends()
    if backend != "auto":
        if backend not in compiled:
            raise PortError(f"python-rtmidi was built without {backend}; available: {', '.join(compiled)}")
        if not _usable(backend):
            raise PortError(_unusable_message(backend))
        return backend
    for candidate in _auto_order():
        if candidate in compiled and _usable(candidate):
            return candidate
    raise PortError(_nothing_message())


def _auto_order() -> list[str]:
    if sys.platform == "darwin":
        return ["coremidi", "jack"]
    if sys.platform == "win32":
        return ["windows"]
    return ["jack", "alsa"]


def _unusable_message(backend: str) -> str:
    if backend == "jack":
        server = jack_server_name()
        return f"no JACK server named {server!r} is running; {START_JACK}, or write to a file with --out file.mid"
    if backend == "alsa":
        return f"ALSA's sequencer {ALSA_SEQUENCER} is absent (load snd-seq), or use JACK: {START_JACK}"
    return f"the {backend} backend does not exist on this system ({sys.platform})"


OWN_OUTPUT = re.compile(r"(?:^|:)rtgen out(?: \d+:\d+)?$")  # JACK 'rtgen:rtgen out', ALSA 'rtgen:rtgen out 128:0'


def _nothing_message() -> str:
    if sys.platform == "win32":
        return "Windows MIDI is unavailable; install loopMIDI and pass its port with --in/--out, or use --out file.mid"
    return (
        f"no MIDI system: no JACK server is running and ALSA's sequencer {ALSA_SEQUENCER} is absent; "
        f"{START_JACK}, or write to a file with --out file.mid"
    )


def supports_virtual(backend: str) -> bool:
    """Whether rtgen can create its own named ports ('rtgen in', 'rtgen out') on this backend."""
    return backend != "windows"


def virtual_unsupported(backend: str) -> PortError:
    return PortError(
        f"{backend} cannot create virtual ports; install loopMIDI, create a port and pass its name "
        "with --in/--out, or use --out file.mid"
    )


def new_midi(kind: str, backend: str, client_name: str):
    """A python-rtmidi ``MidiIn``/``MidiOut`` (``kind`` 'in' or 'out') on ``backend``, or a PortError."""
    factory = rtmidi.MidiIn if kind == "in" else rtmidi.MidiOut
    try:
        return factory(API_OF[backend], name=client_name)
    except rtmidi.RtMidiError as error:
        raise PortError(f"cannot open a {backend} MIDI client ({error}); {START_JACK}") from None


def is_own_output(name: str) -> bool:
    """Whether ``name`` is an 'rtgen out' port (this daemon's or another's): never an input for rtgen."""
    return OWN_OUTPUT.search(name) is not None


def list_ports(backend: str = "auto", client_name: str = "rtgen-list") -> PortList:
    """The ports of other programs on ``backend``: sources rtgen can read (never an 'rtgen out') and destinations."""
    resolved = resolve_backend(backend)
    source = new_midi("in", resolved, client_name)
    destination = new_midi("out", resolved, client_name)
    try:
        sources = [name for name in source.get_ports() if not is_own_output(name)]
        return PortList(resolved, sources, destination.get_ports())
    finally:
        source.delete()
        destination.delete()


def find_port(names: list[str], wanted: str, direction: str, *, listening: bool = False) -> int:
    """Index of the port named ``wanted``: an exact name, else the one name containing it (any case).

    ``listening``: the port is for rtgen's input, which never takes an
    'rtgen out' (its own output looped into its input would have it answer
    itself); such ports are neither matched nor offered in the error.
    """
    own = {i for i, name in enumerate(names) if listening and is_own_output(name)}
    if wanted in names and names.index(wanted) not in own:
        return names.index(wanted)
    matches = [i for i, name in enumerate(names) if wanted.lower() in name.lower() and i not in own]
    if len(matches) == 1:
        return matches[0]
    if not matches and any(wanted.lower() in names[i].lower() for i in own):
        raise PortError(f"{wanted!r} is rtgen's own output; listening to it would have rtgen answer itself")
    shown = ", ".join(repr(n) for i, n in enumerate(names) if i not in own) or "none"
    if not matches:
        raise PortError(f"no MIDI {direction} port matches {wanted!r}; available: {shown}")
    candidates = ", ".join(repr(names[i]) for i in matches)
    raise PortError(f"MIDI {direction} port name {wanted!r} is ambiguous: {candidates}")
