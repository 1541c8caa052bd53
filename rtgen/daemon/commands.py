"""The one way into the music state: typed command values, applied by the engine thread between steps.

Every change to what rtgen plays comes here as a frozen value: an OSC
message from a UI or any OSC app, a MIDI CC knob or program change, MIDI
learn, a preset the disk worker has finished loading, the port watcher's
news. The OSC server and the port watcher run in their own threads and only
``submit`` values to the player's queue; CC and program change are read by
the engine thread itself and go through the same ``Commands.apply``. Nothing
else touches the engine, listener, voice or ports, and no lock is shared.

A command that cannot be applied (a knob that would zero every weight, a
control the loaded models cannot take) is reported through ``report`` (the
log and every attached UI's error stream), never raised: the music goes on.
Disk work (saving the CC map or a preset, loading a preset or a seed phrase)
is handed to the ``DiskWorker``, whose result comes back as another command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from rtgen.controls import WEIGHT_PREFIX, spec
from rtgen.daemon.ccmap import CCMap, default_path, preset_for_program
from rtgen.daemon.glide import GLIDED, Glide
from rtgen.daemon.instrument import Instrument
from rtgen.daemon.presets import Preset
from rtgen.encoding import Note
from rtgen.errors import RtgenError
from rtgen.live.clock import TEMPO_SETTABLE, clamp_tempo
from rtgen.live.player import Player


@dataclass(frozen=True)
class SetControls:
    """Controls by their CC-map names (a ``Controls`` field, ``weights.<genre>``, ``tempo_bpm``, ``mode``).

    All ``Controls`` changes of one command make one new value, so a pair such
    as ``pitch_min``/``pitch_max`` moves together and is checked together.
    """

    changes: tuple[tuple[str, object], ...]

    @classmethod
    def one(cls, name: str, value: object) -> SetControls:
        return cls(((name, value),))


@dataclass(frozen=True)
class Transport:
    """``play``, ``stop`` or ``panic`` (silence now: pending note-offs, then CC64=0, CC123, CC120)."""

    action: str


@dataclass(frozen=True)
class Learn:
    """The next CC received maps to ``control``; None cancels."""

    control: str | None


@dataclass(frozen=True)
class LoadPreset:
    """Load a preset by name or path (read by the disk worker, then applied as ``ApplyPreset``)."""

    name: str


@dataclass(frozen=True)
class SavePreset:
    """Save the current controls, tempo and mode as a preset (built here, written by the disk worker)."""

    name: str


@dataclass(frozen=True)
class ApplyPreset:
    """A preset already read from disk, with its seed phrase's notes."""

    preset: Preset
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class LoadSeed:
    """Read a .mid (a take, say) as the seed phrase (by the disk worker, then applied as ``ApplySeed``)."""

    path: str


@dataclass(frozen=True)
class ApplySeed:
    """A seed phrase read from ``path``: solo and duet start again from it on the next beat."""

    path: str
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class PortChanged:
    """The port watcher's news; ``back`` when a port returned (the peer may hold notes: all-notes-off)."""

    line: str
    back: bool


Command = SetControls | Transport | Learn | LoadPreset | SavePreset | ApplyPreset | LoadSeed | ApplySeed | PortChanged


