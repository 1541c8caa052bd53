"""Corpora -> notes -> token arrays: parsed in parallel once, then served from a cache.

A source is the name of a folder of music21's bundled corpus (``essenFolksong``,
``ryansMammoth``, ``bach``, ``palestrina``, ...) or any folder of
.mid/.midi/.mxl/.musicxml/.xml/.krn/.abc files, searched recursively. Every
song of an ABC opus is a piece of its own (``essenFolksong/han1.abc#12``).

``load_notes`` parses (one task per file, or per few tunes of an opus, on all
cores) and caches the notes; ``load_tokens`` encodes them, splits pieces into
training and validation, adds transposed copies of the training pieces and
caches the token arrays. Both caches are .npz files under
``paths.cache_dir() / "corpus"``, keyed by everything that changes their
content: the files (path, size, mtime), the options, the encoding and
``corpus_cache.NOTES_VERSION`` / ``CACHE_VERSION``.

Transposition, the split and the token arrays are in ``corpus_tokens``; the
file readers in ``corpus_files``; the cache files in ``corpus_cache``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtgen.data import cache as corpus_cache
from rtgen.data.files import MIDI_SUFFIXES, MUSIC21_SUFFIXES, PARTS, Result, abc_tunes, read_units
from rtgen.data.tokens import CorpusStats, assemble, encode_pieces
from rtgen.encoding import Encoding, EventEncoding, Note
from rtgen.errors import RtgenError

TUNES_PER_TASK = 16  # ABC tunes parsed per task: big enough to amortise, small enough to balance cores
PIECES_PER_TOKEN_TASK = 200
SUFFIXES = MIDI_SUFFIXES + MUSIC21_SUFFIXES
# When music21 holds one piece in several formats, the first of these is read.
_PREFERRED = (".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mid", ".midi")
_SKIP_LIST_LENGTH = 10


class CorpusError(RtgenError):
    """A corpus that cannot be loaded: unknown name, or no usable piece."""


@dataclass(frozen=True)
class Source:
    """Where a corpus comes from: a label for names and messages, and its files in reading order."""

    label: str  # a music21 corpus name, or the folder's name
    root: Path
    files: tuple[Path, ...]  # sorted by path relative to root

    def piece_name(self, path: Path) -> str:
        return f"{self.label}/{path.relative_to(self.root).as_posix()}"

    def fingerprint(self) -> list:
        """What the caches depend on: the root and each file's path, size and modification time."""
        entries: list = [str(self.root)]
        for path in self.files:
            status = path.stat()
            entries.append([path.relative_to(self.root).as_posix(), status.st_size, status.st_mtime_ns])
        return entries


def music21_corpus_root() -> Path | None:
    """music21's bundled corpus folder, found without importing music21 (which takes a second)."""
    spec = importlib.util.find_spec("music21")
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent / "corpus"
    return root if root.is_dir() else None


def known_corpora() -> list[str]:
    root = music21_corpus_root()
    if root is None:
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def resolve_source(source: str | Path) -> Source:
    """A music21 corpus name, or a folder; anything else is a one-line ``CorpusError``.

    A plain name (a str without a slash) is looked up among music21's corpora
    first, so a folder of that name is reached as ``./name``.
    """
    root = music21_corpus_root()
    if isinstance(source, str) and "/" not in source and root is not None and source in known_corpora():
        return Source(source, root / source, _music_files(root / source, dedupe=True))
    path = Path(source).expanduser()
    if path.is_dir():
        path = path.resolve()
        return Source(path.name or str(path), path, _music_files(path, dedupe=False))
    names = ", ".join(known_corpora()) or "none (music21 is not installed)"
    raise CorpusError(f"no corpus {str(source)!r}: not a folder, and not one of music21's corpora: {names}")


