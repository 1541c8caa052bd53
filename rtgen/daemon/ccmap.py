"""MIDI CC knobs to live controls: the TOML map, MIDI learn, and program change to preset.

A performer's controller sends CC values 0-127; each mapping scales one CC
(optionally on one channel) into the range of one control, as the control
registry says (``rtgen.controls``: its usual range, or the mapping's min and
max). Control names are the registry's (``temperature``, ``top_p``,
``method``, ..., one genre weight as ``weights.<genre>``, ``tempo_bpm``, ``mode``). The map is
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
from typing import TYPE_CHECKING

from rtgen import config, paths
from rtgen.controls import ControlError, Spec, spec
from rtgen.errors import RtgenError

if TYPE_CHECKING:
    import mido

DEFAULT_FILENAME = "cc_map.toml"


class CCMapError(RtgenError):
    """A CC map file or entry that cannot be used; the message names the file, entry and key."""


def control_spec(control: str) -> Spec:
    """The registry's entry for ``control`` (``rtgen.controls.spec``); an unknown name raises ``CCMapError``."""
    try:
        return spec(control)
    except ControlError as error:
        raise CCMapError(str(error)) from None


@dataclass(frozen=True)
class CCMapping:
    """One knob: CC ``number`` (on ``channel`` 1-16, or any when None) drives ``control`` from min to max."""

    number: int
    control: str
    channel: int | None = None
    min: float | None = None  # value at CC 0; None = the control's usual low
    max: float | None = None  # value at CC 127; None = the control's usual high

    def __post_init__(self) -> None:
        entry = control_spec(self.control)
        if not 0 <= self.number <= 127:
            raise CCMapError(f"CC number {self.number} must be 0-127")
        if self.channel is not None and not 1 <= self.channel <= 16:
            raise CCMapError(f"channel {self.channel} must be 1-16")
        for key, bound in (("min", self.min), ("max", self.max)):
            if bound is None:
                continue
            if not entry.numeric:
                raise CCMapError(f"{key} does not apply to {self.control!r}, a choice of {', '.join(entry.options)}")
            low, high = entry.hard_range()
            if not low <= bound <= high:
                raise CCMapError(f"{key} {bound} of {self.control!r} must be within {low:g}-{high:g}")

    def matches(self, channel: int, number: int) -> bool:
        """Whether a CC on ``channel`` (1-16) with ``number`` drives this mapping."""
        return self.number == number and (self.channel is None or self.channel == channel)

    def value(self, cc_value: int) -> object:
        return control_spec(self.control).from_cc(cc_value, self.min, self.max)


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

    def apply(self, msg: mido.Message) -> tuple[str, object] | None:
        """The ``(control, value)`` a mido message sets, or None when it maps to nothing.

        While learning, a CC first becomes the mapping for the learned control
        (replacing any mapping of that CC or of that control), then applies.
        """
        if msg.type != "control_change":
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
