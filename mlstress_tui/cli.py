"""The `mlstress-tui` entry point: argument parsing, dispatch and exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mlstress_tui import __version__
from mlstress_tui.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> OneLineParser:
    from mlstress_tui.commands import (accept, batch, compare, generate, outliers, precompute, profile, ramp, run,
                                       selfcheck, serve, show)

    parser = OneLineParser(
        prog="mlstress-tui",
        description="Prove an ML serving system holds production load before real users arrive. A bare "
                    "'mlstress-tui' starts the dashboard on the default database (generated into the cache "
                    "directory on first use).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (generate, profile, run, ramp, outliers, accept, compare, show, serve, batch, precompute, selfcheck):
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 done, 1 criteria failed, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        parser = build_parser()  # imports every command's modules: seconds on a busy box, and Ctrl-C may land here
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    # No command: the dashboard on the default database (generated into the cache on first use).
    try:
        args = parser.parse_args(argv or ["run"])
    except SystemExit as exit_:  # --help, --version and one-line usage errors
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except UsageError as error:
        print(f"mlstress-tui {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
