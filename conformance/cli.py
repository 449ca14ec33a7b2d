"""``python -m conformance``: the harness's command line.

Subcommands (one ``argparse`` sub-parser each):

* ``check PATH... [-D SYM=VAL]... [-v]`` parses ``.pkt`` scripts (a directory means
  every ``*.pkt`` under it, sorted) and prints every error as ``path:line:col:
  message``; with ``-v`` it also prints ``path: ok (N events)`` for each good file.
  Exit 0 when every script parses, 2 on any script error or usage error.
* ``run PATH... --target refstack|linux [--json FILE] [--pcap-dir DIR] [-v]`` runs the
  scripts on a target.  packetdrill's own options (``--local_ip=...``,
  ``--tolerance_usecs=...``, ``-D SYM=VAL``...) are accepted and override the
  scripts' own, so any packetdrill invocation can be replayed by swapping the
  command; options this harness does not implement are ignored with a warning.
  Exit 0 when every case passed (or was skipped or an expected failure), 1 when
  some failed, 2 on usage or script errors.
* ``coverage [ROOT] [--json] [-o FILE] [-v]`` lists each RFC 9293 MUST and SHLD
  requirement with the cases whose ``req:`` header line names it, and the
  uncovered ones with why (see :mod:`conformance.coverage`).

Bad input never produces a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from conformance.coverage import render_text
from conformance.coverage import report as coverage_report
from conformance.coverage import scan as scan_cases
from conformance.expectations import ExpectationsError, apply, nearest
from conformance.pcap import pcap_name, write_pcap
from conformance.results import Verdict
from conformance.resultset import ResultSet, environment
from conformance.run.executor import run_case
from conformance.script import ScriptError, parse_file
from conformance.targets import TARGET_NAMES, get_target

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2


def _define(text: str) -> tuple[str, str]:
    symbol, sep, value = text.partition("=")
    if not sep or not symbol:
        raise argparse.ArgumentTypeError(f"expected SYM=VAL, got {text!r}")
    return symbol, value


def _add_define(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-D",
        "--define",
        dest="defines",
        action="append",
        type=_define,
        default=[],
        metavar="SYM=VAL",
        help="substitute VAL for the word SYM (as packetdrill's -D); repeatable",
    )


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
    _add_define(check)
    check.add_argument("-v", "--verbose", action="store_true", help="also print 'path: ok (N events)'")
    check.set_defaults(handler=_check)
    run = commands.add_parser(
        "run",
        help="run .pkt scripts on a target",
        description="Run .pkt scripts on a target.  packetdrill's options (--local_ip=..., "
        "--tolerance_usecs=..., -D SYM=VAL, ...) are accepted and override in-script options.",
    )
    run.add_argument("paths", nargs="+", metavar="PATH", help="a .pkt file or a directory")
    run.add_argument(
        "--target", default="refstack", choices=TARGET_NAMES, help="where to run (default refstack)"
    )
    run.add_argument("--json", metavar="FILE", help="write the results as JSON")
    run.add_argument("--pcap-dir", metavar="DIR", help="write one pcap per case")
    run.add_argument("-v", "--verbose", action="store_true", help="print every case's verdict")
    _add_define(run)
    run.set_defaults(handler=_run)
    coverage = commands.add_parser(
        "coverage",
        help="which requirement each case checks, and what no case checks",
        description="Read the 'req:' header lines of every case under ROOT (default rfc_cases) and "
        "list each RFC 9293 MUST and SHLD requirement with the cases that check it, and the "
        "uncovered ones with why.  Exit 0, or 2 when ROOT is not a directory.",
    )
    coverage.add_argument("root", nargs="?", default="rfc_cases", metavar="ROOT", help="the corpus root")
    coverage.add_argument("--json", action="store_true", help="print the coverage document as JSON")
    coverage.add_argument("-o", "--output", metavar="FILE", help="write the JSON document to FILE")
    coverage.add_argument(
        "-v", "--verbose", action="store_true", help="list every family, not only MUST/SHLD"
    )
    coverage.set_defaults(handler=_coverage)
    return parser


# packetdrill options (GRAMMAR.md §7) this harness implements; others are ignored with a warning.
PACKETDRILL_OPTIONS = {
    "ip_version",
    "local_ip",
    "remote_ip",
    "gateway_ip",
    "netmask_ip",
    "bind_port",
    "connect_port",
    "tolerance_usecs",
    "tolerance_percent",
    "tcp_ts_tick_usecs",
    "strict_segments",
    "mtu",
    "non_fatal",
}


def _split_packetdrill_options(extra: Sequence[str], err: TextIO) -> tuple[dict[str, str | None], list[str]]:
    """``--name[=value]`` words left over by argparse: packetdrill's options."""
    options: dict[str, str | None] = {}
    bad: list[str] = []
    for word in extra:
        if not word.startswith("--"):
            bad.append(word)
            continue
        name, sep, value = word[2:].partition("=")
        if name in PACKETDRILL_OPTIONS:
            options[name] = value if sep else None
        else:
            print(f"warning: packetdrill option --{name} is not implemented; ignored", file=err)
    return options, bad


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    files, ok = _scripts(args.paths, err)
    if not ok:
        return EXIT_ERROR
    target = get_target(args.target)
    started = datetime.now(UTC)
    wall = time.monotonic()
    results = []
    for path in files:
        result = run_case(path, target, cli_options=args.packetdrill_options, defines=dict(args.defines))
        try:
            known = nearest(path, target.name)
        except ExpectationsError as e:
            print(f"{e}", file=err)
            return EXIT_ERROR
        if known is not None:  # the same known divergences pytest applies
            result = apply(result, known)
        results.append(result)
        line = f"{result.verdict.value.upper():5} {path} [{target.name}]"
        if result.verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.SKIP, Verdict.XFAIL) and result.reason:
            line += f": {result.reason}"
        if args.verbose or result.verdict in (Verdict.FAIL, Verdict.ERROR):
            print(line, file=out)
        if result.mismatch is not None and result.mismatch.fields:
            for diff in result.mismatch.fields:
                print(f"    {diff.name}: expected {diff.expected}, got {diff.actual}", file=out)
        if args.pcap_dir:
            directory = Path(args.pcap_dir)
            directory.mkdir(parents=True, exist_ok=True)
            write_pcap(result, directory / pcap_name(str(path), target.name))
    counts: dict[str, int] = {}
    for result in results:
        counts[result.verdict.value] = counts.get(result.verdict.value, 0) + 1
    print(" ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no cases", file=out)
    if args.json:
        ResultSet(results, environment(), started, time.monotonic() - wall).save(args.json)
    if any(r.verdict is Verdict.ERROR for r in results):
        return EXIT_ERROR
    return EXIT_FAIL if any(r.verdict in (Verdict.FAIL, Verdict.XPASS) for r in results) else EXIT_OK


def _coverage(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        doc = coverage_report(scan_cases(args.root))
    except OSError as error:
        print(f"python -m conformance coverage: {error}", file=err)
        return EXIT_ERROR
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    print(text if args.json else render_text(doc, verbose=args.verbose), file=out)
    return EXIT_OK


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
        args, extra = parser.parse_known_args(argv)
    except SystemExit as exit_:  # argparse reports usage errors itself, with status 2
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    if args.command != "run" and extra:
        try:  # only run takes packetdrill's options: let argparse report the rest
            parser.parse_args(argv)
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    bad: list[str] = []
    if args.command == "run":
        args.packetdrill_options, bad = _split_packetdrill_options(extra, err)
    if bad:
        print(f"python -m conformance: error: unrecognized arguments: {' '.join(bad)}", file=err)
        return EXIT_ERROR
    handler = args.handler
    status: int = handler(args, out, err)
    return status
