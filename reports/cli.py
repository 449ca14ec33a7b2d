"""``python -m reports``: the report's command line.

* ``render RESULTS.json... -o parity.html [--baseline OLD.json] [--coverage COV.json]
  [--pcap-dir DIR]`` merges the results files (typically one per target) and writes
  one self-contained HTML page.  Prints one line saying what it wrote.
* ``screenshot [RESULTS.json...] [-o PNG]`` renders the given results (or a small
  synthetic run) and saves a PNG of the page with headless Chromium.

Exit status: 0 done, 2 on bad input or usage (one ``file: what is wrong`` line on
stderr, never a traceback), 1 when Chromium is missing or fails (screenshot).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .inputs import ReportError
from .render import render_report
from .screenshot import ScreenshotError, screenshot

EXIT_OK = 0
EXIT_TOOL = 1
EXIT_ERROR = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reports", description="Self-contained HTML parity reports from conformance results."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    render = commands.add_parser(
        "render",
        help="render results JSON into one HTML report",
        description="Merge results files (e.g. one per target) into one self-contained HTML report.",
    )
    render.add_argument("results", nargs="+", metavar="RESULTS.json", help="results written by the harness")
    render.add_argument("-o", "--output", required=True, metavar="HTML", help="the report to write")
    render.add_argument("--baseline", metavar="OLD.json", help="a previous run's results: show what changed")
    render.add_argument("--coverage", metavar="COVERAGE.json", help="`python -m conformance coverage --json`")
    render.add_argument(
        "--pcap-dir", metavar="DIR", help="where the run wrote its pcaps (linked from the report)"
    )
    render.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    render.set_defaults(handler=_render)
    shot = commands.add_parser(
        "screenshot",
        help="save a PNG of a report (headless Chromium)",
        description="Render RESULTS (default: a small synthetic run) and save a PNG of the page.",
    )
    shot.add_argument("results", nargs="*", metavar="RESULTS.json")
    shot.add_argument("-o", "--output", default="reports/screenshot.png", metavar="PNG")
    shot.add_argument("--coverage", metavar="COVERAGE.json", help="with RESULTS: the coverage document")
    shot.add_argument("--width", type=int, default=1000, help="window width in pixels (default 1000)")
    shot.add_argument("--height", type=int, default=1300, help="window height in pixels (default 1300)")
    shot.add_argument(
        "--expand", type=int, default=1, metavar="N", help="open the N-th case's details (default 1; 0: none)"
    )
    shot.set_defaults(handler=_screenshot)
    return parser


def _render(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = render_report(
        args.results, args.output, baseline=args.baseline, coverage=args.coverage, pcap_dir=args.pcap_dir
    )
    if not args.quiet:
        size = Path(args.output).stat().st_size
        parity = "; ".join(f"parity {p.a}/{p.b} {p.percent} %" for p in report.parities)
        print(
            f"wrote {args.output}: {len(report.rows)} cases on {len(report.targets)} target(s), "
            f"{report.divergent} divergent, {report.unexpected} unexpected"
            + (f"; {parity}" if parity else "")
            + f" ({size // 1024} KiB)",
            file=out,
        )
    return EXIT_OK


def _screenshot(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        size = screenshot(
            args.results,
            args.output,
            width=args.width,
            height=args.height,
            expand=args.expand,
            coverage=args.coverage,
        )
    except ScreenshotError as e:
        print(f"python -m reports screenshot: {e}", file=err)
        return EXIT_TOOL
    print(f"wrote {args.output} ({size // 1024} KiB)", file=out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse printed the usage error itself
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    try:
        status: int = args.handler(args, out, err)
    except ReportError as e:
        print(f"error: {e}", file=err)
        return EXIT_ERROR
    except Exception as e:  # a bug or an input no check foresaw: still one line, no traceback
        print(f"error: cannot render the report: {type(e).__name__}: {e}", file=err)
        return EXIT_ERROR
    return status
