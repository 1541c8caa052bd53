"""Files a command writes: their folder must exist already; rtgen does not make one up.

A typo in ``-o song/take.mid`` would otherwise create a folder nobody asked
for and leave the file where nobody looks. So every file path a command
writes (``generate -o`` and ``--musicxml``, ``demo -o``, ``run --out
take.mid``, ``train --prepare``) is checked before any work starts, and a
missing folder is a one-line error naming it. Folders rtgen fills itself (a
training run's ``--out``, the takes folder) are still created.
"""

from __future__ import annotations

from pathlib import Path

from rtgen.errors import RtgenError


def output_file(path: str | Path, flag: str) -> Path:
    """``path`` as a Path once its folder exists and it is not itself a folder; else a one-line RtgenError."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise RtgenError(f"{flag} {path}: the folder {folder} {why}; create it first (rtgen does not)")
    if path.is_dir():
        raise RtgenError(f"{flag} {path}: is a folder; give a file name")
    return path
