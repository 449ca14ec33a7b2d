"""The ``refstack`` command: Onload-style tools for live refstack stacks.

::

    refstack stackdump [STACK ...] [COMMAND ...]    state of stacks (onload_stackdump)
    refstack fuser [--pids]                         processes holding stacks (onload_fuser)
    refstack tcpdump [-w FILE] [-c COUNT] [-i IFACE] STACK   a stack's traffic (onload_tcpdump)
    refstack run [--tap DEV | --tun DEV] [...] -- program.py args   a program on refstack (onload)

Stacks are found through their control sockets in the runtime directory
(:mod:`refstack.control`; ``--runtime-dir`` or ``$REFSTACK_RUNTIME_DIR``).  Exit
status: 0 done; 2 bad usage, an unknown stack or no stack running (one line on
stderr, never a traceback); 1 a stack failed to answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .control import ControlError, LiveStack, live_stacks, request, runtime_dir
from .tools import fuser as fuser_tool
from .tools import stackdump as sd
from .tools import tcpdump as tcpdump_tool


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ... (see --help)``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _stackdump_epilog() -> str:
    width = max(map(len, [*sd.STACK_COMMANDS, *sd.MISC_COMMANDS]))
    lines = ["misc commands:"]
    lines += [f"  {name:<{width}}  {doc}" for name, doc in sd.MISC_COMMANDS.items()]
    lines.append("stack commands (for every selected stack, default all):")
    lines += [f"  {name:<{width}}  {doc}" for name, (doc, _) in sd.STACK_COMMANDS.items()]
    lines.append("stacks are selected by name or by stack-id (the first column of `stacks`).")
    return "\n".join(lines)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``refstack`` parser and its tools' parsers by name."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--runtime-dir",
        type=Path,
        metavar="DIR",
        help="where stacks' control sockets live (default: $REFSTACK_RUNTIME_DIR,"
        " else $XDG_RUNTIME_DIR/refstack, else /tmp/refstack-<uid>)",
    )
    parser = _Parser(prog="refstack", description="Onload-style tools for live refstack stacks.")
    sub = parser.add_subparsers(dest="tool", metavar="TOOL", parser_class=_Parser)
    sub.required = True

    dump = sub.add_parser(
        "stackdump",
        parents=[common],
        help="show stacks' state, sockets, counters, filters and options (onload_stackdump)",
        description="Show the state of live refstack stacks, shaped like onload_stackdump.",
        epilog=_stackdump_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dump.add_argument("words", nargs="*", metavar="[STACK ...] [COMMAND ...]", help="default: stacks")

    fuser = sub.add_parser(
        "fuser",
        parents=[common],
        help="list the processes holding refstack stacks (onload_fuser)",
        description="List the processes that hold refstack stacks: pid, stacks, command line.",
    )
    fuser.add_argument("--pids", action="store_true", help="print only the pids, on one line")

    tcpdump = sub.add_parser(
        "tcpdump",
        parents=[common],
        help="capture a stack's traffic as pcap (onload_tcpdump)",
        description="Capture the frames a live stack receives and sends on one interface.",
    )
    tcpdump.add_argument("stack", metavar="STACK", help="stack name or stack-id")
    tcpdump.add_argument("-w", dest="write", metavar="FILE", help="write a pcap file ('-' for stdout)")
    tcpdump.add_argument("-c", dest="count", metavar="COUNT", type=_count, help="stop after COUNT frames")
    tcpdump.add_argument(
        "-i", dest="interface", metavar="IFACE", help="interface (default: the stack's first)"
    )
    run = sub.add_parser(
        "run",
        help="run an unmodified Python program on refstack (onload)",
        description="Run a Python program with socket, select and selectors served by refstack"
        " on a TAP/TUN device: refstack run [options] -- program.py args (or -- -m module args).",
    )
    from .run.main import add_arguments  # noqa: PLC0415 - keeps the other tools light

    add_arguments(run)
    return parser, {"stackdump": dump, "fuser": fuser, "tcpdump": tcpdump, "run": run}


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"COUNT must be a positive number, not {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"COUNT must be a positive number, not {value}")
    return value


# --- finding stacks ------------------------------------------------------------------------
def _running(directory: Path | None) -> list[LiveStack]:
    stacks = live_stacks(directory)
    if not stacks:
        where = directory if directory is not None else runtime_dir()
        raise UsageError(f"no refstack stacks are running (no control sockets answer in {where})")
    return stacks


def _select(stacks: list[LiveStack], selector: str, *, or_command: bool = False) -> list[LiveStack]:
    chosen = [s for s in stacks if s.ref.name == selector or str(s.stack_id) == selector]
    if not chosen:
        known = ", ".join(f"{s.stack_id}:{s.ref.name}" for s in stacks)
        what = "no stack or command" if or_command else "no stack"
        raise UsageError(f"{what} named {selector!r} (running stacks: {known})")
    return chosen


# --- the tools ----------------------------------------------------------------------------------
def run_stackdump(args: argparse.Namespace) -> int:
    """``stackdump [STACK ...] [COMMAND ...]``: each command for each selected stack."""
    words: list[str] = args.words
    commands = [w for w in words if w in sd.STACK_COMMANDS or w in sd.MISC_COMMANDS]
    selectors = [w for w in words if w not in commands]
    stacks = _running(args.runtime_dir)
    chosen: list[LiveStack] = []
    for selector in selectors:
        chosen += [s for s in _select(stacks, selector, or_command=True) if s not in chosen]
    if not chosen:
        chosen = stacks
    if not commands:
        commands = ["dump"] if selectors else ["stacks"]
    out: list[str] = []
    for command in commands:
        if command in sd.MISC_COMMANDS:
            rows = [sd.StackRow(s.stack_id, s.ref.name, s.ref.pid, s.cmdline) for s in chosen]
            out.append(sd.render_stacks(rows) if command == "stacks" else sd.render_processes(rows))
            continue
        for s in chosen:
            reply = request(s.ref, {"op": "stackdump", "what": command, "stack_id": s.stack_id})
            out.append(str(reply.get("text", "")))
    print("\n".join(out))
    return 0


def run_fuser(args: argparse.Namespace) -> int:
    """``fuser [--pids]``: the processes holding stacks."""
    found = fuser_tool.holders(_running(args.runtime_dir))
    print(fuser_tool.render(found, pids_only=args.pids))
    return 0


def run_tcpdump(args: argparse.Namespace) -> int:
    """``tcpdump [-w FILE] [-c COUNT] [-i IFACE] STACK``: one stack's frames, as pcap or text."""
    chosen = _select(_running(args.runtime_dir), args.stack)
    if len(chosen) > 1:
        pids = ", ".join(f"{s.stack_id} (pid {s.ref.pid})" for s in chosen)
        raise UsageError(f"{len(chosen)} stacks are named {args.stack!r}: pick one by stack-id: {pids}")
    ref = chosen[0].ref
    interfaces = chosen[0].hello.get("interfaces", {})
    if args.interface is not None and args.interface not in interfaces:
        raise UsageError(
            f"stack {ref.name} has no interface {args.interface!r} (it has {', '.join(interfaces)})"
        )
    write: str | None = args.write
    if write is None:
        result = tcpdump_tool.capture(ref, count=args.count, interface=args.interface, text=sys.stdout)
    elif write == "-":
        result = tcpdump_tool.capture(ref, count=args.count, interface=args.interface, pcap=sys.stdout.buffer)
    else:
        try:
            pcap = open(write, "wb")  # noqa: SIM115 (a with-block follows at once)
        except OSError as e:
            raise UsageError(f"cannot write {write}: {e.strerror}") from None
        with pcap:
            result = tcpdump_tool.capture(ref, count=args.count, interface=args.interface, pcap=pcap)
    dropped = f", {result.dropped} dropped by the stack's tap" if result.dropped else ""
    print(
        f"{result.frames} packets captured on {result.stack}/{result.interface}"
        f" (linktype {result.linktype}){dropped}",
        file=sys.stderr,
    )
    return 0


def run_program(args: argparse.Namespace) -> int:
    """``run [options] -- program.py args``: the program on refstack (:mod:`refstack.run`)."""
    from .run.main import RunError, run  # noqa: PLC0415

    try:
        return run(args, list(args.program))
    except RunError as e:
        raise UsageError(str(e)) from None


TOOLS = {"stackdump": run_stackdump, "fuser": run_fuser, "tcpdump": run_tcpdump, "run": run_program}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``refstack TOOL ...``; returns the exit status."""
    parser, tools = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    program: list[str] = []
    if words and words[0] == "run" and "--" in words:  # everything after -- is the program's
        cut = words.index("--")
        words, program = words[:cut], words[cut + 1 :]
    args, extra = parser.parse_known_args(words)
    args.program = program
    if extra:  # reported by the tool's parser, so that the message names the tool
        tools[args.tool].error(f"unrecognized arguments: {' '.join(extra)}")
    prog = f"refstack {args.tool}"
    try:
        return TOOLS[args.tool](args)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except ControlError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `refstack stackdump lots | head`: not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit-time flush stays quiet
        return 0