class Commands:
    """Applies commands in the engine thread; collaborators are passed in, never the whole daemon."""

    def __init__(
        self,
        *,
        engine,
        clock,
        player: Player,
        scheduler,
        cc_map: CCMap,
        disk,
        log: Callable[[str], None],
        report: Callable[[str], None],
        cc_map_path: str | None = None,
        instrument: Instrument | None = None,
    ) -> None:
        self.engine, self.clock, self.player, self.scheduler = engine, clock, player, scheduler
        self.cc_map, self.disk, self.log, self.report = cc_map, disk, log, report
        self.cc_map_path = cc_map_path
        self.instrument = instrument  # program changes for the synth (--synth); None: none sent
        self.glide = Glide()
        self.preset_name: str | None = None
        self.genres = tuple(engine.genres)
        self._handlers: dict[type, Callable] = {
            SetControls: self._set_controls,
            Transport: self._transport,
            Learn: self._learn,
            LoadPreset: self._load_preset,
            SavePreset: self._save_preset,
            ApplyPreset: self._apply_preset,
            LoadSeed: self._load_seed,
            ApplySeed: self._apply_seed,
            PortChanged: self._port_changed,
        }

    def glide_tick(self, now: float) -> None:
        """Engine thread, each tick: the steering controls that are gliding take their value for now.

        The instrument follows the weights here, whatever moved them (OSC, a knob, a preset).
        """
        if self.instrument is not None:
            self.instrument.follow(self.engine.controls)
        if not self.glide.moves:
            return
        values = self.glide.due(self.clock.beat_at(now))
        current = self.engine.controls
        moved = {name: value for name, value in values.items() if getattr(current, name) != value}
        if moved:
            self.engine.set_controls(**moved)

    def apply(self, command: Command) -> None:
        """Engine thread: do what ``command`` asks; a user-level error is reported, not raised."""
        try:
            self._handlers[type(command)](command)
        except RtgenError as error:
            self.report(str(error))

    # ---- controls ----

    def _set_controls(self, command: SetControls) -> None:
        """The ``Controls`` changes first, as one checked value; tempo and mode only if that succeeded."""
        weights = dict(self.engine.controls.weights)
        changes: dict[str, object] = {}
        others = []
        for name, value in command.changes:
            if spec(name).owner != "controls":  # tempo_bpm (the clock), mode (the player)
                others.append((name, value))
            elif name.startswith(WEIGHT_PREFIX):
                weights[name[len(WEIGHT_PREFIX) :]] = float(value)
                changes["weights"] = weights
            else:
                changes[name] = value
        if changes:
            checked = self.engine.controls.replace(**changes)  # every value checked before any moves
            beat = self.clock.beat_at(self.clock.now())
            for name in [n for n in changes if n in GLIDED]:
                if self.glide.aim(name, getattr(self.engine.controls, name), getattr(checked, name), beat):
                    del changes[name]
            if changes:
                self.engine.set_controls(**changes)
        for name, value in others:
            if name == "tempo_bpm":
                self._set_tempo(float(value))
            else:
                self.player.set_mode(value, self.clock.now())

    def _set_tempo(self, tempo_bpm: float) -> None:
        if self.clock.source not in TEMPO_SETTABLE:
            raise RtgenError("tempo follows the external MIDI clock; set it there")
        self.clock.set_tempo(clamp_tempo(tempo_bpm))

    def _transport(self, command: Transport) -> None:
        now = self.clock.now()
        if command.action == "play":
            self.player.start(now)
        elif command.action == "stop":
            self.player.stop(now)
        else:
            self.player.silence(now)
            self.scheduler.panic()
            self.log("panic: all notes off")

    # ---- MIDI CC, learn and program change (read by the engine thread itself) ----

    def control_change(self, message) -> None:
        """A CC knob: learn it if learning, then apply the control it maps to."""
        cc_map = self.cc_map
        before = cc_map.learned
        result = cc_map.apply(message)
        if cc_map.learned is not None and cc_map.learned is not before:
            learned, mappings = cc_map.learned, cc_map.mappings
            path = self.cc_map_path or default_path()
            self.log(f"learned CC{message.control} -> {learned.control}")
            self.disk.run(lambda: f"CC map saved to {CCMap(mappings).save(path)}")
        if result is not None:
            control, value = result
            try:
                self._set_controls(SetControls.one(control, value))
            except RtgenError as error:
                self.report(f"CC{message.control}: {error}")

    def program_change(self, program: int) -> None:
        from rtgen.daemon.presets import list_presets

        self.disk.run(lambda: self._program_preset(program, list_presets()))

    def _program_preset(self, program: int, names: list[str]) -> str | None:
        """Disk worker: the preset a program change selects, loaded and handed back."""
        name = preset_for_program(program, names)
        if name is None:
            raise RtgenError(f"program change {program}: no preset at that number")
        self.disk.submit(self.disk.read_preset(name))
        return None

    def _learn(self, command: Learn) -> None:
        self.cc_map.learn(command.control)
        self.log(f"learning {command.control}: move a knob" if command.control else "learn cancelled")

    # ---- presets ----

    def _load_preset(self, command: LoadPreset) -> None:
        self.disk.run(lambda: self.disk.submit(self.disk.read_preset(command.name)))

    def _save_preset(self, command: SavePreset) -> None:
        from rtgen.daemon.presets import preset_path, save_preset

        player = self.player
        preset = Preset(
            name=command.name,
            controls=self.engine.controls,
            tempo_bpm=clamp_tempo(self.clock.tempo_bpm),
            mode=player.mode,
            answer_bars=max(1, player.config.answer_bars or 1),
        )
        self.disk.run(lambda: f"preset saved to {save_preset(preset, preset_path(command.name))}")

    def _apply_preset(self, command: ApplyPreset) -> None:
        """Take a preset's controls, tempo, answer length, seed phrase and mode."""
        preset = command.preset
        weights = {g: w for g, w in preset.controls.weights.items() if g in self.genres}
        if not any(weights.values()):
            self.report(f"preset {preset.name}: none of its genres is loaded; genre weights kept")
            weights = self.engine.controls.weights
        fields = {f.name: getattr(preset.controls, f.name) for f in dataclasses.fields(preset.controls)}
        self.glide.moves.clear()  # a preset sets its values at once; no earlier glide goes on over them
        self.engine.set_controls(**{**fields, "weights": weights})
        if self.clock.source in TEMPO_SETTABLE:
            self.clock.set_tempo(preset.tempo_bpm)
        player = self.player
        player.config = dataclasses.replace(player.config, answer_bars=preset.answer_bars)
        player.prime_seed(command.notes)
        self.preset_name = preset.name
        player.set_mode(preset.mode, self.clock.now())
        self.log(f"preset {preset.name} loaded")

    def _load_seed(self, command: LoadSeed) -> None:
        self.disk.run(lambda: self.disk.submit(self.disk.read_seed(command.path)))

    def _apply_seed(self, command: ApplySeed) -> None:
        player = self.player
        player.prime_seed(command.notes)
        if player.playing and player.mode != "call-and-response":
            player.silence(self.clock.now())
            player.begin_continuous(self.clock.now())
        self.log(f"seed phrase: {len(command.notes)} notes from {command.path}")

    # ---- the port watcher ----

    def _port_changed(self, command: PortChanged) -> None:
        self.log(command.line)
        if command.back:
            self.scheduler.panic()
            if self.instrument is not None:
                self.instrument.resend()