def _music_files(root: Path, dedupe: bool) -> tuple[Path, ...]:
    files = [
        p
        for p in root.rglob("*")
        if p.suffix.lower() in SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if dedupe:
        best: dict[Path, Path] = {}
        for p in files:
            stem = p.with_suffix("")
            if stem not in best or _PREFERRED.index(p.suffix.lower()) < _PREFERRED.index(best[stem].suffix.lower()):
                best[stem] = p
        files = list(best.values())
    return tuple(sorted(files, key=lambda p: p.relative_to(root).as_posix()))


@dataclass(frozen=True, eq=False)
class NoteCorpus:
    """The pieces of a source as notes (beats), in reading order, and what could not be read."""

    source: str
    parts: str  # "melody" (one monophonic voice) or "all"
    names: tuple[str, ...]
    pieces: tuple[list[Note], ...]
    skipped: tuple[tuple[str, str], ...]  # (file or piece name, reason)
    files: int  # music files in the source, whatever the limit
    seconds: float  # time this load took
    cache_hit: bool


@dataclass(frozen=True, eq=False)
class TokenCorpus:
    """Token arrays of a corpus: every piece in its own key, plus transposed copies of training pieces.

    Sequence ``r`` is ``tokens[offsets[r]:offsets[r + 1]]``: piece
    ``names[piece[r]]`` shifted by ``shift[r]`` semitones, without separators.
    """

    source: str
    parts: str
    encoding: Encoding
    names: tuple[str, ...]  # the pieces, in reading order
    valid_piece: np.ndarray  # bool (pieces,): True for a validation piece
    tokens: np.ndarray  # int16 (all tokens,)
    offsets: np.ndarray  # int64 (sequences + 1,)
    piece: np.ndarray  # int32 (sequences,): index into names
    shift: np.ndarray  # int8 (sequences,): semitones; 0 is the piece's own key
    stats: CorpusStats
    seconds: float  # time this load took
    cache_hit: str  # "tokens", "notes" (parsed notes reused, then encoded) or "" (parsed now)

    @functools.cached_property
    def train(self) -> list[np.ndarray]:
        """Training sequences (views into ``tokens``), transposed copies included."""
        return self._sequences(False)

    @functools.cached_property
    def valid(self) -> list[np.ndarray]:
        """Validation sequences, each piece once in its own key."""
        return self._sequences(True)

    @property
    def train_names(self) -> list[str]:
        return [name for name, valid in zip(self.names, self.valid_piece, strict=True) if not valid]

    @property
    def valid_names(self) -> list[str]:
        return [name for name, valid in zip(self.names, self.valid_piece, strict=True) if valid]

    def _sequences(self, valid: bool) -> list[np.ndarray]:
        rows = np.flatnonzero(self.valid_piece[self.piece] == valid)
        return [self.tokens[self.offsets[r] : self.offsets[r + 1]] for r in rows]


def load_notes(
    source: str | Path,
    *,
    parts: str = "melody",
    limit: int | None = None,
    cache: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> NoteCorpus:
    """Every piece of ``source`` as notes; ``limit`` keeps the first N pieces in reading order.

    Unreadable files are skipped and named in one line on stderr; a source with
    no usable piece raises ``CorpusError``. ``workers`` defaults to every core.
    """
    resolved, key = _notes_key(source, parts, limit)
    corpus = _load_notes(resolved, key, parts, limit, cache, progress, workers)
    _report_skipped(corpus.skipped)
    return corpus


def load_tokens(
    source: str | Path,
    encoding: Encoding | None = None,
    *,
    parts: str = "melody",
    limit: int | None = None,
    transpose: bool = True,
    valid_fraction: float = 0.1,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
    workers: int | None = None,
) -> TokenCorpus:
    """Token arrays of ``source``, split by piece into training and validation (``valid_fraction``).

    ``encoding`` defaults to ``EventEncoding()``; the time-step encoding is
    monophonic and needs ``parts="melody"``; a chord encoding must have its
    vocabulary (``rtgen.data.vocabulary.fit_vocabulary``). A second call with the same
    arguments on unchanged files is served from the cache; a call that only
    changes the encoding or the split reuses the cached notes.
    """
    started = time.perf_counter()
    encoding = encoding if encoding is not None else EventEncoding()
    if encoding.name == "timestep" and parts != "melody":
        raise CorpusError("the timestep encoding is monophonic: it needs parts='melody' (--parts melody)")
    if not encoding.fitted:
        raise CorpusError(f"the {encoding.name} encoding has no vocabulary yet: count it on the training pieces first")
    if not 0 <= valid_fraction < 1:
        raise CorpusError(f"valid_fraction must be at least 0 and below 1, not {valid_fraction}")
    resolved, notes_key = _notes_key(source, parts, limit)
    key = content_hash([notes_key, transpose, valid_fraction, seed, encoding.to_json(), corpus_cache.CACHE_VERSION])
    path = corpus_cache.path_for(resolved.label, parts, encoding.name, key)
    saved = corpus_cache.load(path) if cache else None
    if saved is not None:
        arrays, stats = saved[0], CorpusStats.from_json(saved[1])
        cache_hit = "tokens"
    else:
        notes = _load_notes(resolved, notes_key, parts, limit, cache, progress, workers)
        arrays, stats = _tokenise(notes, encoding, transpose, valid_fraction, seed, progress, workers)
        cache_hit = "notes" if notes.cache_hit else ""
        if cache:
            corpus_cache.save(path, arrays, dataclasses.asdict(stats))
    _report_skipped(stats.skipped)
    return TokenCorpus(
        source=resolved.label,
        parts=parts,
        encoding=encoding,
        names=tuple(arrays["names"].tolist()),
        valid_piece=arrays["valid"],
        tokens=arrays["tokens"],
        offsets=arrays["offsets"],
        piece=arrays["piece"],
        shift=arrays["shift"],
        stats=stats,
        seconds=time.perf_counter() - started,
        cache_hit=cache_hit,
    )


def _load_notes(
    source: Source, key: str, parts: str, limit: int | None, cache: bool, progress: bool, workers: int | None
) -> NoteCorpus:
    started = time.perf_counter()
    path = corpus_cache.path_for(source.label, parts, "notes", key)
    saved = corpus_cache.load(path) if cache else None
    if saved is not None:
        arrays, meta = saved
        corpus = NoteCorpus(
            source.label,
            parts,
            tuple(arrays["names"].tolist()),
            tuple(corpus_cache.notes_from_arrays(arrays)),
            tuple(tuple(s) for s in meta["skipped"]),
            meta["files"],
            0.0,
            cache_hit=True,
        )
    else:
        corpus = _parse(source, parts, limit, progress, workers)
        if cache and corpus.pieces:
            arrays = {"names": np.array(corpus.names, dtype=str), **corpus_cache.notes_to_arrays(corpus.pieces)}
            corpus_cache.save(path, arrays, {"skipped": corpus.skipped, "files": corpus.files})
    if not corpus.pieces:
        raise CorpusError(f"no usable pieces in {source.root} ({_skip_summary(corpus.skipped, source)})")
    return dataclasses.replace(corpus, seconds=time.perf_counter() - started)


def _notes_key(source: str | Path, parts: str, limit: int | None) -> tuple[Source, str]:
    if parts not in PARTS:
        raise CorpusError(f"parts must be one of {', '.join(PARTS)}, not {parts!r}")
    if limit is not None and limit < 1:
        raise CorpusError(f"limit must be at least 1, not {limit}")
    resolved = resolve_source(source)
    return resolved, content_hash([resolved.label, resolved.fingerprint(), parts, limit, corpus_cache.NOTES_VERSION])


def content_hash(value) -> str:
    """A short digest of a JSON-able value: the cache files' keys."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:24]


def _parse(source: Source, parts: str, limit: int | None, progress: bool, workers: int | None) -> NoteCorpus:
    started = time.perf_counter()
    units = _plan(source)
    names: list[str] = []
    pieces: list[list[Note]] = []
    skipped: list[tuple[str, str]] = []
    done = 0
    while done < len(units) and (limit is None or len(pieces) < limit):
        batch = units[done:] if limit is None else units[done : done + limit - len(pieces)]
        done += len(batch)
        for name, notes, reason in _read(batch, parts, source.label, progress, workers):
            if notes is None:
                skipped.append((name, reason or "unreadable"))
            elif limit is None or len(pieces) < limit:
                names.append(name)
                pieces.append(notes)
    return NoteCorpus(
        source.label,
        parts,
        tuple(names),
        tuple(pieces),
        tuple(skipped),
        len(source.files),
        time.perf_counter() - started,
        cache_hit=False,
    )


def _plan(source: Source) -> list[tuple[str, str, int | None]]:
    """One unit per piece to read: ``(path, name, tune)``, tune indexing the tunes of an ABC file."""
    units: list[tuple[str, str, int | None]] = []
    for path in source.files:
        name = source.piece_name(path)
        tunes = len(abc_tunes(path.read_bytes())) if path.suffix.lower() == ".abc" else 1
        if tunes == 1:
            units.append((str(path), name, None))
        else:
            units.extend((str(path), f"{name}#{i + 1}", i) for i in range(tunes))
    return units


def _read(units, parts: str, label: str, progress: bool, workers: int | None) -> list[Result]:
    """Read units in parallel, tunes of one ABC file grouped into tasks; results in unit order."""
    tasks: list[list] = []
    for unit in units:
        if tasks and unit[2] is not None and tasks[-1][-1][0] == unit[0] and len(tasks[-1]) < TUNES_PER_TASK:
            tasks[-1].append(unit)
        else:
            tasks.append([unit])
    if any(Path(unit[0]).suffix.lower() in MUSIC21_SUFFIXES for unit in units):
        import music21  # noqa: F401 - imported once here, so forked workers need not import it again
    results = _map(
        functools.partial(read_units, parts=parts),
        tasks,
        [len(t) for t in tasks],
        f"reading {label}",
        progress,
        workers,
    )
    return [result for task_results in results for result in task_results]


def _map(function, tasks: list, sizes: list[int], description: str, progress: bool, workers: int | None) -> list:
    """``[function(task) for task in tasks]`` on a process pool, with a progress bar counting ``sizes``."""
    from tqdm import tqdm

    workers = min(workers or os.cpu_count() or 1, len(tasks))
    results: list = [None] * len(tasks)
    bar_settings = {"total": sum(sizes), "desc": description, "unit": "piece", "file": sys.stderr}
    if workers <= 1:
        with tqdm(**bar_settings, disable=not progress) as bar:
            for i, task in enumerate(tasks):
                results[i] = function(task)
                bar.update(sizes[i])
        return results
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        # Workers fork at the first submit: before the progress bar starts its monitor thread.
        futures = {pool.submit(function, task): i for i, task in enumerate(tasks)}
        with tqdm(**bar_settings, disable=not progress) as bar:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(sizes[futures[future]])
    finally:
        pool.shutdown(cancel_futures=True)
    return results


def _tokenise(
    notes: NoteCorpus,
    encoding: Encoding,
    transpose: bool,
    valid_fraction: float,
    seed: int,
    progress: bool,
    workers: int | None,
) -> tuple[dict[str, np.ndarray], CorpusStats]:
    chunks = [
        list(notes.pieces[i : i + PIECES_PER_TOKEN_TASK]) for i in range(0, len(notes.pieces), PIECES_PER_TOKEN_TASK)
    ]
    encoded = _map(
        functools.partial(encode_pieces, encoding=encoding, parts=notes.parts),
        chunks,
        [len(c) for c in chunks],
        f"encoding {notes.source}",
        progress,
        workers,
    )
    originals = [tokens for chunk in encoded for tokens in chunk]
    return assemble(notes, originals, encoding, transpose, valid_fraction, seed)


def _skip_summary(skipped, source: Source) -> str:
    """``3 files skipped: a.mid (not a MIDI file), ...``, or why there was nothing to read."""
    if not skipped:
        return f"no {', '.join(SUFFIXES)} files found" if not source.files else "every piece was empty"
    return f"{_count(skipped)} skipped: {_listing(skipped)}"


def skip_line(skipped) -> str:
    """``skipped 3 files: a.mid (not a MIDI file), b.mid (empty), ...``, or "" when nothing was skipped."""
    return f"skipped {_count(skipped)}: {_listing(skipped)}" if skipped else ""


def _count(skipped) -> str:
    kind = "pieces" if any("#" in name for name, _ in skipped) else "files"
    return f"{len(skipped)} {kind[:-1] if len(skipped) == 1 else kind}"


def _listing(skipped) -> str:
    shown = ", ".join(f"{name} ({reason})" for name, reason in skipped[:_SKIP_LIST_LENGTH])
    more = len(skipped) - _SKIP_LIST_LENGTH
    return f"{shown}, and {more} more" if more > 0 else shown


def _report_skipped(skipped) -> None:
    if skipped:
        print(skip_line(skipped), file=sys.stderr)
