"""``occcodec``'s entry point: ``main(argv)`` parses, dispatches and maps errors to exit codes.

Results go to stdout (``--json`` for machines); progress and notes go to stderr. Any
:class:`~occcodec.errors.OccError` becomes one line on stderr and a non-zero exit code; a
traceback is shown only with ``--debug`` (before or after the command name). ``--limit
NAME=VALUE`` (repeatable, also before or after the command) changes a resource limit of
:mod:`occcodec.format.limits`.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import NoReturn

from occcodec import __version__, heap
from occcodec.cli import batch, bench, decode, encode, eval, info, render
from occcodec.errors import LimitError, OccError, UsageError
from occcodec.format import limits

__all__ = ["COMMANDS", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "build_parser", "main"]

_LIMIT_HELP = ("raise a resource limit (repeatable): file, params, grid, work, memory, "
               "e.g. --limit grid=2048 (see README, 'Limits and errors')")

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70

#: Commands whose process keeps freed memory (:mod:`occcodec.heap`): an encode decodes
#: its shape several times. Not ``decode``: one decode gains nothing from reuse, and the
#: heap's fragmentation raised nut's 1024^3 decode from 1.81 to 2.25 GB (measured).
#: ``batch``'s workers set it themselves.
HEAP_COMMANDS = frozenset({"encode"})

#: One module per subcommand, each with ``add_parser(subparsers)`` and ``run(args) -> int``.
#: The modules import their heavy dependencies (TensorFlow, trimesh, matplotlib) inside
#: ``run``, so ``occcodec --help`` and decoding stay light.
COMMANDS: dict[str, ModuleType] = {
    "encode": encode,
    "decode": decode,
    "info": info,
    "batch": batch,
    "eval": eval,
    "bench": bench,
    "render": render,
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one UsageError line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options and one subparser per command."""
    parser = _Parser(prog="occcodec", description=(
        "Neural shape compression: a shape becomes a tiny occupancy network found by "
        "architecture search, stored in a small .occ file."))
    parser.add_argument("--version", action="version", version=f"occcodec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help=_LIMIT_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS.values():
        p = module.add_parser(sub)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
        # its own dest: a subparser's value would replace the one given before the command
        p.add_argument("--limit", action="append", dest="limit_after", default=[],
                       metavar="NAME=VALUE", help=_LIMIT_HELP)
    return parser


def apply_limits(args: argparse.Namespace) -> None:
    """Raise (or lower) the resource limits named by ``--limit``, before or after the command.

    Raises
    ------
    UsageError
        On an unknown name or a value that is not a positive integer.
    """
    try:
        changes = dict(limits.parse_assignment(text) for text in
                       [*getattr(args, "limit", []), *getattr(args, "limit_after", [])])
    except LimitError as exc:  # a mistyped option is a usage error (exit 2), not a budget
        raise UsageError(str(exc)) from None
    if changes:
        limits.set_limits(**changes)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, non-zero on any error).

    Called without ``argv`` (the ``occcodec`` command itself), ``encode`` keeps freed
    memory for reuse (:func:`occcodec.heap.keep_freed_memory`).
    """
    own_process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return 2
        apply_limits(args)
        if own_process and args.command in HEAP_COMMANDS:
            heap.keep_freed_memory()
        return int(COMMANDS[args.command].run(args))
    except OccError as exc:
        if debug:
            raise
        print(f"occcodec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print("occcodec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        if debug:
            raise
        print("occcodec: error: out of memory: try a lower --resolution", file=sys.stderr)
        return 1
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if debug:
            raise
        print(f"occcodec: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL
