"""``rtgen ports``: which MIDI backends work here, and the ports other programs offer on one of them."""

from __future__ import annotations

import argparse
import json

BACKEND_CHOICES = ("auto", "jack", "alsa", "coremidi", "windows")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ports",
        help="list MIDI backends and the input/output ports rtgen can connect to",
        description="List the MIDI backends python-rtmidi was built with, whether each works now, "
        "and the ports of other programs on the chosen one (names for --in/--out).",
    )
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="backend to list (default: auto)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rtgen.midi import backends

    compiled = backends.compiled_backends()
    working = backends.available_backends()
    if not args.json:
        print("backends:")
        for name in compiled:
            state = "available" if name in working else "not available"
            extra = f" (server {backends.jack_server_name()!r})" if name == "jack" else ""
            print(f"   {name:<9} {state}{extra}")
    listing = backends.list_ports(args.backend)  # a PortError here says what to start
    if args.json:
        data = {
            "compiled": compiled,
            "available": working,
            "backend": listing.backend,
            "jack_server": backends.jack_server_name(),
            "inputs": listing.inputs,
            "outputs": listing.outputs,
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"ports on {listing.backend}:")
    _print_ports("inputs (rtgen can listen to; use with --in)", listing.inputs)
    _print_ports("outputs (rtgen can play to; use with --out)", listing.outputs)
    return 0


def _print_ports(title: str, names: list[str]) -> None:
    print(f"{title}:")
    if not names:
        print("   (none)")
    for name in names:
        print(f"   {name}")
