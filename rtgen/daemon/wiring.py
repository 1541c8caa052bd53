"""How the daemon gets its parts: models, clock, ports, recorder, seed phrase and the default CC map.

Kept apart from ``rtgen.daemon.process`` (the lifecycle) so each reads in one
sitting; every function here runs once, at start-up, in the caller's thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import mido

from rtgen.daemon.config import DaemonConfig
from rtgen.encoding import Note
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.live.hooks import TokenEngine
from rtgen.midi.interface import MidiOutput
from rtgen.paths import models_dirs, recordings_dir


@runtime_checkable
class DaemonEngine(TokenEngine, Protocol):
    """What the daemon asks of the engine beyond stepping it: ``rtgen.engine.warm.Engine`` or the VAE's.

    Commands read and change its controls, the status shows its genres and
    device, and the player (``TokenEngine``) steps it.
    """

    @property
    def genres(self) -> tuple[str, ...]: ...  # the loaded genre models, in slider order
    @property
    def device(self) -> object: ...  # where the models run: a torch.device, or "cpu"
    @property
    def controls(self) -> Controls: ...
    def set_controls(self, **changes: object) -> Controls: ...  # checked, then in force from the next step


EngineFactory = Callable[[list[str], str, Controls, "int | None"], DaemonEngine]  # (genres, device, controls, seed)
GENRE_PHRASES = {"folk": "folk", "fiddle": "fiddle", "chorale": "chorale", "renaissance": "renaissance"}


class TapPort:
    """The output port as the scheduler sees it (a ``MidiOutput``): every message sent is also stamped into ``sent``.

    The output thread appends ``(now(), message)`` right before the send (the
    echo filter must know of a send before its echo can arrive, whatever the
    output thread is preempted by); the engine thread drains it for the echo
    filter, the roll and the take. A send that then fails (the peer gone) is
    still in the take, as what rtgen played, and is counted by the port.
    """

    def __init__(self, port: MidiOutput, now: Callable[[], float] = time.perf_counter) -> None:
        self.port = port
        self.now = now
        self.sent: deque[tuple[float, mido.Message]] = deque(maxlen=65536)

    @property
    def name(self) -> str:
        return self.port.name

    @property
    def backend(self) -> str:
        return self.port.backend

    @property
    def api_name(self) -> str:
        return self.port.api_name

    @property
    def virtual(self) -> bool:
        return self.port.virtual

    @property
    def connected(self) -> bool:
        return self.port.connected

    @property
    def failed(self) -> int:
        return self.port.failed

    def check(self) -> str | None:
        return self.port.check()

    def send(self, message: mido.Message) -> None:
        self.sent.append((self.now(), message))
        self.port.send(message)

    def panic(self) -> None:
        self.port.panic()

    def close(self) -> None:
        self.port.close()


def shipped_genres() -> list[str]:
    """The default genres when no --genres is given (``rtgen.nets.checkpoint.genre_models``); none raises."""
    from rtgen.nets.checkpoint import genre_models

    genres = genre_models()
    if not genres:
        where = " or ".join(str(folder) for folder in models_dirs())
        raise RtgenError(f"no genre models in {where}; train one with `rtgen train` or pass --genres with paths")
    return genres


def load_engine(genres: list[str], device: str, controls: Controls, seed: int | None) -> DaemonEngine:
    """The real engine: shipped (or given) genre models on ``device``, warmed by a few steps.

    A phrase VAE among ``genres`` plays alone, answering with variations
    (``rtgen.engine.variation``); the default genres (``shipped_genres``) skip VAEs.

    Torch gets one CPU thread: a step is a few small matmuls, and a second
    thread only adds hand-offs that cost more than they save (measured on a
    busy 2-core machine: 4 models, p50 3.3 ms with one thread, 44 ms with two).
    """
    import torch

    from rtgen.engine.variation import VariationEngine, is_vae
    from rtgen.engine.warm import Engine

    torch.set_num_threads(1)

    if any(is_vae(name) for name in genres):
        return VariationEngine.from_names(genres, device=device, settings=controls, seed=seed)
    engine = Engine.from_names(genres, device=device, settings=controls, seed=seed)
    for _ in range(8):  # first steps allocate and pick kernels; do that before the first note
        engine.step()
    engine.reset()
    return engine


def open_clock(kind: str, tempo_bpm: float):
    from rtgen.live.clock import ExternalClock, InternalClock

    if kind == "external":
        return ExternalClock(initial_tempo_bpm=tempo_bpm)
    if kind == "link":
        from rtgen.live.link import LinkClock

        return LinkClock(tempo_bpm)
    return InternalClock(tempo_bpm)


def open_ports(config: DaemonConfig, clock, log: Callable[[str], None]):
    """(input, output): virtual or named MIDI ports, or a .mid file as output when asked.

    With a file output, a missing MIDI system only costs the input (logged).
    """
    from rtgen.daemon.recording import MidiFilePort
    from rtgen.midi.ports import PortError, open_input, open_output

    if config.out_is_file:
        out = MidiFilePort(config.out_port, clock.beat_at, clock.tempo_bpm, config.flush_interval_s)
        try:
            return open_input(config.in_port, config.backend), out
        except PortError as error:
            log(f"no MIDI input ({error}); playing to {config.out_port} only")
            return None, out
    out = open_output(config.out_port, config.backend)
    try:
        return open_input(config.in_port, config.backend), out
    except RtgenError:
        out.close()
        raise


def output_offset_ms(configured: float | None, out_port: MidiOutput, log: Callable[[str], None]) -> float:
    """The send-time offset: as configured, else one JACK period early on a JACK output, else 0.

    JACK hands a client's MIDI on at the next period boundary, so a note sent
    on its beat is heard up to a period late; sending a period early puts it
    on the beat (measured against an external clock: tests/test_e2e_jack.py).
    """
    from rtgen.midi.graph import jack_period

    if configured is not None:
        return configured
    if out_port.backend != "jack" or (period := jack_period()) is None:
        return 0.0
    frames, rate = period
    offset = -1000.0 * frames / rate
    log(f"output offset {offset:.3f} ms: one JACK period ({frames} frames at {rate} Hz) early")
    return offset


def echo_window_s(configured_s: float, out_port: MidiOutput, log: Callable[[str], None]) -> float:
    """The echo filter's window: as configured, widened to three JACK periods on a JACK output.

    A looped echo comes back a period or two after the send (the period the
    output is handed over in, and the one the input reads it in), so a server
    run with long periods (1024 frames at 48 kHz: 21 ms) needs a longer window.
    """
    from rtgen.midi.graph import jack_period

    if out_port.backend != "jack" or (period := jack_period()) is None:
        return configured_s
    frames, rate = period
    window_s = max(configured_s, 3.0 * frames / rate)
    if window_s > configured_s:
        log(f"echo window {window_s * 1000:.0f} ms: three JACK periods ({frames} frames at {rate} Hz)")
    return window_s


def open_follower(genres: tuple[str, ...], submit: Callable[[object], None], log: Callable[[str], None]):
    """The performer's genre reader (``rtgen.daemon.follow``), or None without a classifier (logged)."""
    from rtgen.daemon.follow import Follower
    from rtgen.nets.classifier import ClassifierError, installed_classifier

    try:
        return Follower(installed_classifier(), genres, submit)
    except ClassifierError as error:
        log(f"no genre classifier ({error}); follow mode is off")
        return None


