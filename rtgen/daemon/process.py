"""The daemon process's parts wired together: ports, clock, engine, player, scheduler, recorder, disk worker.

Threads: the MIDI input is drained by a poller that only stamps and queues
(``rtgen.midi.ports``); the engine thread (``rtgen.live.player``) owns the
music state and applies every command (``rtgen.daemon.commands``); the output
thread (``rtgen.live.scheduler``) sends at planned times; the recorder, the
disk worker, the port watcher and the OSC server (``rtgen.daemon.osc``) each
have a small thread; the supervisor (``rtgen.daemon.supervisor``) runs in the
main thread. UIs are other processes: they reach this one only over OSC.

Every way out (a signal, a stop, an error in any thread) goes through
``shutdown``: engine thread stopped, pending note-offs sent, then CC64=0,
CC123 and CC120 on the channels used, the take written with all notes
closed, ports closed.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import sys
import threading
from collections import deque
from collections.abc import Callable

import mido

from rtgen.daemon.config import DaemonConfig
from rtgen.daemon.status import Snapshot
from rtgen.daemon.wiring import (
    EngineFactory,
    TapPort,
    default_cc_map,
    echo_window_s,
    load_engine,
    open_clock,
    open_follower,
    open_ports,
    open_recorder,
    output_offset_ms,
    seed_notes,
    shipped_genres,
)
from rtgen.live.hooks import PlayerHooks
from rtgen.live.listener import Listener
from rtgen.live.player import Player
from rtgen.live.scheduler import OUTPUT_PRIORITY
from rtgen.live.timing import percentile
from rtgen.midi.interface import MidiInput, MidiOutput
from rtgen.modes import Mode


class Daemon:
    """rtgen live: ``open()``, ``launch()``, then supervise (``rtgen.daemon.supervisor``), then ``shutdown()``.

    ``engine_factory(genres, device, controls, seed)`` makes the engine (tests
    pass a fake); ``in_port``/``out_port``/``clock``/``scheduler_factory``
    replace the real ones for tests and ``rtgen demo``.
    """

    def __init__(
        self,
        config: DaemonConfig,
        engine_factory: EngineFactory = load_engine,
        *,
        in_port: MidiInput | None = None,
        out_port: MidiOutput | None = None,
        clock=None,
        scheduler_factory: Callable | None = None,
    ) -> None:
        self.config = config
        self.engine_factory = engine_factory
        self.in_port = in_port
        self.out_port = out_port
        self.clock = clock
        self.scheduler_factory = scheduler_factory
        self.recorder = None
        self.scheduler = None
        self.player = None
        self.follower = None
        self.watcher = None
        self.clock_sender = None
        self.preset_name: str | None = None
        self.disk = None
        self.error: BaseException | None = None
        self.events: deque[tuple[int, str, str]] = deque(maxlen=200)  # (serial, "log" | "error", line)
        self._serial = itertools.count()
        self._events_lock = threading.Lock()  # a number is taken and its line appended as one step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # ---- lifecycle ----

    def open(self) -> Daemon:
        """Load preset and models, open ports and clock; nothing plays until ``launch``."""
        from rtgen.daemon.ccmap import CCMap
        from rtgen.daemon.presets import load_preset

        config = self.config
        preset = load_preset(config.preset)
        genres = list(config.genres) or shipped_genres()
        weights = config.genres or {g: w for g, w in preset.controls.weights.items() if g in genres}
        controls = preset.controls.replace(weights=weights or dict.fromkeys(genres, 1.0))
        self.engine = self.engine_factory(genres, config.device, controls, config.seed)
        self.genres = tuple(self.engine.genres)
        tempo = config.tempo_bpm or preset.tempo_bpm
        if self.clock is None:
            self.clock = open_clock(config.clock, tempo)
        if self.in_port is None and self.out_port is None:
            self.in_port, self.out_port = open_ports(config, self.clock, self.log)
        self.tap = TapPort(self.out_port, now=self.clock.now)
        self.scheduler = (self.scheduler_factory or self._real_scheduler)(self.tap, self.clock)
        self.listener = Listener(config.listener, self.engine.encoding.steps_per_beat, self.clock.beat_at)
        self.listener.echo.window_s = echo_window_s(config.listener.echo_window_s, self.out_port, self.log)
        player_config = dataclasses.replace(
            config.player,
            answer_bars=preset.answer_bars if config.player.answer_bars is None else config.player.answer_bars,
            output_offset_ms=output_offset_ms(config.player.output_offset_ms, self.out_port, self.log),
        )
        mode: Mode = config.mode or preset.mode
        self.preset_name = preset.name
        self.cc_map = CCMap.load(config.cc_map) if config.cc_map else default_cc_map(self.genres)
        self.player = Player(
            self.engine,
            self.clock,
            self.scheduler,
            self.listener,
            player_config,
            mode,
            hooks=self._player_hooks,
            sent=self.tap.sent,
        )
        self.player.warm_up()
        self.player.prime_seed(seed_notes(preset.seed_phrase, self.genres, config.seed))
        if mode != "call-and-response":
            self.player.begin_continuous(self.clock.now())
        if config.record:
            self.recorder = open_recorder(config, self.clock, tempo)
        gc.collect()
        gc.freeze()  # models and buffers are loaded: keep the collector off them while playing
        return self

    def _real_scheduler(self, port, clock):
        from rtgen.live.scheduler import OutputScheduler

        # The output thread only: the engine thread stays at normal priority, since its bursts of computation
        # would starve a JACK server that runs without real-time rights.
        priority = OUTPUT_PRIORITY if self.config.realtime else None
        return OutputScheduler(port, now=clock.now, realtime_priority=priority)

    def _player_hooks(self, player: Player) -> PlayerHooks:
        """The player's ways out, made as it is built: the command applier and the input router act on it."""
        from rtgen.daemon.commands import Commands
        from rtgen.daemon.disk import DiskWorker
        from rtgen.daemon.routing import InputRouter

        self.disk = DiskWorker(player.submit, self.log, self.report, self.genres)
        self.commands = Commands(
            engine=self.engine,
            clock=self.clock,
            player=player,
            scheduler=self.scheduler,
            cc_map=self.cc_map,
            disk=self.disk,
            log=self.log,
            report=self.report,
            cc_map_path=self.config.cc_map,
            instrument=self._instrument(player),
        )
        self.commands.preset_name = self.preset_name
        self.router = InputRouter(
            clock=self.clock, player=player, commands=self.commands, counts=self.listener.counts, log=self.log
        )
        self.follower = follower = open_follower(self.genres, player.submit, self.log)
        optional: dict[str, Callable] = {}
        if self.in_port is not None:
            optional["inputs"] = self.in_port.poll
        if follower is not None:
            optional["on_phrase_heard"] = lambda phrase: follower.hear(phrase.notes, self.engine.controls.follow)
        return PlayerHooks(
            apply=self.commands.apply,
            glide=self.commands.glide_tick,
            route=self.router.route,
            on_sent=self._record_output,
            on_heard=self._record_input,
            log=self.log,
            **optional,
        )

    def _instrument(self, player: Player):
        """The synth's program changes on the output channel (``--synth``); None without a synth."""
        from rtgen.daemon.instrument import Instrument

        if not self.config.synth.enabled:
            return None
        scheduler, clock = self.scheduler, self.clock
        send = lambda message: scheduler.schedule(clock.now(), message)  # noqa: E731 - the output thread sends it
        return Instrument(self.config.synth.programs, player.config.out_channel, send)

    def _record_input(self, t: float, message: mido.Message) -> None:
        if self.recorder is not None:
            self.recorder.add("performer", t, message)

    def _record_output(self, t: float, message: mido.Message) -> None:
        if self.recorder is not None:
            self.recorder.add("rtgen", t, message)

    def launch(self) -> None:
        """Start the output, recorder, disk, watcher and engine threads, and play in the current mode."""
        from rtgen.midi.watcher import PortWatcher

        sys.setswitchinterval(0.0005)  # a thread that wakes on time gets the interpreter lock within 0.5 ms
        self.scheduler.start()
        # A synth left sounding by an earlier run that crashed (or a patch change mid-note) is cleaned up first.
        self.scheduler.channels_used.add(self.player.config.out_channel)
        self.scheduler.panic()
        if self.recorder is not None:
            self.recorder.start()
            self.log(f"recording the take to {self.recorder.path}")
        self.disk.start()
        watched = [p for p in (self.in_port, self.out_port) if p is not None]
        self.watcher = PortWatcher(watched, on_event=self._port_event)
        self.watcher.start()
        if self.config.send_clock:
            from rtgen.live.clock import ClockSender

            self.clock_sender = ClockSender(self.scheduler, self.clock)
            self.clock_sender.start()
        player = self.player
        self._thread = threading.Thread(target=player.run, args=(self._stop,), name="rtgen-engine", daemon=True)
        self._thread.start()
        self.log(f"playing {player.mode} at {self.clock.tempo_bpm:.1f} BPM ({self.clock.source} clock)")

    def _port_event(self, line: str) -> None:
        """Watcher thread: a port changed; when one came back, the peer may still hold notes."""
        from rtgen.daemon.commands import PortChanged

        # rtgen.midi.ports says "... is back; reconnected" / "JACK server is back; port reopened"
        self.player.submit(PortChanged(line, back="back" in line or "restarted" in line))

    def submit(self, command) -> None:
        """Queue a command for the engine thread (any thread; returns at once)."""
        self.player.submit(command)

    def request_stop(self) -> None:
        """Ask the supervisor to stop the daemon (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def thread_error(self) -> BaseException | None:
        """The first error of a music thread (engine, output, recorder), or None while all run."""
        for part in (self.player, self.scheduler, self.recorder):
            if part is not None and part.error is not None:
                return part.error
        return None

    def shutdown(self) -> None:
        """Stop everything: pending note-offs, panic on the channels used, the take closed, ports closed."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self.clock_sender is not None:
            self.clock_sender.stop()
        if self.clock is not None:  # None when opening failed before the clock (a model that cannot load)
            self.clock.close()  # a Link session is left; the other clocks hold nothing
        if self.watcher is not None:
            self.watcher.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.player is not None:
            self.player.drain_sent()
        self.error = self.error or self.thread_error()
        if self.disk is not None:
            self.disk.stop()
        if self.recorder is not None:
            path = self.recorder.close()
            self.log(f"take written to {path}")
        for port in (self.in_port, self.out_port):  # the output port waits for the MIDI system to deliver
            if port is not None:
                port.close()

    # ---- what the daemon tells: log lines, errors, status ----

    def log(self, line: str) -> None:
        """A log line for every attached UI and the headless printer (any thread)."""
        self._add_event("log", line)

    def report(self, line: str) -> None:
        """An error line: shown by every attached UI as an error, and logged (any thread)."""
        self._add_event("error", line)

    def _add_event(self, kind: str, line: str) -> None:
        """Number and append under one lock, so ``events`` is always in serial order: a reader that has
        seen serial n never later finds a smaller one appended behind it (it would skip that line)."""
        with self._events_lock:
            self.events.append((next(self._serial), kind, line))

    def events_after(self, serial: int) -> list[tuple[int, str, str]]:
        """``(serial, kind, line)`` events newer than ``serial``, oldest first; kind is "log" or "error"."""
        return [event for event in tuple(self.events) if event[0] > serial]

    def snapshot(self) -> Snapshot:
        player, clock = self.player, self.clock
        stats = self.scheduler.stats()
        now = clock.now()
        return Snapshot(
            genres=self.genres,
            controls=self.engine.controls,
            mode=player.mode,
            playing=player.playing,
            tempo_bpm=clock.tempo_bpm,
            clock_source=clock.source,
            current_beat=clock.beat_at(now),
            clock_s=now,
            backend=self.out_port.api_name,
            in_port=self.in_port.name if self.in_port is not None else "",
            out_port=self.out_port.name,
            device=str(self.engine.device),
            step_p99_ms=percentile(sorted(tuple(player.step_ms)), 0.99),
            send_error_p90_ms=stats.p90_ms,
            send_error_p99_ms=stats.p99_ms,
            send_error_max_ms=stats.max_ms,
            late_events=stats.late,
            notes_in=self.listener.counts.notes_in,
            notes_out=player.notes_out,
            recording=str(self.recorder.path) if self.recorder is not None else None,
            preset=self.commands.preset_name,
            learning=self.cc_map.learning,
            roll=player.roll.notes(),
            heard=dict(self.follower.reading) if self.follower is not None else {},
            log=tuple(line for _, _, line in tuple(self.events)[-20:]),
        )

    def input_counts(self) -> dict[str, int]:
        """What happened to the input: accepted notes, echoes, junk, queue drops; and sends that failed."""
        counts = dataclasses.asdict(self.listener.counts)
        port = self.in_port
        counts["dropped"] = port.dropped if port is not None else 0
        counts["malformed"] = port.malformed if port is not None else 0
        counts["send_failed"] = self.scheduler.stats().failed
        counts["catch_ups"] = self.player.catch_ups
        counts["unsteered"] = self.player.unsteered
        counts["skipped_late"] = self.player.skipped_late
        counts["repaired_ticks"] = self.router.repaired_ticks
        return counts
