"""A PNG of a report, for the README: headless Chromium's ``--screenshot``.

``python -m reports screenshot [RESULTS.json...] [-o reports/screenshot.png]`` renders
the given results, or a small synthetic run (:mod:`reports.synthetic`) with its scripts
in a temporary directory, and photographs the top of the page.  ``--expand N`` opens
the N-th case's details first (through the page's ``#cN`` deep link).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .inputs import Run, load_coverage, load_run
from .model import build_report
from .render import render_html, write_html
from .synthetic import synthetic_coverage, synthetic_run, write_scripts

__all__ = ["BROWSERS", "ScreenshotError", "find_chromium", "screenshot"]

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ScreenshotError(Exception):
    """Chromium is missing or did not produce the picture."""


def find_chromium() -> str | None:
    """The path of a Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_flags(width: int, height: int) -> list[str]:
    """Flags for a headless run that needs no display, sandbox or network."""
    flags = [
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return flags


def screenshot(
    results: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    width: int = 1100,
    height: int = 900,
    expand: int = 0,
    coverage: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> int:
    """Render and photograph a report; returns the PNG's size in bytes."""
    browser = find_chromium()
    if browser is None:
        raise ScreenshotError("no Chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="report-shot-") as tmp:
        html = Path(tmp) / "parity.html"
        if results:
            runs = [load_run(p) for p in results]
            cov = load_coverage(coverage) if coverage is not None else None
            write_html(render_html(build_report(runs, output=html, coverage=cov)), html)
        else:
            write_scripts(Path(tmp), 24)
            cov_path = Path(tmp) / "coverage.json"
            cov_path.write_text(json.dumps(synthetic_coverage(24)), encoding="utf-8")
            cwd = os.getcwd()
            os.chdir(tmp)  # the synthetic cases' scripts are relative to here
            try:
                run = Run("synthetic-results.json", synthetic_run(24))
                report = build_report([run], output=html, coverage=load_coverage("coverage.json"))
                write_html(render_html(report), html)
            finally:
                os.chdir(cwd)
        url = html.as_uri() + (f"#open-c{expand - 1}" if expand > 0 else "")
        out = Path(output).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            browser,
            *chromium_flags(width, height),
            f"--user-data-dir={tmp}/profile",
            f"--screenshot={out}",
            url,
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ScreenshotError(f"{browser} took more than {timeout:.0f} s") from None
        if done.returncode != 0 or not out.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ScreenshotError(f"{browser} exited {done.returncode}: {' / '.join(tail)}")
    return out.stat().st_size