def open_recorder(config: DaemonConfig, clock, tempo_bpm: float):
    """The take's recorder, at an absolute path: the path is told to the performer, who may be anywhere."""
    from pathlib import Path

    from rtgen.daemon.recording import Recorder, take_path

    folder = Path(config.record_dir or recordings_dir()).expanduser().resolve()
    return Recorder(take_path(folder), clock.beat_at, tempo_bpm, config.flush_interval_s)


def seed_notes(seed_phrase: str | None, genres: tuple[str, ...] | list[str], seed: int | None = None) -> list[Note]:
    """The preset's seed phrase; else a real opening of the first loaded genre that has them (one per ``seed``,
    random when None), else the built-in phrase of the first that has one."""
    from rtgen.data.seeds import PHRASES, genre_opening, load_phrase

    if seed_phrase is not None:
        return load_phrase(seed_phrase)
    for genre in genres:
        real = genre_opening(genre, seed)
        if real is not None:
            return real
    for genre in genres:
        if genre in GENRE_PHRASES:
            return load_phrase(GENRE_PHRASES[genre])
    return load_phrase(next(iter(PHRASES)))


def default_cc_map(genres: tuple[str, ...]):
    """The user's map file when there is one; else CC1 temperature and CC21.. the genre weights."""
    from rtgen.daemon.ccmap import CCMap, CCMapping, default_path

    if default_path().is_file():
        return CCMap.load(default_path())
    mappings = [CCMapping(number=1, control="temperature")]
    mappings += [CCMapping(number=21 + i, control=f"weights.{g}") for i, g in enumerate(genres[:8])]
    mappings.append(CCMapping(number=74, control="top_p"))
    return CCMap(tuple(mappings))
