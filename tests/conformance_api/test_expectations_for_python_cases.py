"""Python cases take their known divergences from the nearest expectations/<target>.toml,
as .pkt cases do (a strict xfail: a listed case that passes fails the run)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CONFTEST = """\
from conformance.case_api import (  # noqa: F401
    case_config, case_fixture, conn, dut, pytest_runtest_makereport, session, target, udp,
)
"""

CASES = """\
from conformance.case_api import Dut, case


@case("RFC 768")
def test_listed_and_failing(dut: Dut) -> None:
    assert dut.socket(2, 2, 17) < 0  # fails: the socket call succeeds


@case("RFC 768")
def test_listed_but_passing(dut: Dut) -> None:
    assert dut.socket(2, 2, 17) >= 0


@case("RFC 768")
def test_not_listed(dut: Dut) -> None:
    assert dut.socket(2, 2, 17) >= 0
"""

TOML = """\
[[xfail]]
case = "topic/test_cases.py::test_listed_*"
reason = "a divergence recorded for the test"
"""


def test_python_cases_use_the_expectations_file(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "topic").mkdir(parents=True)
    (root / "expectations").mkdir()
    (root / "conftest.py").write_text(CONFTEST)
    (root / "topic" / "test_cases.py").write_text(CASES)
    (root / "expectations" / "refstack.toml").write_text(TOML)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "topic", "--target", "refstack", "-p", "no:cacheprovider", "-rxX"],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout
    assert "1 failed, 1 passed, 3 skipped, 1 xfailed" in out, textwrap.shorten(
        out, 2000
    )  # linux: not selected
    assert "XPASS(strict)" in out and "a divergence recorded for the test" in out


EF_CASES = """\
import errno

import pytest

from conformance.case_api import Dut, DutError, case


@case("ONLOAD-EF_MAX_ENDPOINTS", ef={"EF_MAX_ENDPOINTS": "4", "EF_NO_FAIL": "0"})
def test_fifth_socket(dut: Dut, target) -> None:
    for _ in range(4):
        dut.socket(2, 2, 17)
    if target.name == "refstack":
        with pytest.raises(DutError) as caught:
            dut.socket(2, 2, 17)
        assert caught.value.errno == errno.ENOMEM
    else:
        dut.socket(2, 2, 17)  # no Onload limits on Linux: the case runs without them
"""


def test_python_cases_declare_ef_options(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_ef.py").write_text(EF_CASES)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            ".",
            "--target",
            "refstack",
            "--target",
            "linux",
            "-p",
            "no:cacheprovider",
        ],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "2 passed" in run.stdout or "1 passed, 1 skipped" in run.stdout, textwrap.shorten(run.stdout, 2000)
