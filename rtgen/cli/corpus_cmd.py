"""``rtgen corpus stats``: what a corpus holds once parsed and encoded, and whether the cache served it."""

from __future__ import annotations

import dataclasses
import json
import sys

_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_CACHE_WORDS = {"tokens": "served from the cache", "notes": "notes from the cache, encoded now", "": "parsed now"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "corpus",
        help="inspect a corpus (music21 corpus name or folder of music files)",
        description="Inspect a training corpus: a music21 corpus name (essenFolksong, ryansMammoth, bach, "
        "palestrina, ...) or a folder of .mid/.midi/.mxl/.musicxml/.xml/.krn/.abc files.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    stats = actions.add_parser(
        "stats",
        help="pieces, notes, tokens, pitch range and skipped files of a corpus",
        description="Parse (or read from the cache) and encode a corpus, then print its figures: pieces, "
        "notes and tokens for training and validation, with and without transposition into 12 keys.",
    )
    stats.add_argument("source", metavar="NAME_OR_DIR", help="music21 corpus name or folder of music files")
    stats.add_argument("--limit", type=_positive, help="only the first N pieces (in file order)")
    stats.add_argument("--parts", choices=("melody", "all"), default="melody", help="top part only, or every part")
    stats.add_argument("--encoding", choices=("event", "timestep"), default="event", help="token encoding")
    stats.add_argument("--no-cache", action="store_true", help="parse again; neither read nor write the cache")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    stats.set_defaults(handler=run_stats)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)


def _positive(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def run_stats(args) -> int:
    from rtgen.data.corpus import load_tokens
    from rtgen.data.vocabulary import make_encoding

    corpus = load_tokens(
        args.source,
        make_encoding(args.encoding),
        parts=args.parts,
        limit=args.limit,
        cache=not args.no_cache,
        progress=sys.stderr.isatty(),
    )
    if args.json:
        figures = {**dataclasses.asdict(corpus.stats), "seconds": round(corpus.seconds, 3), "cache": corpus.cache_hit}
        print(json.dumps(figures, indent=2))
    else:
        print(describe(corpus.stats, corpus.seconds, corpus.cache_hit))
    return 0


def describe(stats, seconds: float, cache_hit: str) -> str:
    """The figures of ``CorpusStats`` as a few aligned lines."""
    from rtgen.data.corpus import skip_line

    keys = "12 keys" if stats.transpose else "no transposition"
    lines = [
        f"{stats.source}: {stats.parts}, {stats.encoding} encoding",
        f"  files     {stats.files:,}",
        f"  pieces    {stats.pieces:,} ({stats.train_pieces:,} train, {stats.valid_pieces:,} valid)",
        f"  notes     {stats.notes:,} ({stats.train_notes:,} train, {stats.valid_notes:,} valid)",
        f"  tokens    train {stats.train_tokens:,} in their own key, {stats.train_tokens_transposed:,} in "
        f"{keys} ({stats.train_sequences:,} sequences); valid {stats.valid_tokens:,}",
        f"  pitches   {stats.pitch_low}-{stats.pitch_high} ({_name(stats.pitch_low)}-{_name(stats.pitch_high)})",
        f"  skipped   {skip_line(stats.skipped).removeprefix('skipped ') or 'none'}",
        f"  time      {seconds:.2f} s ({_CACHE_WORDS[cache_hit]})",
    ]
    return "\n".join(lines)


def _name(pitch: int) -> str:
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"
