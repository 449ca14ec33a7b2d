"""``python -m conformance``: the harness's command line.

Subcommands (one ``argparse`` sub-parser each):

* ``check PATH... [-D SYM=VAL]... [-v]`` parses ``.pkt`` scripts (a directory means
  every ``*.pkt`` under it, sorted) and prints every error as ``path:line:col:
  message``; with ``-v`` it also prints ``path: ok (N events)`` for each good file.

Exit status: 0 when every script parses, 2 on any script error or usage error.
Bad input never produces a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from conformance.script import ScriptError, parse_file

EXIT_OK = 0
EXIT_ERROR = 2


def _define(text: str) -> tuple[str, str]:
    symbol, sep, value = text.partition("=")
    if not sep or not symbol:
        raise argparse.ArgumentTypeError(f"expected SYM=VAL, got {text!r}")
    return symbol, value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="The packetdrill-compatible conformance harness.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="parse .pkt scripts and report every error",
        description="Parse .pkt scripts (a directory: every *.pkt under it) and report every error "
        "as path:line:col: message.  Exit 0 if all parse, 2 otherwise.",
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="a .pkt file or a directory")
    check.add_argument(
        "-D",
        "--define",
        dest="defines",
        action="append",
        type=_define,
        default=[],
        metavar="SYM=VAL",
        help="substitute VAL for the word SYM (as packetdrill's -D); repeatable",
    )
    check.add_argument("-v", "--verbose", action="store_true", help="also print 'path: ok (N events)'")
    check.set_defaults(handler=_check)
    return parser


def _scripts(paths: Sequence[str], err: TextIO) -> tuple[list[Path], bool]:
    """The files to check, and whether every PATH argument was usable."""
    files: list[Path] = []
    usable = True
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.pkt") if p.is_file())
            if not found:
                print(f"{name}: no .pkt files under this directory", file=err)
                usable = False
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            print(f"{name}: no such file or directory", file=err)
            usable = False
    return files, usable


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    defines = dict(args.defines)
    files, ok = _scripts(args.paths, err)
    for path in files:
        try:
            script = parse_file(path, defines)
        except ScriptError as error:
            ok = False
            for each in error.errors:
                print(each, file=err)
            continue
        except OSError as error:
            ok = False
            print(f"{path}: cannot read: {error.strerror or error}", file=err)
            continue
        if args.verbose:
            print(f"{path}: ok ({len(script.events)} events)", file=out)
    return EXIT_OK if ok else EXIT_ERROR


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse reports usage errors itself, with status 2
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    handler = args.handler
    status: int = handler(args, out, err)
    return status
