"""The corpus cache: .npz files of plain arrays plus one JSON string, never pickles.

Files are written to a temporary name and renamed, so a reader never sees half
a file; a file that cannot be read (damaged, or from an older layout) is a
miss, and the caller parses again and overwrites it.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import numpy as np

from rtgen import paths
from rtgen.encoding import Note

# Bump NOTES_VERSION when reading files changes the notes, CACHE_VERSION when tokenising changes the
# arrays (a notes change bumps both: token arrays are made from notes).
NOTES_VERSION = 1
CACHE_VERSION = 1


def path_for(label: str, parts: str, kind: str, key: str) -> Path:
    """``<cache>/corpus/<label>-<parts>-<kind>-<key>.npz``; ``kind`` is "notes" or an encoding's name."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:60]
    return paths.cache_dir() / "corpus" / f"{slug}-{parts}-{kind}-{key}.npz"


def save(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(partial, path)


def load(path: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """The arrays and meta saved at ``path``, or None when there is no readable file there."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        return arrays, json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        return None


def notes_to_arrays(pieces: list[list[Note]]) -> dict[str, np.ndarray]:
    """Notes of all pieces back to back: exact Fractions as numerator/denominator pairs."""
    flat = [note for notes in pieces for note in notes]
    return {
        "offsets": np.concatenate([[0], np.cumsum([len(notes) for notes in pieces])]).astype(np.int64),
        "start": np.array([(n.start.numerator, n.start.denominator) for n in flat], dtype=np.int64).reshape(-1, 2),
        "duration": np.array([(n.duration.numerator, n.duration.denominator) for n in flat], dtype=np.int64).reshape(
            -1, 2
        ),
        "pitch": np.array([n.pitch for n in flat], dtype=np.uint8),
        "velocity": np.array([n.velocity for n in flat], dtype=np.uint8),
    }


def notes_from_arrays(arrays: dict[str, np.ndarray]) -> list[list[Note]]:
    notes = [
        Note(Fraction(s_num, s_den), pitch, Fraction(d_num, d_den), velocity)
        for (s_num, s_den), (d_num, d_den), pitch, velocity in zip(
            arrays["start"].tolist(),
            arrays["duration"].tolist(),
            arrays["pitch"].tolist(),
            arrays["velocity"].tolist(),
            strict=True,
        )
    ]
    offsets = arrays["offsets"].tolist()
    return [notes[a:b] for a, b in pairwise(offsets)]
