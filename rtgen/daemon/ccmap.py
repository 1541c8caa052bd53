"""MIDI CC knobs to live controls: the TOML map, MIDI learn, and program change to preset.

A performer's controller sends CC values 0-127; each mapping scales one CC
(optionally on one channel) into the range of one control. Control names are
``Controls`` field names (``temperature``, ``top_p``, ``method``, ...), one
genre weight as ``weights.<genre>``, ``tempo_bpm`` and ``mode``. The map is
pure bookkeeping owned by the engine thread: it turns messages into
``(control, value)`` pairs, which ``rtgen.daemon.commands`` applies like any
other command (``tempo_bpm`` and ``mode`` go to the clock and the player).

The file (``config_dir()/cc_map.toml`` by default)::

    [[cc]]
    number = 21          # CC number 0-127
    channel = 1          # optional, 1-16; omitted = any channel
    control = "weights.folk"
    min = 0              # optional, value at CC 0 (default: the control's usual range)
    max = 10             # optional, value at CC 127
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtgen import config, paths
from rtgen.engine.controls import FUSION_METHODS, SAMPLING_MODES
from rtgen.errors import RtgenError
from rtgen.live.clock import MAX_TEMPO_BPM, MIN_TEMPO_BPM
from rtgen.modes import MODES

DEFAULT_FILENAME = "cc_map.toml"
TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
KEYS: tuple[str, ...] = ("auto",) + tuple(f"{t} major" for t in TONICS) + tuple(f"{t} minor" for t in TONICS)


class CCMapError(RtgenError):
    """A CC map file or entry that cannot be used; the message names the file, entry and key."""


@dataclass(frozen=True)
class ControlSpec:
    """What a control accepts: a numeric range (usual and hard limits) or a list of choices."""

    name: str
    low: float = 0.0  # usual range: a CC at 0 gives `low`, at 127 gives `high`
    high: float = 1.0
    lowest: float = 0.0  # hard limits a mapping's min/max must stay within
    highest: float = 1.0
    integer: bool = False
    choices: tuple[str, ...] = ()  # non-empty for choice controls (bool controls: ("off", "on"))

    @property
    def is_choice(self) -> bool:
        return bool(self.choices)


_SPECS: dict[str, ControlSpec] = {
    s.name: s
    for s in (
        ControlSpec("temperature", 0.1, 2.0, 0.01, 10.0),
        ControlSpec("top_p", 0.05, 1.0, 0.01, 1.0),
        ControlSpec("top_k", 0, 64, 0, 338, integer=True),
        ControlSpec("tempo_bpm", 40, 240, MIN_TEMPO_BPM, MAX_TEMPO_BPM),
        ControlSpec("pitch_min", 21, 108, 0, 127, integer=True),
        ControlSpec("pitch_max", 21, 108, 0, 127, integer=True),
        ControlSpec("max_polyphony", 1, 8, 1, 32, integer=True),
        ControlSpec("max_note_beats", 0.25, 8.0, 0.05, 64.0),
        ControlSpec("repeat", 0.0, 0.95, 0.0, 0.95),
        ControlSpec("key_prior", 0.0, 1.0, 0.0, 1.0),
        ControlSpec("density", 0.0, 8.0, 0.0, 16.0),
        ControlSpec("register", 0.0, 108.0, 0.0, 127.0),
        ControlSpec("register_width", 3.0, 36.0, 1.0, 48.0),
        ControlSpec("rhythm_temperature", 0.25, 2.5, 0.1, 4.0),
        ControlSpec("pitch_temperature", 0.25, 2.5, 0.1, 4.0),
        ControlSpec("motif", 0.0, 1.0, 0.0, 1.0),
        ControlSpec("method", choices=FUSION_METHODS),
        ControlSpec("sampling", choices=SAMPLING_MODES),
        ControlSpec("mode", choices=MODES),
        ControlSpec("key", choices=KEYS),
        ControlSpec("scale_lock", choices=("off", "on")),
        ControlSpec("follow", choices=("off", "on")),
    )
}
_WEIGHT = ControlSpec("weights.*", 0.0, 10.0, 0.0, 100.0)


def control_spec(control: str) -> ControlSpec:
    """The spec of ``control``; an unknown name raises ``CCMapError`` listing the known ones."""
    if control.startswith("weights.") and len(control) > len("weights."):
        return ControlSpec(control, _WEIGHT.low, _WEIGHT.high, _WEIGHT.lowest, _WEIGHT.highest)
    if control in _SPECS:
        return _SPECS[control]
    known = ", ".join(["weights.<genre>", *sorted(_SPECS)])
    raise CCMapError(f"unknown control {control!r}; expected one of {known}")


def scale(spec: ControlSpec, cc_value: int, low: float | None = None, high: float | None = None) -> object:
    """Map a CC value 0-127 into ``spec``'s range (or ``low``-``high``): a float, int, bool or choice."""
    fraction = min(max(cc_value, 0), 127) / 127
    if spec.is_choice:
        choice = spec.choices[min(int(fraction * len(spec.choices)), len(spec.choices) - 1)]
        return choice == "on" if spec.choices == ("off", "on") else choice
    lo = spec.low if low is None else low
    hi = spec.high if high is None else high
    value = lo + (hi - lo) * fraction
    return round(value) if spec.integer else value


