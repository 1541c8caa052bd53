"""The ``rtgen`` command: one subcommand module per concern, each importing heavy packages only when run.

Every module listed in ``SUBCOMMANDS`` exposes ``register(subparsers)``, which
adds its parser and sets ``handler`` to a function taking the parsed arguments
and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rtgen import __version__
from rtgen.errors import RtgenError

SUBCOMMANDS = (
    "corpus",
    "generate",
    "run",
    "attach",
    "play",
    "demo",
    "presets",
    "ports",
    "train",
    "eval",
    "models",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtgen",
        description="Real-time MIDI performance daemon: answers and plays along with a performer, "
        "sampling from genre LSTM models fused with live genre weights.",
    )
    parser.add_argument("--version", action="version", version=f"rtgen {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"rtgen.cli.{name}_cmd").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except RtgenError as error:
        print(f"rtgen: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
