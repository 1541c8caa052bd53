"""Presets: a performer's whole starting point (genre weights, fusion, sampling, tempo, mode) in one TOML file.

A preset file is flat TOML with one ``[controls]`` table holding any
``rtgen.engine.controls.Controls`` field::

    name = "folk-answer"
    description = "Folk call and response: two-bar answers"   # one line, for `rtgen presets` and the TUI
    tempo_bpm = 112
    mode = "call-and-response"
    answer_bars = 2
    seed_phrase = "folk"          # a built-in phrase (rtgen.data.seeds) or a .mid path
    [controls]
    weights = { folk = 1.0 }
    temperature = 0.9

Files are read strictly through ``rtgen.config.from_dict``: an unknown key, a
wrong type or an out-of-range value is refused with the file, the key and what
was expected. A preset name resolves to ``presets_dir()/<name>.toml``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from rtgen.config import ConfigError, from_dict, read_toml, to_dict
from rtgen.controls import ControlError, check
from rtgen.engine.controls import Controls
from rtgen.engine.form import FORM_CONTROLS
from rtgen.modes import Mode
from rtgen.paths import presets_dir


class PresetError(ConfigError):
    """A preset that is missing or malformed; the message names file, key and what was expected."""


@dataclass(frozen=True)
class Preset:
    """Everything a performance starts from; tempo and mode checked by the control registry, ``answer_bars`` 1-64."""

    name: str = "untitled"
    description: str = ""  # one line for `rtgen presets` and the TUI's preset list
    controls: Controls = field(default_factory=lambda: Controls(**FORM_CONTROLS))  # a file's [controls] replaces it
    tempo_bpm: float = 110.0  # beats (quarter notes) per minute
    mode: Mode = "call-and-response"
    answer_bars: int = 2  # bars of 4/4 rtgen plays in answer to a call
    seed_phrase: str | None = None  # built-in phrase name (rtgen.data.seeds) or path to a .mid; None: the first genre's

    def __post_init__(self) -> None:
        try:
            check("tempo_bpm", self.tempo_bpm)
            check("mode", self.mode)
        except ControlError as error:
            raise ValueError(str(error)) from None  # from_dict names the file
        if not 1 <= self.answer_bars <= 64:
            raise ValueError(f"answer_bars: {self.answer_bars} outside 1-64")
        if "\n" in self.description or "\r" in self.description:
            raise ValueError("description: must be one line")


@dataclass(frozen=True)
class PresetListing:
    """One preset as a list shows it: its name and description, or why its file does not load."""

    name: str
    description: str  # "" when the file has none, or does not load
    error: str | None = None  # the file, the key and what was expected


def preset_path(name_or_path: str | Path) -> Path:
    """A path as given when it names a file (or ends in .toml), else ``presets_dir()/<name>.toml``."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists() or len(path.parts) > 1:
        return path
    return presets_dir() / f"{name_or_path}.toml"


def load_preset(name_or_path: str | Path) -> Preset:
    """Read a preset by name or path; a missing name lists the presets there are."""
    path = preset_path(name_or_path)
    if not path.exists():
        known = ", ".join(list_presets()) or "none"
        raise PresetError(f"{path}: no such preset (presets in {presets_dir()}: {known})")
    try:
        data = read_toml(path)
        data.setdefault("name", path.stem)
        return from_dict(Preset, data, str(path))
    except ControlError as error:
        raise PresetError(f"{path}: controls: {error}") from None
    except ConfigError as error:
        raise PresetError(str(error)) from None


def list_presets() -> list[str]:
    """Names of the presets in ``presets_dir()``, sorted (program change N loads the Nth)."""
    folder = presets_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def describe_presets() -> list[PresetListing]:
    """Every preset in ``presets_dir()`` with its description; a malformed one with its error instead of raising."""
    listings = []
    for name in list_presets():
        try:
            listings.append(PresetListing(name, load_preset(name).description))
        except PresetError as error:
            listings.append(PresetListing(name, "", str(error)))
    return listings


def save_preset(preset: Preset, path: str | Path) -> Path:
    """Write ``preset`` as TOML that ``load_preset`` reads back to an equal value."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_dict(preset)
    controls = data.pop("controls")
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items() if value is not None]
    lines.append("")
    lines.append("[controls]")
    lines.extend(f"{key} = {_toml_value(value)}" for key, value in controls.items())
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n")
    partial.replace(path)
    return path


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PresetError(f"cannot write the non-finite number {value} to a preset")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise PresetError(f"cannot write {type(value).__name__} {value!r} to a preset")