@dataclass(frozen=True)
class CCMapping:
    """One knob: CC ``number`` (on ``channel`` 1-16, or any when None) drives ``control`` from min to max."""

    number: int
    control: str
    channel: int | None = None
    min: float | None = None  # value at CC 0; None = the control's usual low
    max: float | None = None  # value at CC 127; None = the control's usual high

    def __post_init__(self) -> None:
        spec = control_spec(self.control)
        if not 0 <= self.number <= 127:
            raise CCMapError(f"CC number {self.number} must be 0-127")
        if self.channel is not None and not 1 <= self.channel <= 16:
            raise CCMapError(f"channel {self.channel} must be 1-16")
        for key, bound in (("min", self.min), ("max", self.max)):
            if bound is None:
                continue
            if spec.is_choice:
                raise CCMapError(f"{key} does not apply to {self.control!r}, a choice of {', '.join(spec.choices)}")
            if not spec.lowest <= bound <= spec.highest:
                raise CCMapError(f"{key} {bound} of {self.control!r} must be within {spec.lowest}-{spec.highest}")

    def matches(self, channel: int, number: int) -> bool:
        """Whether a CC on ``channel`` (1-16) with ``number`` drives this mapping."""
        return self.number == number and (self.channel is None or self.channel == channel)

    def value(self, cc_value: int) -> object:
        return scale(control_spec(self.control), cc_value, self.min, self.max)


class CCMap:
    """The mappings plus MIDI learn state; owned by one thread (the daemon's input handling)."""

    def __init__(self, mappings: tuple[CCMapping, ...] = ()) -> None:
        self.mappings: tuple[CCMapping, ...] = tuple(mappings)
        self.learning: str | None = None  # control waiting for the next CC
        self.learned: CCMapping | None = None  # the mapping the last completed learn created

    @classmethod
    def load(cls, path: str | Path) -> CCMap:
        """Read a map file; a bad entry raises ``CCMapError`` naming file, entry and key."""
        data = config.read_toml(path)
        unknown = sorted(set(data) - {"cc"})
        if unknown:
            raise CCMapError(f"{path}: unknown key {unknown[0]!r}; expected [[cc]] tables")
        entries = data.get("cc", [])
        if not isinstance(entries, list):
            raise CCMapError(f"{path}: 'cc' must be an array of tables ([[cc]])")
        mappings = []
        for index, entry in enumerate(entries):
            where = f"{path}: cc[{index}]"
            try:
                mappings.append(config.from_dict(CCMapping, entry, where))
            except config.ConfigError as error:
                raise CCMapError(str(error)) from None
            except CCMapError as error:
                raise CCMapError(f"{where}: {error}") from None
        return cls(tuple(mappings))

    def save(self, path: str | Path) -> Path:
        """Write the map as TOML (creating the folder); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_toml(self.mappings), encoding="utf-8")
        return path

    def learn(self, control: str | None) -> None:
        """Map the next CC received to ``control`` (checked now); None cancels."""
        if control is not None:
            control_spec(control)
        self.learning = control
        self.learned = None

    def apply(self, msg: Any) -> tuple[str, object] | None:
        """The ``(control, value)`` a mido message sets, or None when it maps to nothing.

        While learning, a CC first becomes the mapping for the learned control
        (replacing any mapping of that CC or of that control), then applies.
        """
        if getattr(msg, "type", None) != "control_change":
            return None
        channel = msg.channel + 1
        if self.learning is not None:
            self._bind(CCMapping(number=msg.control, control=self.learning, channel=channel))
        for mapping in self.mappings:
            if mapping.matches(channel, msg.control):
                return mapping.control, mapping.value(msg.value)
        return None

    def _bind(self, new: CCMapping) -> None:
        kept = tuple(
            m
            for m in self.mappings
            if m.control != new.control and not (m.number == new.number and m.channel in (None, new.channel))
        )
        self.mappings = (new, *kept)
        self.learning = None
        self.learned = new


def default_path() -> Path:
    """Where the user's map lives: ``rtgen.paths.config_dir()/cc_map.toml``."""
    return paths.config_dir() / DEFAULT_FILENAME


def to_toml(mappings: tuple[CCMapping, ...]) -> str:
    """The map file's text; ``CCMap.load`` reads it back to equal mappings."""
    blocks = []
    for m in mappings:
        lines = ["[[cc]]", f"number = {m.number}"]
        if m.channel is not None:
            lines.append(f"channel = {m.channel}")
        lines.append(f"control = {json.dumps(m.control)}")  # a JSON string is a valid TOML basic string
        for key, bound in (("min", m.min), ("max", m.max)):
            if bound is not None:
                lines.append(f"{key} = {float(bound)!r}")
        blocks.append("\n".join(lines))
    header = "# rtgen MIDI CC map: [[cc]] number (0-127), channel (1-16, optional), control, min, max\n"
    return header + "\n\n".join(blocks) + ("\n" if blocks else "")


def preset_for_program(program: int, presets: list[str]) -> str | None:
    """Program change ``program`` (0-127) selects the preset at that index of the sorted names, if any."""
    ordered = sorted(presets)
    return ordered[program] if 0 <= program < len(ordered) else None
