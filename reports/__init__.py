"""The parity report: one self-contained HTML page from the harness's JSON results.

``python -m reports render RESULTS.json... -o parity.html`` (see ``reports/README.md``).
:func:`render_report` does the same from Python; :func:`build_report` and
:func:`render_html` split it into working out what to show and laying it out.
"""

from __future__ import annotations

from .inputs import Coverage, ReportError, Run, load_coverage, load_run
from .model import Report, build_report, case_key
from .render import render_html, render_report, write_html

__all__ = [
    "Coverage",
    "Report",
    "ReportError",
    "Run",
    "build_report",
    "case_key",
    "load_coverage",
    "load_run",
    "render_html",
    "render_report",
    "write_html",
]
