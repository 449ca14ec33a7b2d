"""Rendering a :class:`~reports.model.Report` into one self-contained HTML file.

The page is ``templates/report.html.j2`` with ``report.css`` and ``report.js`` inlined:
no network, no other file, except the pcaps it links (relative to the HTML).  Every
value from the inputs goes through jinja2's autoescaping.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from .inputs import ReportError, load_coverage, load_run
from .model import VERDICT_ORDER, Report, build_report

__all__ = ["LABELS", "render_html", "render_report", "write_html"]

TEMPLATES = Path(__file__).resolve().parent / "templates"

LABELS = {
    "pass": "PASS",
    "fail": "FAIL",
    "xfail": "XFAIL",
    "xpass": "XPASS",
    "skip": "SKIP",
    "error": "ERROR",
}
"""The text of each verdict (colour is never the only cue)."""

ICONS = {"pass": "✓", "fail": "✗", "xfail": "≈", "xpass": "!", "skip": "–", "error": "⚠"}

MEANING = {
    "pass": "the target behaved as the script says",
    "fail": "the target departed from the script",
    "xfail": "a known divergence, listed in the target's expectations file",
    "xpass": "listed as a known divergence, but passed: the expectations file is out of date",
    "skip": "not run on this target (the reason says why)",
    "error": "the script itself is wrong, or the harness failed",
}

KINDS = {"in": "→ in", "out": "← out", "call": "call", "shell": "shell", "note": "note"}


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(VERDICTS=VERDICT_ORDER, LABELS=LABELS, ICONS=ICONS, MEANING=MEANING, KINDS=KINDS)
    env.filters["when"] = _when
    env.filters["signed"] = lambda n: f"{n:+d}"
    return env


@cache
def _asset(name: str) -> Markup:
    # Inlined as they are: our own files, not input data.
    return Markup((TEMPLATES / name).read_text(encoding="utf-8"))


def _when(t: datetime | None) -> str:
    return "—" if t is None else t.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def render_html(report: Report) -> str:
    """The page, as text."""
    template = _environment().get_template("report.html.j2")
    return template.render(r=report, css=_asset("report.css"), js=_asset("report.js"))


def write_html(text: str, output: str | os.PathLike[str]) -> None:
    """Write ``text`` to ``output`` atomically, creating its directory."""
    out = Path(output)
    if out.is_dir():
        raise ReportError(os.fspath(output), "is a directory; give the HTML file's name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as e:
        raise ReportError(os.fspath(output), f"cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the report from a web server
        os.replace(tmp, out)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(os.fspath(output), f"cannot write: {e.strerror or e}") from None


def render_report(
    results: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    baseline: str | os.PathLike[str] | None = None,
    coverage: str | os.PathLike[str] | None = None,
    pcap_dir: str | os.PathLike[str] | None = None,
) -> Report:
    """Read the inputs, render and write the report; returns what it showed.

    Raises :class:`~reports.inputs.ReportError` on any unusable input.
    """
    if not results:
        raise ReportError("python -m reports", "no results file given")
    runs = [load_run(p) for p in results]
    base = load_run(baseline) if baseline is not None else None
    cov = load_coverage(coverage) if coverage is not None else None
    if pcap_dir is not None and not Path(pcap_dir).is_dir():
        raise ReportError(os.fspath(pcap_dir), "the pcap directory does not exist")
    report = build_report(runs, output=output, baseline=base, coverage=cov, pcap_dir=pcap_dir)
    write_html(render_html(report), output)
    return report
