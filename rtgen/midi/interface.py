"""The narrow interface every MIDI port offers, so nothing that uses a port asks which kind it is.

Implemented by python-rtmidi's ports on every backend (JACK, ALSA, CoreMIDI,
Windows MM: ``rtgen.midi.ports``), the .mid file output
(``rtgen.daemon.recording.MidiFilePort``), the daemon's tap on its output
(``rtgen.daemon.wiring.TapPort``) and the in-process fakes of the tests. The
daemon, the output scheduler and the port watcher ask only this; a port with
nothing to watch (a file, a fake) answers ``check()`` with None.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import mido


class Port(Protocol):
    """What any port, input or output, tells and does."""

    @property
    def name(self) -> str: ...  # rtgen's own port name, the peer's full name, or the file's path
    @property
    def backend(self) -> str: ...  # "jack", "alsa", "coremidi", "windows", "file" or "fake"
    @property
    def api_name(self) -> str: ...  # as the UI shows it: "UNIX_JACK", "LINUX_ALSA", ..., "file", "fake"
    @property
    def virtual(self) -> bool: ...  # rtgen's own named port, which other programs connect to
    @property
    def connected(self) -> bool: ...  # False while its peer or MIDI server is gone
    def check(self) -> str | None: ...  # reopen what came back; a log line when something changed
    def close(self) -> None: ...


@runtime_checkable
class MidiInput(Port, Protocol):
    """Messages stamped on arrival (``time.perf_counter()`` seconds), drained by the engine thread."""

    def poll(self, limit: int | None = None) -> list[tuple[float, mido.Message]]: ...  # oldest first, at once
    @property
    def dropped(self) -> int: ...  # messages that arrived while the bounded queue was full
    @property
    def malformed(self) -> int: ...  # byte strings that were not MIDI


@runtime_checkable
class MidiOutput(Port, Protocol):
    """Sends now; a send that cannot go out is counted in ``failed``, never raised into the output thread."""

    def send(self, message: mido.Message) -> None: ...
    def panic(self) -> None: ...  # pedal up, all notes off, all sound off on every channel
    @property
    def failed(self) -> int: ...
