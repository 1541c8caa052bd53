"""Validation pieces as played: repeat marks expanded (music21 ``expandRepeats``), cached per corpus.

A score notates a dance tune's A part once between repeat marks; a player
plays it twice. ``rtgen eval music`` compares generated pieces with real
ones both ways, so a restatement is judged against what a listener of the
real tune hears as well as against the page. Only the pieces asked for (the
evaluation's validation pieces) are read again: an ABC tune whose text holds
no repeat sign is not parsed at all (most Essen songs), other files are parsed
and expanded when music21 finds a repeat barline or bracket in them. Every
expanded piece goes through the corpus's own encoding and back, as the
notated pieces did, so the two differ by their repeats alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from rtgen.data import cache as corpus_cache
from rtgen.data.corpus import TokenCorpus, content_hash, resolve_source
from rtgen.data.files import abc_tunes, parse_scores, score_notes
from rtgen.data.tokens import encode_pieces
from rtgen.encoding import Note

REPEATS_VERSION = 1  # bump when expanding changes the notes
# ABC repeat signs: |: :| :: and first/second endings [1 |1 [2 |2.
_ABC_REPEAT = re.compile(rb"\|:|:\||::|\[[12]|\|[12]")
NOTATED, EXPANDED, UNEXPANDABLE = "notated", "expanded", "unexpandable"  # what happened to each piece


def expanded_pieces(
    source: str | Path, corpus: TokenCorpus, names: Sequence[str]
) -> tuple[list[list[Note] | None], list[str]]:
    """Per name (a piece of ``corpus``, loaded from ``source``): its notes with repeats expanded, or None where it
    has no repeat marks (or music21 could not expand them); and what happened to it (``NOTATED``, ``EXPANDED``,
    ``UNEXPANDABLE``).

    Cached under the corpus cache, keyed by the source, its parts, its encoding and the names.
    """
    source = resolve_source(source)
    key = content_hash([source.label, corpus.parts, corpus.encoding.to_json(), list(names), REPEATS_VERSION])
    path = corpus_cache.path_for(source.label, corpus.parts, "repeats", key)
    saved = corpus_cache.load(path)
    if saved is not None:
        arrays, meta = saved
        stored = iter(corpus_cache.notes_from_arrays(arrays))
        return [next(stored) if s == EXPANDED else None for s in meta["status"]], meta["status"]
    texts: dict[Path, list[bytes]] = {}
    pieces, status = [], []
    for name in names:
        notes, what = _expand(source.root / name.split("/", 1)[1], corpus.parts, texts)
        if notes is not None:
            tokens = encode_pieces([notes], corpus.encoding, corpus.parts)[0]
            notes = corpus.encoding.decode(tokens.tolist())
        pieces.append(notes)
        status.append(what)
    kept = [p for p in pieces if p is not None]
    corpus_cache.save(path, {**corpus_cache.notes_to_arrays(kept)}, {"status": status})
    return pieces, status


def _expand(file: Path, parts: str, texts: dict[Path, list[bytes]]) -> tuple[list[Note] | None, str]:
    """(expanded notes or None, status) of one piece: ``file`` or ``file#tune`` (1-based tune of an ABC file)."""
    path, _, tune = str(file).partition("#")
    path = Path(path)
    text = None
    if path.suffix.lower() == ".abc":
        if path not in texts:
            texts[path] = abc_tunes(path.read_bytes())
        text = texts[path][int(tune.split("#")[0]) - 1 if tune else 0]
        if not _ABC_REPEAT.search(text):
            return None, NOTATED
    scores = parse_scores(path, text)
    if not scores:
        return None, NOTATED
    score = scores[0]
    if not _has_repeats(score):
        return None, NOTATED
    try:
        expanded = score.expandRepeats()
    except Exception:  # noqa: BLE001 - music21 raises ExpanderException and others on badly formed repeats
        return None, UNEXPANDABLE
    return score_notes(expanded, parts) or None, EXPANDED


def _has_repeats(score) -> bool:
    from music21 import bar, spanner

    found = score.recurse().getElementsByClass((bar.Repeat, spanner.RepeatBracket))
    return next(iter(found), None) is not None
