"""``rtgen presets``: the presets there are, one a line, with what each one is for.

Names come from ``presets_dir()`` (``RTGEN_PRESETS``, else the shipped
``presets/`` folder) in the order program changes select them. A preset file
that does not load is listed with its error (the file, the key, what was
expected) on stderr, and the command exits 1 so a script notices.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "presets",
        help="list the presets, each with a one-line description",
        description="List the presets (name and description); malformed preset files are reported on stderr.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rtgen.daemon.presets import describe_presets
    from rtgen.paths import presets_dir

    listings = describe_presets()
    if not listings:
        print(f"no presets in {presets_dir()}; save one from the TUI (s) or write a .toml there")
        return 0
    width = max(len(listing.name) for listing in listings)
    for listing in listings:
        if listing.error is None:
            print(f"{listing.name:<{width}}  {listing.description or '(no description)'}".rstrip())
    broken = [listing for listing in listings if listing.error is not None]
    for listing in broken:
        print(f"rtgen: error: preset {listing.name}: {listing.error}", file=sys.stderr)
    return 1 if broken else 0
