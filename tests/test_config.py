"""Strict TOML configs: every mistake names its file and key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from rtgen.config import ConfigError, from_dict, load


@dataclass(frozen=True)
class Inner:
    size: int = 1


@dataclass(frozen=True)
class Example:
    tempo_bpm: float = 120.0
    mode: Literal["solo", "duet"] = "solo"
    sizes: tuple[int, ...] = (256, 512)
    weights: dict[str, float] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    note: str | None = None


def test_loads_nested_tables_and_accepts_ints_for_floats(tmp_path):
    path = tmp_path / "example.toml"
    path.write_text("tempo_bpm = 100\nsizes = [3, 5]\n[weights]\nfolk = 10\n[inner]\nsize = 7\n")
    config = load(Example, path)
    assert config == Example(tempo_bpm=100.0, sizes=(3, 5), weights={"folk": 10.0}, inner=Inner(7))
    assert isinstance(config.tempo_bpm, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tempo": 120}, "unknown key 'tempo'"),
        ({"tempo_bpm": "fast"}, "tempo_bpm: expected float"),
        ({"mode": "choir"}, "mode: 'choir' is not one of"),
        ({"sizes": [1, "x"]}, r"sizes\[1\]: expected int"),
        ({"weights": {"folk": True}}, "weights.folk: expected float, got a boolean"),
        ({"inner": {"size": 1, "colour": 2}}, "inner: unknown key 'colour'"),
    ],
)
def test_mistakes_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Example, data, "example.toml")


def test_bad_toml_and_missing_file_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("tempo_bpm = = 3")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load(Example, bad)
    with pytest.raises(ConfigError, match="no such file"):
        load(Example, tmp_path / "absent.toml")
