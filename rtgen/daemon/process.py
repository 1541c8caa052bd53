"""The running daemon: ports, clock, engine, scheduler, listener and recorder wired together, and their lifecycle.

Threads: the MIDI input callback only stamps and queues (``rtgen.midi.ports``);
the engine thread (``rtgen.live.player``) owns the music state; the output
thread (``rtgen.live.scheduler``) sends at planned times; the recorder and the
port watcher each have a small thread; the caller's thread runs
``run_forever`` (status, tempo map, signals) or the TUI. ``Daemon``
implements ``rtgen.daemon.status.DaemonControl``: its commands validate in the
caller's thread, then enqueue closures that the engine thread runs between
steps, so the UI never touches models or ports and no lock is shared.

Every way out (``shutdown`` after a signal, a stop, an error in the engine
thread) goes through the same path: engine thread stopped, pending note-offs
sent, then CC64=0, CC123 and CC120 on the channels used, the take written
with all notes closed, ports closed.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

import mido

from rtgen.daemon.config import DaemonConfig
from rtgen.daemon.status import Snapshot
from rtgen.daemon.wiring import (
    TapPort,
    default_cc_map,
    load_engine,
    open_clock,
    open_ports,
    open_recorder,
    output_offset_ms,
    seed_notes,
    shipped_genres,
)
from rtgen.engine.controls import Controls
from rtgen.errors import RtgenError
from rtgen.live.listener import Listener
from rtgen.live.player import MODES, Mode, Player

# SCHED_FIFO for the output thread where permitted, below JACK's own threads. The engine thread stays at
# normal priority: its bursts of computation would starve a JACK server that runs without real-time rights.
OUTPUT_PRIORITY = 10
EngineFactory = Callable[[list[str], str, Controls, "int | None"], object]


class Daemon:
    """rtgen live: build with a config, ``open()``, ``launch()``, then ``run_forever()`` or a UI; ``shutdown()``.

    ``engine_factory(genres, device, controls, seed)`` makes the engine (tests
    pass a fake); ``in_port``/``out_port``/``clock``/``scheduler_factory``
    replace the real ones for tests and ``rtgen demo``.
    """

    def __init__(
        self,
        config: DaemonConfig,
        engine_factory: EngineFactory = load_engine,
        *,
        in_port=None,
        out_port=None,
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
        self.watcher = None
        self.clock_sender = None
        self.preset_name: str | None = None
        self.error: BaseException | None = None
        self._log: deque[tuple[int, str]] = deque(maxlen=200)
        self._log_serial = itertools.count()
        self._log_printed = -1
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
        self.tap = TapPort(self.out_port)
        self.scheduler = (self.scheduler_factory or self._real_scheduler)(self.tap, self.clock)
        self.listener = Listener(config.listener, self.engine.encoding.steps_per_beat, self.clock.beat_at)
        player_config = dataclasses.replace(
            config.player,
            answer_bars=preset.answer_bars if config.player.answer_bars is None else config.player.answer_bars,
            output_offset_ms=output_offset_ms(config.player.output_offset_ms, self.out_port, self.log),
        )
        mode: Mode = config.mode or preset.mode
        self.player = Player(self.engine, self.clock, self.scheduler, self.listener, player_config, mode)
        self.tap.sent = self.player.sent
        self.player.prime_seed(seed_notes(preset.seed_phrase, self.genres))
        if mode != "call-and-response":
            self.player.begin_continuous(self.clock.now())
        self.preset_name = preset.name
        self.cc_map = CCMap.load(config.cc_map) if config.cc_map else default_cc_map(self.genres)
        self._wire_player()
        if config.record:
            self.recorder = open_recorder(config, self.clock, tempo)
        gc.collect()
        gc.freeze()  # models and buffers are loaded: keep the collector off them while playing
        return self

    def _real_scheduler(self, port, clock):
        from rtgen.live.scheduler import OutputScheduler

        priority = OUTPUT_PRIORITY if self.config.realtime else None
        return OutputScheduler(port, now=clock.now, realtime_priority=priority)

    def _wire_player(self) -> None:
        from rtgen.daemon.routing import InputRouter

        player = self.player
        player.log = self.log
        player.inputs = self.in_port.poll if self.in_port is not None else list
        self.router = InputRouter(self)
        player.route = self.router.route
        player.on_heard = self._record_input
        player.on_sent = self._record_output

    def _record_input(self, t: float, message: mido.Message) -> None:
        if self.recorder is not None:
            self.recorder.add("performer", t, message)

    def _record_output(self, t: float, message: mido.Message) -> None:
        if self.recorder is not None:
            self.recorder.add("rtgen", t, message)

    def launch(self) -> None:
        """Start the output, recorder, watcher and engine threads, and play in the current mode."""
        from rtgen.midi.ports import PortWatcher

        sys.setswitchinterval(0.0005)  # a thread that wakes on time gets the interpreter lock within 0.5 ms
        self.scheduler.start()
        if self.recorder is not None:
            self.recorder.start()
        watched = [p for p in (self.in_port, self.out_port) if p is not None and hasattr(p, "check")]
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
        """Watcher thread: log it; when a port comes back, clear whatever the peer may still hold."""
        self.log(line)
        if "back" in line:  # rtgen.midi.ports says "... is back; reconnected" / "JACK server is back; port reopened"
            self.player.submit(self._all_notes_off)

    def _all_notes_off(self) -> None:
        now = self.clock.now()
        for channel in sorted(self.scheduler.channels_used) or [self.player.config.out_channel]:
            self.scheduler.schedule(now, mido.Message("control_change", channel=channel, control=123, value=0))

    def request_stop(self) -> None:
        """Ask ``run_forever`` to return (safe from a signal handler)."""
        self._stop.set()

    def run_forever(self, status_interval_s: float = 5.0, on_status=None, on_log=None) -> int:
        """Wait for a stop request or an error; report status and log lines meanwhile. Returns an exit code."""
        next_status = time.monotonic() + status_interval_s
        if self._stop.wait(0.1) is False and self.config.realtime and not self.scheduler.realtime_granted:
            self.log("output thread at normal priority (no real-time rights); timing may suffer under load")
        while not self._stop.wait(0.1):
            self._emit_log(on_log)
            if self.scheduler.error is not None:
                self.error = self.scheduler.error
                break
            if self.recorder is not None:
                self.recorder.tempo(self.clock.beat_at(self.clock.now()), self.clock.tempo_bpm)
                if self.recorder.error is not None:
                    self.error = self.recorder.error
                    break
            if on_status is not None and time.monotonic() >= next_status:
                on_status(self.snapshot())
                next_status += status_interval_s
        self._emit_log(on_log)
        self.error = self.error or self.player.error
        return 1 if self.error is not None else 0

    def _emit_log(self, on_log) -> None:
        for line in self.drain_log():
            if on_log is not None:
                on_log(line)

    def drain_log(self) -> list[str]:
        """Log lines not handed out before, oldest first (for one reader: the headless printer)."""
        lines = []
        for serial, line in tuple(self._log):
            if serial > self._log_printed:
                lines.append(line)
                self._log_printed = serial
        return lines

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
        if self.watcher is not None:
            self.watcher.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.player is not None:
            self.player.drain_sent()
            self.error = self.error or self.player.error
        if self.recorder is not None:
            path = self.recorder.close()
            self.log(f"take written to {path}")
        for port in (self.in_port, self.out_port):  # the output port waits for the MIDI system to deliver
            if port is not None:
                port.close()

    # ---- DaemonControl: validate here, act in the engine thread ----

    def log(self, line: str) -> None:
        self._log.append((next(self._log_serial), line))

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
            backend=getattr(self.out_port, "api_name", ""),
            in_port=getattr(self.in_port, "name", "") or "",
            out_port=getattr(self.out_port, "name", "") or "",
            device=str(getattr(self.engine, "device", "cpu")),
            step_p99_ms=_p99(player.step_ms),
            send_error_p99_ms=stats.p99_ms,
            late_events=stats.late,
            notes_in=self.listener.counts.notes_in,
            notes_out=player.notes_out,
            recording=str(self.recorder.path) if self.recorder is not None else None,
            preset=self.preset_name,
            learning=self.cc_map.learning,
            roll=player.roll.notes(),
            log=tuple(line for _, line in tuple(self._log)[-20:]),
        )

    def input_counts(self) -> dict[str, int]:
        """What happened to the input: accepted notes, echoes, junk, queue drops; and sends that failed."""
        counts = dataclasses.asdict(self.listener.counts)
        port = self.in_port
        counts["dropped"] = getattr(port, "dropped", 0)
        counts["malformed"] = getattr(port, "malformed", 0)
        counts["send_failed"] = self.scheduler.stats().failed
        counts["catch_ups"] = self.player.catch_ups
        counts["skipped_late"] = self.player.skipped_late
        counts["repaired_ticks"] = self.router.repaired_ticks
        return counts

    def set_controls(self, **changes: object) -> None:
        self.engine.set_controls(**changes)  # validated here; the engine hands it to its stepping thread

    def set_tempo(self, tempo_bpm: float) -> None:
        if self.clock.source != "internal":
            self.log("tempo follows the external MIDI clock; set it there")
            return
        if not 20 <= tempo_bpm <= 400:
            raise RtgenError(f"tempo {tempo_bpm} BPM outside 20-400")
        self.player.submit(lambda: self.clock.set_tempo(tempo_bpm))

    def set_mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise RtgenError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.player.submit(lambda: self.player.set_mode(mode, self.clock.now()))

    def start(self) -> None:
        self.player.submit(lambda: self.player.start(self.clock.now()))

    def stop(self) -> None:
        self.player.submit(lambda: self.player.stop(self.clock.now()))

    def panic(self) -> None:
        def panic() -> None:
            self.player.silence(self.clock.now())
            self.scheduler.panic()
            self.log("panic: all notes off")

        self.player.submit(panic)

    def load_preset(self, name_or_path: str) -> None:
        from rtgen.daemon.presets import load_preset

        preset = load_preset(name_or_path)
        notes = seed_notes(preset.seed_phrase, self.genres)
        self.player.submit(lambda: self.apply_preset(preset, notes))

    def apply_preset(self, preset, notes) -> None:
        """Engine thread: take a preset's controls, tempo, answer length, seed phrase and mode."""
        weights = {g: w for g, w in preset.controls.weights.items() if g in self.genres}
        if not any(weights.values()):
            self.log(f"preset {preset.name}: none of its genres is loaded; genre weights kept")
            weights = self.engine.controls.weights
        fields = {f.name: getattr(preset.controls, f.name) for f in dataclasses.fields(Controls)}
        self.engine.set_controls(**{**fields, "weights": weights})
        if self.clock.source == "internal":
            self.clock.set_tempo(preset.tempo_bpm)
        player = self.player
        player.config = dataclasses.replace(player.config, answer_bars=preset.answer_bars)
        player.prime_seed(notes)
        self.preset_name = preset.name
        player.set_mode(preset.mode, self.clock.now())
        self.log(f"preset {preset.name} loaded")

    def save_preset(self, name: str) -> str:
        from rtgen.daemon.presets import Preset, preset_path, save_preset

        preset = Preset(
            name=name,
            controls=self.engine.controls,
            tempo_bpm=min(max(self.clock.tempo_bpm, 20.0), 400.0),
            mode=self.player.mode,
            answer_bars=max(1, self.player.config.answer_bars or 1),
        )
        path = save_preset(preset, preset_path(name))
        self.log(f"preset saved to {path}")
        return str(path)

    def presets(self) -> list[str]:
        from rtgen.daemon.presets import list_presets

        return list_presets()

    def learn(self, control: str | None) -> None:
        from rtgen.daemon.ccmap import control_spec

        if control is not None:
            control_spec(control)
        self.player.submit(lambda: self.cc_map.learn(control))


def _p99(values: deque[float]) -> float:
    ordered = sorted(tuple(values))
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0
