"""Frozen dataclass configs loaded from TOML, strictly: an unknown or mistyped key names itself.

Every concern (training, presets, the daemon, CC maps) keeps its settings in a
frozen dataclass with units in its field names; this module is the one place
that turns TOML tables into those dataclasses.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from rtgen.errors import RtgenError

T = TypeVar("T")


class ConfigError(RtgenError):
    """A config file or table that does not fit its dataclass; the message names file and key."""


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build ``cls`` from ``data``; nested dataclass fields take nested tables.

    Ints are accepted where floats are expected (TOML writes ``1`` for ``1.0``);
    everything else must match the annotation, and unknown keys are refused.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(fields))}")
    values = {name: _coerce(hints[name], value, f"{source}: {name}") for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from None
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def load(cls: type[T], path: str | Path, table: str | None = None) -> T:
    """Load ``cls`` from a TOML file, or from one of its tables."""
    data = read_toml(path)
    if table is not None:
        data = data.get(table, {})
    return from_dict(cls, data, f"{path}" + (f" [{table}]" if table else ""))


def to_dict(config: Any) -> dict[str, Any]:
    """A config as plain data, ready for TOML or JSON."""
    return dataclasses.asdict(config)


def _coerce(annotation: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{where}: unexpected value {value!r}")
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            choices = ", ".join(repr(a) for a in typing.get_args(annotation))
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if origin in (dict,):
        key_type, value_type = typing.get_args(annotation) or (str, Any)
        _expect(value, dict, where)
        return {k: _coerce(value_type, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (tuple, list):
        _expect(value, list, where)
        args = typing.get_args(annotation)
        item_type = args[0] if args else Any
        items = [_coerce(item_type, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    _expect(value, annotation, where)
    return value


def _expect(value: Any, kind: type, where: str) -> None:
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: expected {kind.__name__}, got a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
